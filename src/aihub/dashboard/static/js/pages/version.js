// One model version: metadata, metrics, stage timeline, accuracy, promote/archive dialog.
import { api, hasRoute, recentWindow, whoami } from "../api.js";
import { enc, errorBox, fmt, h, stage, table } from "../ui.js";
import { allVersions, perfByHorizon } from "./models.js";

export async function modelVersion({ args, refresh }) {
  const [modelId] = args;
  const [v, hist, me] = await Promise.all([
    api(`/ai/models/${enc(modelId)}`), api(`/ai/models/${enc(modelId)}/history`), whoami()]);
  const [perf, drift] = await Promise.all([perfByHorizon(v.model_id), driftOf(v)]);
  const nodes = [h("h1", {}, `${v.model_name} ${v.version}`),
    h("p", {}, stage(v.stage), ` since ${fmt.time(v.stage_changed_at)} · `, h("code", {}, v.model_id))];
  if (me.role !== "read") nodes.push(promoteDialog(v, refresh));
  nodes.push(h("div", { class: "grid2" },
    h("section", {}, h("h2", {}, "Metrics"), table([
      { label: "Metric", value: ([k]) => k }, { label: "Value", num: true, value: ([, x]) => fmt.num(x, 4) },
    ], Object.entries(v.metrics))),
    h("section", {}, h("h2", {}, "Artifact"), table([
      { label: "Field", value: ([k]) => k }, { label: "Value", value: ([, x]) => x },
    ], [["format", v.artifact_format ?? "none"], ["size", fmt.bytes(v.model_size_bytes)],
      ["sha256", h("code", {}, v.sha256 ?? "–")], ["uploaded", fmt.time(v.artifact_uploaded_at)],
      ["model type", v.model_type ?? "–"], ["framework", v.framework ?? "–"]]))));
  nodes.push(h("h2", {}, "Stage timeline"), h("ol", { id: "timeline" },
    hist.transitions.map((t) => h("li", {}, h("time", { datetime: t.at }, fmt.time(t.at)), ": ",
      t.from_stage ? `${t.from_stage} → ` : "registered as ", stage(t.to_stage),
      t.reason ? ` — “${t.reason}”` : ""))));
  nodes.push(inProductionAt(v));
  nodes.push(h("h2", {}, "Accuracy by horizon"));
  if (!perf) nodes.push(h("p", { class: "empty" }, "No live accuracy data yet."));
  else nodes.push(table([
    { label: "Horizon (h)", num: true, value: (g) => g.key },
    { label: "n", num: true, value: (g) => fmt.int(g.n) },
    { label: "MAE", num: true, value: (g) => fmt.num(g.mae) },
    { label: "RMSE", num: true, value: (g) => fmt.num(g.rmse) },
    { label: "Skill vs seasonal naive", num: true, value: (g) => fmt.num(g.skill?.seasonal_naive) },
  ], perf.groups));
  nodes.push(h("h2", {}, "Drift of the served features (last 28 days)"), driftView(drift));
  nodes.push(h("h2", {}, "Metadata"), h("pre", {}, JSON.stringify(v.metadata, null, 2)));
  return nodes;
}

// The monitoring API's drift of this version's served features against its training
// export (metadata.export_id): a message when there is nothing to compare.
export async function driftOf(v) {
  if (!(await hasRoute("GET", "/ai/models/{model_id}/drift"))) {
    return { message: "Drift is not available on this server." };
  }
  if (!v.metadata?.export_id) {
    return { message: "This version names no training export (metadata.export_id), so there "
      + "is nothing to compare its served features with." };
  }
  try {
    return { drift: await api(`/ai/models/${enc(v.model_id)}/drift`, { params: recentWindow() }) };
  } catch (e) {
    if ([404, 409, 422].includes(e.status)) return { message: `No drift data: ${e.message}` };
    throw e;
  }
}

