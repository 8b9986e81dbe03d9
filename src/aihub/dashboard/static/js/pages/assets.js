// The asset list (prefix search, pages) and one asset's page with its chart.
import { api } from "../api.js";
import { drawChart, anomalyMarks } from "../chart.js";
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
      + "(24 h avg and lag 168 h are the rolling_24h_avg and lag_168h features). Logged forecasts appear here once the "
      + "monitoring API serves them per asset."));
  return {
    nodes,
    mounted: () => {
      if (!series.count) { chartEl.replaceWith(h("p", { class: "empty" }, "No hourly data in this range.")); return; }
      plot = drawChart(chartEl, series, { onPainted: () => {
        performance.mark("aihub:chart-painted");
        chartEl.dataset.painted = "1";
      } });
    },
  };
}
