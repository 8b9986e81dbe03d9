// The feature catalog (definitions in plain words), the sets, and creating a set.
import { api, whoami } from "../api.js";
import { errorBox, h, table } from "../ui.js";

export async function features({ tenant, refresh }) {
  const [catalog, sets, me] = await Promise.all([
    api("/ai/features/catalog"),
    api("/ai/features/sets", { params: { tenant_id: tenant } }),
    whoami(),
  ]);
  const nodes = [h("h1", {}, "Feature sets and catalog"), h("h2", {}, "Sets"),
    table([
      { label: "Set", value: (s) => h("strong", {}, s.name) },
      { label: "Kind", value: (s) => `${s.kind}${s.builtin ? " (built-in)" : ""}` },
      { label: "Description", value: (s) => s.description },
      { label: "Features", value: (s) => `${s.feature_count}: ${s.features.join(", ")}` },
    ], Object.values(sets.feature_sets))];
  if (me.role !== "read") nodes.push(createForm(tenant, catalog, refresh));
  nodes.push(h("h2", {}, `Catalog (${catalog.length} features)`), table([
    { label: "Feature", value: (f) => h("code", {}, f.name) },
    { label: "Kind", value: (f) => f.kind },
    { label: "Definition", value: (f) => f.description },
    { label: "Horizon (h)", num: true, value: (f) => f.horizon_hours },
    { label: "Type", value: (f) => f.dtype },
  ], catalog));
  return nodes;
}

function createForm(tenant, catalog, refresh) {
  const msg = h("div", { "aria-live": "polite" });
  const form = h("form", { id: "set-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    try {
      await api("/ai/features/sets", { method: "POST", body: {
        tenant_id: tenant, name: fd.get("name"), description: fd.get("description") || "",
        features: fd.getAll("features"), use_cases: [] } });
      refresh();
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  } },
  h("h2", {}, "Create a set"),
  h("div", { class: "toolbar" },
    h("div", {}, h("label", { for: "set-name" }, "Name"),
      h("input", { id: "set-name", name: "name", required: true, pattern: "[A-Za-z0-9_.\\-]{1,128}" })),
    h("div", {}, h("label", { for: "set-description" }, "Description"),
      h("input", { id: "set-description", name: "description", size: 40 }))),
  h("fieldset", { class: "features" }, h("legend", {}, "Features"),
    catalog.map((f) => h("div", {}, h("input", { type: "checkbox", name: "features", value: f.name,
      id: `feat-${f.name}` }), " ", h("label", { for: `feat-${f.name}` }, f.name)))),
  h("p", {}, h("button", { type: "submit" }, "Create set")), msg);
  return form;
}
