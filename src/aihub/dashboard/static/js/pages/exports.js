// Export history: status, rows, size, options, parts, where the file is, and its download.
import { api, key } from "../api.js";
import { fmt, h, table } from "../ui.js";

export async function exportsPage({ tenant }) {
  const page = await api("/ai/features/exports", { params: { tenant_id: tenant, limit: 200 } });
  return [
    h("h1", {}, `Exports · ${tenant}`),
    h("p", { class: "muted" }, `${fmt.int(page.total)} exports, newest first. A completed `
      + "export downloads as Parquet; a dataset export (written by workers) part by part."),
    table([
      { label: "Export", value: (e) => h("code", {}, e.export_id) },
      { label: "Set", value: (e) => e.feature_set },
      { label: "Status", value: (e) => h("span", { class: e.status === "failed" ? "error" : null },
        e.status + (e.message && e.status === "failed" ? `: ${e.message}` : "")) },
      { label: "Rows", num: true, value: (e) => fmt.int(e.row_count) },
      { label: "Size", num: true, value: (e) => fmt.bytes(e.file_size_bytes) },
      { label: "Range", value: (e) => `${fmt.time(e.start_time)} → ${fmt.time(e.end_time)}` },
      { label: "Options", value: (e) => h("span", { class: "export-options" }, optionsText(e)) },
      { label: "Created", value: (e) => fmt.time(e.created_at) },
      { label: "File", value: (e) => (e.storage_path ? h("code", {}, e.storage_path) : "–") },
      { label: "Download", value: (e) => downloads(e) },
    ], page.exports),
  ];
}

export function optionsText(e) {
  const parts = [`lookback ${e.lookback_hours} h`];
  const n = e.asset_ids?.length;
  parts.push(e.asset_ids ? `${n} asset${n === 1 ? "" : "s"}` : "all assets");
  const o = e.options || {};
  if (o.origins) {
    const s = o.origins;
    const every = s.every_hours ?? 1;
    parts.push(`origins ${every === 24 ? "daily" : `every ${every} h`} from ${s.at ?? "00:00"}`
      + ` ${s.timezone ?? "UTC"}`);
  }
  if (o.horizons) parts.push(`horizons ${horizonsText(o.horizons)}`);
  if (o.as_known) parts.push(`as known: ${typeof o.as_known === "string" ? o.as_known : JSON.stringify(o.as_known)}`);
  if (e.parts) parts.push(`${e.parts.length} part${e.parts.length === 1 ? "" : "s"}`);
  return parts.join(", ");
}

// [1, 2, 3, 6] -> "1..3, 6"
function horizonsText(hs) {
  if (!Array.isArray(hs)) return JSON.stringify(hs);
  const out = [];
  for (let i = 0; i < hs.length; i++) {
    let j = i;
    while (j + 1 < hs.length && hs[j + 1] === hs[j] + 1) j++;
    out.push(j > i + 1 ? `${hs[i]}..${hs[j]}` : hs.slice(i, j + 1).join(", "));
    i = j;
  }
  return out.join(", ");
}

function downloads(e) {
  if (e.status !== "completed") return "–";
  const base = `/ai/features/exports/${encodeURIComponent(e.export_id)}/file`;
  const name = `${e.tenant_id}_${e.feature_set}_${e.export_id}`;
  if (!e.parts) return downloadLink(base, `${name}.parquet`, "Download", e.export_id);
  return h("span", { class: "downloads" }, e.parts.map((p, i) => [i ? " " : null,
    downloadLink(`${base}?part=${i}`, `${name}_part-${String(i).padStart(5, "0")}.parquet`,
      `part ${i + 1}`, `${e.export_id} part ${i + 1}`)]));
}

// An ordinary link (focusable, Enter activates it), but the API wants the key as a Bearer
// header, which a link would not send: fetch the file with it and save it from a Blob URL.
function downloadLink(url, filename, label, what) {
  const status = h("span", { class: "muted", role: "status" });
  const link = h("a", {
    href: url, download: filename, class: "download", "aria-label": `Download ${what}`,
    onclick: async (ev) => {
      ev.preventDefault();
      if (link.getAttribute("aria-busy") === "true") return;
      link.setAttribute("aria-busy", "true");
      status.textContent = " downloading…";
      status.className = "muted";
      try {
        const headers = {};
        const k = key.get();
        if (k) headers.Authorization = `Bearer ${k}`;
        const r = await fetch(url, { headers });
        if (!r.ok) {
          const body = await r.json().catch(() => null);
          throw new Error(`${r.status}: ${body?.detail ?? r.statusText}`);
        }
        const blob = await r.blob();
        const href = URL.createObjectURL(blob);
        const a = h("a", { href, download: filename, hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(href), 60_000);
        status.textContent = "";
      } catch (err) {
        status.textContent = ` download failed (${err.message})`;
        status.className = "error";
      } finally {
        link.removeAttribute("aria-busy");
      }
    },
  }, label);
  return h("span", {}, link, status);
}
