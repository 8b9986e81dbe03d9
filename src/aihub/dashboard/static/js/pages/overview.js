// Overview of one tenant: data, freshness, models by stage, recent exports, attention.
import { api, hasRoute, recentWindow } from "../api.js";
import { enc, fmt, h, stage, table } from "../ui.js";

const STALE_HOURS = 26;

export async function overview({ tenant }) {
  const [status, assetPage, modelPage, exportPage] = await Promise.all([
    api("/ai/features/status", { params: { tenant_id: tenant } }).catch((e) => {
      if (e.status === 404) return null; throw e;
    }),
    api("/ai/assets", { params: { tenant_id: tenant, limit: 1000 } }),
    api("/ai/models/", { params: { tenant_id: tenant, limit: 1000 } }),
    api("/ai/features/exports", { params: { tenant_id: tenant, limit: 5 } }),
  ]);
  const nodes = [h("h1", {}, `Overview · ${tenant}`)];
  if (!status) {
    nodes.push(h("p", { class: "empty" }, `No data yet for tenant '${tenant}'. Ingest readings `
      + "(POST /ai/features/ingest or 'aihub demo load') or choose another tenant above."));
  } else {
    nodes.push(h("div", { class: "cards" },
      card(fmt.int(status.assets), "assets"),
      card(fmt.int(status.readings), "readings"),
      card(fmt.int(status.rollup_hours), "hourly rollups"),
      card(fmt.ago(status.last_reading), "last reading"),
      card(fmt.ago(status.last_ingest_at), "last ingest"),
      card(status.rollups_fresh ? "fresh" : "behind", "rollups")));
  }
  // Freshness: the assets whose last ingest is oldest first; stale ones highlighted.
  const now = Date.now();
  const byAge = [...assetPage.assets].sort((a, b) =>
    String(a.last_ingest_at).localeCompare(String(b.last_ingest_at)));
  const stale = byAge.filter((a) => !a.last_ingest_at
    || now - new Date(a.last_ingest_at).getTime() > STALE_HOURS * 3600e3);
  nodes.push(h("h2", {}, "Freshness"),
    h("p", { class: stale.length ? "stale" : "muted" },
      `${stale.length} of ${fmt.int(assetPage.total)} assets without an ingest in the last `
      + `${STALE_HOURS} h.`),
    table([
      { label: "Asset", value: (a) => h("a", { href: `#/assets/${enc(a.asset_id)}` }, a.asset_id) },
      { label: "Kind", value: (a) => a.kind },
      { label: "Last ingest", value: (a) => h("span", { class: stale.includes(a) ? "stale" : null },
        `${fmt.time(a.last_ingest_at)} (${fmt.ago(a.last_ingest_at)})`) },
    ], byAge.slice(0, 8), "Oldest ingests first"));

  const counts = { production: 0, staging: 0, archived: 0 };
  for (const m of modelPage.models) counts[m.stage] = (counts[m.stage] || 0) + 1;
  nodes.push(h("h2", {}, "Models"), h("div", { class: "cards" },
    Object.entries(counts).map(([s, n]) => card(fmt.int(n), `${s} versions`))),
  table([
    { label: "Production model", value: (m) => h("a", { href: `#/models/${enc(m.model_id)}` }, m.model_id) },
    { label: "Since", value: (m) => fmt.time(m.stage_changed_at) },
    { label: "Metrics", value: (m) => metricsText(m.metrics) },
  ], modelPage.models.filter((m) => m.stage === "production")));

  nodes.push(h("h2", {}, "Needs attention"), await attention(tenant, modelPage.models));

  nodes.push(h("h2", {}, "Recent exports"), table([
    { label: "Export", value: (e) => h("code", {}, e.export_id) },
    { label: "Status", value: (e) => e.status },
    { label: "Rows", num: true, value: (e) => fmt.int(e.row_count) },
    { label: "Created", value: (e) => fmt.time(e.created_at) },
  ], exportPage.exports), h("p", {}, h("a", { href: "#/exports" }, "All exports")));
  return nodes;
}

function card(value, label) { return h("div", { class: "card" }, h("b", {}, value), h("span", {}, label)); }

export function metricsText(m) {
  return Object.entries(m || {}).map(([k, v]) => `${k} ${fmt.num(v)}`).join(", ") || "–";
}

// Production models whose live accuracy is worse than the seasonal-naive baseline (the
// monitoring API's skill < 0) or whose served features drifted from their training export,
// when this server has forecast monitoring.
async function attention(tenant, versions) {
  if (!(await hasRoute("GET", "/ai/models/{model_id}/performance"))) {
    return h("p", { class: "empty" }, "No live accuracy data yet (forecast monitoring is not "
      + "available on this server).");
  }
  const prod = versions.filter((m) => m.stage === "production");
  const rows = [];
  await Promise.all(prod.map(async (m) => {
    let g = null, drifted = null;
    try {
      const p = await api(`/ai/models/${enc(m.model_id)}/performance`, { params: { group_by: "none", ...recentWindow() } });
      g = p.groups?.[0] ?? null;
    } catch { /* no data yet for this one */ }
    if (m.metadata?.export_id) {
      try {
        const d = await api(`/ai/models/${enc(m.model_id)}/drift`, { params: recentWindow() });
        drifted = Object.values(d.features).filter((f) => f.drifted).length;
      } catch { /* no served features yet */ }
    }
    if (g || drifted !== null) rows.push({ m, g, drifted });
  }));
  const bad = rows.filter(({ g, drifted }) => (g?.skill?.seasonal_naive ?? 1) < 0 || drifted > 0);
  if (!rows.length) return h("p", { class: "empty" }, "No live accuracy data yet.");
  if (!bad.length) {
    return h("p", { class: "muted" }, "Every production model beats seasonal naive, and no served feature drifted.");
  }
  return table([
    { label: "Model", value: ({ m }) => h("a", { href: `#/models/${enc(m.model_id)}` }, m.model_id) },
    { label: "MAE", num: true, value: ({ g }) => fmt.num(g?.mae) },
    { label: "Skill vs seasonal naive", num: true, value: ({ g }) => fmt.num(g?.skill?.seasonal_naive) },
    { label: "Drifted features", num: true, value: ({ drifted }) => (drifted === null ? "–" : fmt.int(drifted)) },
  ], bad);
}
