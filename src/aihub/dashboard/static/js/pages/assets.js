// The asset list (prefix search, pages) and one asset's page with its chart.
import { api, hasRoute } from "../api.js";
import { alignForecasts, anomalyMarks, drawChart } from "../chart.js";
import { enc, fmt, h, table } from "../ui.js";

const PAGE = 50;

export async function assets({ tenant, params }) {
  const q = params.get("q") || "";
  const page = Math.max(0, Number(params.get("page")) || 0);
  const data = await api("/ai/assets", { params: { tenant_id: tenant, q, limit: PAGE, offset: page * PAGE } });
  const go = (nq, np) => { location.hash = `#/assets?q=${enc(nq)}&page=${np}`; };
  const input = h("input", { id: "asset-q", type: "search", value: q, placeholder: "meter-0",
    autocomplete: "off" });
  const last = Math.max(0, Math.ceil(data.total / PAGE) - 1);
  return [
    h("h1", {}, `Assets · ${tenant}`),
    h("form", { class: "toolbar", role: "search",
      onsubmit: (ev) => { ev.preventDefault(); go(input.value.trim(), 0); } },
      h("div", {}, h("label", { for: "asset-q" }, "Asset id starts with"), input),
      h("button", { type: "submit" }, "Search")),
    h("p", { class: "muted" }, `${fmt.int(data.total)} assets` + (q ? ` starting with '${q}'` : "")),
    table([
      { label: "Asset", value: (a) => h("a", { href: `#/assets/${enc(a.asset_id)}` }, a.asset_id) },
      { label: "Kind", value: (a) => a.kind },
      { label: "Timezone", value: (a) => a.timezone },
      { label: "Country", value: (a) => a.country ?? "–" },
      { label: "Location", value: (a) => a.location_id ?? "–" },
      { label: "Last ingest", value: (a) => fmt.time(a.last_ingest_at) },
    ], data.assets),
    h("nav", { class: "pager", "aria-label": "Asset pages" },
      h("button", { type: "button", class: "secondary", disabled: page === 0,
        onclick: () => go(q, page - 1) }, "Previous"),
      h("span", {}, `Page ${page + 1} of ${last + 1}`),
      h("button", { type: "button", class: "secondary", disabled: page >= last,
        onclick: () => go(q, page + 1) }, "Next")),
  ];
}

export async function asset({ tenant, args, params }) {
  const [assetId] = args;
  const days = Number(params.get("days")) || 365;
  // The asset and its series in parallel: without start/end the series endpoint ends at
  // the asset's last hour with data, so no status round trip comes first.
  const [a, series] = await Promise.all([
    api(`/ai/assets/${enc(assetId)}`, { params: { tenant_id: tenant } }),
    api(`/ai/assets/${enc(assetId)}/series`, { params: { tenant_id: tenant, days } }),
  ]);
  const nodes = [h("h1", {}, `Asset ${a.asset_id}`),
    h("p", { class: "muted" }, `${a.kind} · ${a.timezone}` + (a.country ? ` · ${a.country}` : "")
      + (a.location_id ? ` · weather ${a.location_id}` : "") + ` · last ingest ${fmt.time(a.last_ingest_at)}`)];
  if (!series.count && series.last_hour === null) {
    nodes.push(h("p", { class: "empty" }, "No readings yet."));
    return nodes;
  }
  const { count } = anomalyMarks(series);
  const chartEl = h("div", { class: "chart", id: "asset-chart", role: "img",
    "aria-label": `Hourly load of ${assetId}: ${series.count} hours, ${count} anomalous hours` });
  const rangeSel = h("select", { id: "chart-range",
    onchange: (ev) => { location.hash = `#/assets/${enc(assetId)}?days=${ev.target.value}`; } },
  [7, 30, 90, 365, 730].map((d) => h("option", { value: d, selected: d === days }, d === 730 ? "2 years" : d === 365 ? "1 year" : `${d} days`)));
  let plot;
  const forecastNote = h("span", { id: "forecast-note", "aria-live": "polite" }, "");
  const pan = (dir) => {
    const { min, max } = plot.scales.x;
    const w = (max - min) * 0.5 * dir;
    plot.setScale("x", { min: min + w, max: max + w });
  };
  const zoom = (f) => {
    const { min, max } = plot.scales.x;
    const mid = (min + max) / 2, half = ((max - min) / 2) * f;
    plot.setScale("x", { min: mid - half, max: mid + half });
  };
  nodes.push(
    h("div", { class: "toolbar" },
      h("div", {}, h("label", { for: "chart-range" }, "Range"), rangeSel),
      h("button", { type: "button", class: "secondary", onclick: () => pan(-1) }, "◀ Earlier"),
      h("button", { type: "button", class: "secondary", onclick: () => pan(1) }, "Later ▶"),
      h("button", { type: "button", class: "secondary", onclick: () => zoom(0.5) }, "Zoom in"),
      h("button", { type: "button", class: "secondary", onclick: () => zoom(2) }, "Zoom out"),
      h("button", { type: "button", class: "secondary",
        onclick: () => plot.setScale("x", { min: series.hour[0], max: series.hour.at(-1) }) }, "Reset")),
    chartEl,
    h("p", { class: "legend-note" }, `${fmt.int(series.count)} hours · ${count} hours with |z_score_24h| > 3 `
      + "(red points) · drag to zoom, double-click to reset, click a legend entry to show or hide it "
      + "(24 h avg and lag 168 h are the rolling_24h_avg and lag_168h features). ",
      forecastNote));
  return {
    nodes,
    mounted: () => {
      if (!series.count) { chartEl.replaceWith(h("p", { class: "empty" }, "No hourly data in this range.")); return; }
      plot = drawChart(chartEl, series, { onPainted: () => {
        performance.mark("aihub:chart-painted");
        chartEl.dataset.painted = "1";
      } });
      productionForecasts(tenant, assetId, series).then((forecast) => {
        forecastNote.textContent = forecast
          ? `Dashed green: ${forecast.label}, ${fmt.int(forecast.n)} hours with a logged forecast (for each hour, the latest origin's).`
          : "No logged forecasts of a production model for this asset in this range.";
        if (forecast) { plot.addForecast(forecast); chartEl.dataset.forecast = String(forecast.n); }
      }).catch((e) => { forecastNote.textContent = `Forecasts could not be loaded: ${e.message}`; });
    },
  };
}

// The production model's logged forecasts for this asset over the chart's range (from the
// prediction log), aligned to the chart's hours; null when there are none.
async function productionForecasts(tenant, assetId, series) {
  if (!series.count || !(await hasRoute("GET", "/ai/models/{model_id}/predictions"))) return null;
  const prod = await api("/ai/models/", { params: { tenant_id: tenant, stage: "production", limit: 20 } });
  for (const m of prod.models) {
    const got = await api(`/ai/models/${enc(m.model_id)}/predictions`, { params: {
      asset_id: assetId, start: series.start, end: series.end, limit: 50000 } });
    if (!got.predictions.length) continue;
    const values = alignForecasts(series.hour, got.predictions);
    const n = values.filter((v) => v !== null).length;
    if (n) return { label: `forecast ${m.model_name} ${m.version}`, values, n };
  }
  return null;
}
