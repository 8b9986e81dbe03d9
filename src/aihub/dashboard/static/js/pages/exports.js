// Export history: status, rows, size, options, and where the file is.
import { api } from "../api.js";
import { fmt, h, table } from "../ui.js";

export async function exportsPage({ tenant }) {
  const page = await api("/ai/features/exports", { params: { tenant_id: tenant, limit: 200 } });
  return [
    h("h1", {}, `Exports · ${tenant}`),
    h("p", { class: "muted" }, `${fmt.int(page.total)} exports, newest first. The API serves no `
      + "download of export files: the storage path is where the Parquet file was written."),
    table([
      { label: "Export", value: (e) => h("code", {}, e.export_id) },
      { label: "Set", value: (e) => e.feature_set },
      { label: "Status", value: (e) => h("span", { class: e.status === "failed" ? "error" : null },
        e.status + (e.message && e.status === "failed" ? `: ${e.message}` : "")) },
      { label: "Rows", num: true, value: (e) => fmt.int(e.row_count) },
      { label: "Size", num: true, value: (e) => fmt.bytes(e.file_size_bytes) },
      { label: "Range", value: (e) => `${fmt.time(e.start_time)} → ${fmt.time(e.end_time)}` },
      { label: "Options", value: (e) => optionsText(e) },
      { label: "Created", value: (e) => fmt.time(e.created_at) },
      { label: "File", value: (e) => (e.storage_path ? h("code", {}, e.storage_path) : "–") },
    ], page.exports),
  ];
}

function optionsText(e) {
  const parts = [`lookback ${e.lookback_hours} h`];
  parts.push(e.asset_ids ? `${e.asset_ids.length} assets` : "all assets");
  for (const k of ["horizons", "origins", "as_known"]) if (e[k] !== undefined && e[k] !== null) parts.push(`${k} ${JSON.stringify(e[k])}`);
  return parts.join(", ");
}