function driftView({ drift, message }) {
  if (!drift) return h("p", { class: "empty" }, message);
  const rows = Object.entries(drift.features).sort(([, a], [, b]) => (b.psi ?? -1) - (a.psi ?? -1));
  const drifted = rows.filter(([, f]) => f.drifted).length;
  return h("div", { id: "drift" },
    h("p", { class: drifted ? "warn" : "muted" }, `${fmt.int(drift.served_rows)} served rows against export `,
      h("code", {}, drift.export_id), drifted ? ` · ${drifted} feature(s) drifted (PSI >= 0.2)` : " · no feature drifted"),
    table([
      { label: "Feature", value: ([k]) => k },
      { label: "PSI", num: true, value: ([, f]) => fmt.num(f.psi, 3) },
      { label: "Null rate (training)", num: true, value: ([, f]) => fmt.num(f.null_rate_train, 3) },
      { label: "Null rate (served)", num: true, value: ([, f]) => fmt.num(f.null_rate_served, 3) },
      { label: "Drifted", value: ([, f]) => (f.drifted ? h("strong", { class: "bad" }, "yes") : "no") },
    ], rows));
}

// "What was in production at time T": replay the stage histories of this model's versions.
function inProductionAt(v) {
  const out = h("p", { "aria-live": "polite" });
  const input = h("input", { id: "prod-at", type: "datetime-local", required: true });
  return h("form", { class: "toolbar", onsubmit: async (ev) => {
    ev.preventDefault();
    const t = new Date(`${input.value}Z`).getTime();
    try {
      const vs = await allVersions({ tenant_id: v.tenant_id, model_name: v.model_name });
      const hits = [];
      await Promise.all(vs.slice(0, 200).map(async (x) => {
        const hs = await api(`/ai/models/${enc(x.model_id)}/history`);
        let inProd = false;
        for (const tr of hs.transitions) {
          if (new Date(tr.at).getTime() > t) break;
          inProd = tr.to_stage === "production";
        }
        if (inProd) hits.push(x.model_id);
      }));
      out.textContent = hits.length ? `In production then: ${hits.join(", ")}` : "No version was in production then.";
    } catch (e) { out.replaceChildren(errorBox(e)); }
  } }, h("div", {}, h("label", { for: "prod-at" }, "In production at (UTC)"), input),
  h("button", { type: "submit", class: "secondary" }, "Look up"), out);
}

function promoteDialog(v, refresh) {
  const msg = h("div", { "aria-live": "assertive" });
  const target = h("select", { id: "promote-stage", name: "target_stage" },
    ["production", "staging", "archived"].filter((s) => s !== v.stage)
      .map((s) => h("option", { value: s }, s)));
  const reason = h("textarea", { id: "promote-reason", name: "reason", rows: 3, required: true,
    maxlength: 2000 });
  const dialog = h("dialog", { id: "promote-dialog", "aria-labelledby": "promote-title" },
    h("form", { method: "dialog", onsubmit: async (ev) => {
      if (ev.submitter?.value === "cancel") return;
      ev.preventDefault();
      try {
        await api(`/ai/models/${enc(v.model_id)}/promote`, { method: "PUT",
          body: { target_stage: target.value, reason: reason.value.trim() } });
        dialog.close();
        refresh();
      } catch (e) { msg.replaceChildren(errorBox(e)); }
    } },
    h("h2", { id: "promote-title" }, `Change the stage of ${v.version}`),
    h("div", { class: "field" }, h("label", { for: "promote-stage" }, "New stage"), target),
    h("div", { class: "field" }, h("label", { for: "promote-reason" }, "Reason (kept in the timeline)"), reason),
    msg,
    h("div", { class: "actions" },
      h("button", { type: "submit", value: "cancel", class: "secondary", formnovalidate: true }, "Cancel"),
      h("button", { type: "submit", value: "ok", id: "promote-submit" }, "Change stage"))));
  const open = h("button", { type: "button", id: "promote-open",
    onclick: () => { msg.replaceChildren(); dialog.showModal(); target.focus(); } }, "Promote / archive…");
  return h("div", {}, open, dialog);
}
