// Model names -> versions, and two versions side by side.
import { api, hasRoute, recentWindow } from "../api.js";
import { enc, esc, fmt, h, table } from "../ui.js";
import { metricsText } from "./overview.js";

export async function allVersions(params) {
  const out = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await api("/ai/models/", { params: { ...params, limit: 1000, offset } });
    out.push(...page.models);
    if (out.length >= page.total || !page.models.length) return out;
  }
}

const PAGE = 100;

export async function models({ tenant, params }) {
  // One page of versions at a time (the API's order: by model name, newest version first),
  // so a registry with thousands of versions opens as fast as one with ten.
  const page = Math.max(0, Number(params?.get("page")) || 0);
  const data = await api("/ai/models/", { params: { tenant_id: tenant, limit: PAGE, offset: page * PAGE } });
  const versions = data.models;
  const last = Math.max(0, Math.ceil(data.total / PAGE) - 1);
  const byName = new Map();
  for (const v of versions) {
    if (!byName.has(v.model_name)) byName.set(v.model_name, []);
    byName.get(v.model_name).push(v);
  }
  const shown = data.total > versions.length
    ? `Versions ${fmt.int(page * PAGE + 1)}-${fmt.int(page * PAGE + versions.length)} of ${fmt.int(data.total)}. `
    : `${fmt.int(versions.length)} versions of ${byName.size} models. `;
  const nodes = [h("h1", {}, `Models · ${tenant}`),
    h("p", { class: "muted" }, shown + "Tick two versions of a model to compare them.")];
  if (!versions.length) nodes.push(h("p", { class: "empty" }, "No models registered yet."));
  const frag = document.createDocumentFragment();
  for (const [name, vs] of byName) {
    const id = `cmp-${name}`;
    const form = h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      const picked = [...form.querySelectorAll("input:checked")].map((i) => i.value);
      if (picked.length === 2) location.hash = `#/models/compare/${enc(picked[0])}/${enc(picked[1])}`;
      else msg.textContent = "Pick exactly two versions.";
    } });
    const msg = h("span", { class: "muted", "aria-live": "polite" });
    const wrap = h("div", { class: "table-wrap" });
    wrap.innerHTML = versionsTable(vs);
    form.append(h("h2", { id }, name), wrap,
      h("p", {}, h("button", { type: "submit", class: "secondary" }, "Compare selected"), " ", msg));
    frag.append(form);
  }
  nodes.push(frag);
  if (last > 0) {
    const go = (np) => { location.hash = `#/models?page=${np}`; };
    nodes.push(h("nav", { class: "pager", "aria-label": "Version pages" },
      h("button", { type: "button", class: "secondary", disabled: page === 0,
        onclick: () => go(page - 1) }, "Previous"),
      h("span", {}, `Page ${page + 1} of ${last + 1}`),
      h("button", { type: "button", class: "secondary", disabled: page >= last,
        onclick: () => go(page + 1) }, "Next")));
  }
  return nodes;
}

function versionsTable(vs) {
  const rows = vs.map((v) => {
    const artifact = v.model_size_bytes === null ? "none"
      : `${fmt.bytes(v.model_size_bytes)} ${v.artifact_format ?? ""}`;
    const sha = v.sha256 ? `<code title="${esc(v.sha256)}">${esc(v.sha256.slice(0, 12))}</code>` : "–";
    return `<tr><td><input type="checkbox" value="${esc(v.model_id)}" aria-label="compare ${esc(v.version)}"></td>`
      + `<td><a href="#/models/${esc(enc(v.model_id))}">${esc(v.version)}</a></td>`
      + `<td><span class="stage stage-${esc(v.stage)}">${esc(v.stage)}</span></td>`
      + `<td>${esc(metricsText(v.metrics))}</td><td>${esc(artifact)}</td><td>${sha}</td>`
      + `<td>${esc(fmt.time(v.uploaded_at))}</td></tr>`;
  });
  return "<table><thead><tr><th scope=col>Compare</th><th scope=col>Version</th>"
    + "<th scope=col>Stage</th><th scope=col>Metrics</th><th scope=col>Artifact</th>"
    + `<th scope=col>sha256</th><th scope=col>Uploaded</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

export async function perfByHorizon(modelId) {
  if (!(await hasRoute("GET", "/ai/models/{model_id}/performance"))) return null;
  try {
    const p = await api(`/ai/models/${enc(modelId)}/performance`, { params: { group_by: "horizon", ...recentWindow() } });
    return p.groups?.length ? p : null;
  } catch (e) {
    if (e.status === 404 || e.status === 422) return null;
    throw e;
  }
}

export async function compare({ args }) {
  const [a, b] = await Promise.all(args.map((id) => api(`/ai/models/${enc(id)}`)));
  const [pa, pb] = await Promise.all([perfByHorizon(a.model_id), perfByHorizon(b.model_id)]);
  const metrics = [...new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)])].sort();
  const rows = [
    ["stage", a.stage, b.stage], ["uploaded", fmt.time(a.uploaded_at), fmt.time(b.uploaded_at)],
    ["model type", a.model_type ?? "–", b.model_type ?? "–"],
    ["artifact", fmt.bytes(a.model_size_bytes), fmt.bytes(b.model_size_bytes)],
    ...metrics.map((m) => [m, fmt.num(a.metrics[m]), fmt.num(b.metrics[m])]),
  ];
  const nodes = [h("h1", {}, "Compare versions"), table([
    { label: "", value: (r) => h("strong", {}, r[0]) },
    { label: a.model_id, value: (r) => r[1] },
    { label: b.model_id, value: (r) => r[2] },
  ], rows)];
  nodes.push(h("h2", {}, "Accuracy by horizon"));
  if (!pa && !pb) nodes.push(h("p", { class: "empty" }, "No live accuracy data yet."));
  else {
    const hz = [...new Set([...(pa?.groups ?? []), ...(pb?.groups ?? [])].map((g) => g.key))].sort((x, y) => x - y);
    const get = (p, k) => p?.groups.find((g) => g.key === k);
    nodes.push(table([
      { label: "Horizon (h)", num: true, value: (k) => k },
      { label: `MAE ${a.version}`, num: true, value: (k) => fmt.num(get(pa, k)?.mae) },
      { label: `MAE ${b.version}`, num: true, value: (k) => fmt.num(get(pb, k)?.mae) },
      { label: `skill ${a.version}`, num: true, value: (k) => fmt.num(get(pa, k)?.skill?.seasonal_naive) },
      { label: `skill ${b.version}`, num: true, value: (k) => fmt.num(get(pb, k)?.skill?.seasonal_naive) },
    ], hz));
  }
  return nodes;
}
