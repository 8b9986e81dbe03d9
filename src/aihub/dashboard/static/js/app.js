// Hash router, tenant choice, and the API-key prompt.
import { api, forgetWhoami, key, setUnauthorizedHandler, whoami } from "./api.js";
import { errorBox, h } from "./ui.js";
import { overview } from "./pages/overview.js";
import { assets, asset } from "./pages/assets.js";
import { features } from "./pages/features.js";
import { exportsPage } from "./pages/exports.js";
import { models, compare } from "./pages/models.js";
import { modelVersion } from "./pages/version.js";

const TENANT = "aihub.tenant";
const main = document.getElementById("main");
const routes = [
  [/^\/$/, overview, "Overview"],
  [/^\/assets$/, assets, "Assets"],
  [/^\/assets\/(.+)$/, asset, "Asset"],
  [/^\/features$/, features, "Features"],
  [/^\/exports$/, exportsPage, "Exports"],
  [/^\/models$/, models, "Models"],
  [/^\/models\/compare\/([^/]+)\/([^/]+)$/, compare, "Compare"],
  [/^\/models\/([^/]+)$/, modelVersion, "Model version"],
];

export const state = { tenant: localStorage.getItem(TENANT) || "" };

// -- API key prompt: shown when the API answers 401 --------------------------------------
const dialog = document.getElementById("key-dialog");
let pending = null;
setUnauthorizedHandler((retry) => {
  if (retry) key.clear();
  if (!pending) {
    pending = new Promise((resolve) => {
      document.getElementById("key-error").textContent =
        retry ? "That key was refused (unknown or revoked)." : "";
      const form = document.getElementById("key-form");
      const input = document.getElementById("key-input");
      input.value = "";
      const done = (ok) => { dialog.removeEventListener("close", onClose); pending = null; resolve(ok); };
      const onClose = () => {
        const v = input.value.trim();
        if (v) { key.set(v); forgetWhoami(); done(true); } else done(false);
      };
      dialog.addEventListener("close", onClose);
      form.onsubmit = null;
      dialog.showModal();
      input.focus();
    });
  }
  return pending;
});

async function chooseTenant() {
  if (state.tenant) return state.tenant;
  try {
    const me = await whoami();
    const own = me.tenants.filter((t) => t !== "*");
    if (own.length) return own[0];
    const page = await api("/ai/models/", { params: { limit: 1 } });
    if (page.models.length) return page.models[0].tenant_id;
  } catch { /* fall through */ }
  return "tenant-123";
}

async function fillTenants() {
  const list = document.getElementById("tenant-list");
  try {
    const me = await whoami();
    const names = new Set(me.tenants.filter((t) => t !== "*"));
    document.getElementById("who").textContent =
      me.keys_required ? `key ${me.key_id} · ${me.role}` : "open (no keys configured)";
    list.replaceChildren(...[...names].map((t) => h("option", { value: t })));
  } catch { /* the page shows the error */ }
}

document.getElementById("tenant-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = document.getElementById("tenant").value.trim();
  if (!v) return;
  state.tenant = v;
  localStorage.setItem(TENANT, v);
  render();
});

async function notFound() {
  return [h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Overview"))];
}

let seq = 0;
export async function render() {
  const my = ++seq;
  const path = decodeURIComponent(location.hash.replace(/^#/, "").split("?")[0] || "/");
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  for (const a of document.querySelectorAll(".top nav a")) {
    const target = a.getAttribute("href").slice(1);
    const on = target === "/" ? path === "/" : path.startsWith(target);
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const route = routes.find(([re]) => re.test(path));
  const [re, page, title] = route ?? [/.*/, notFound, "Not found"];
  document.title = `${title} · aihub`;
  main.setAttribute("aria-busy", "true");
  try {
    state.tenant = await chooseTenant();
    localStorage.setItem(TENANT, state.tenant);
    document.getElementById("tenant").value = state.tenant;
    const view = await page({ args: path.match(re).slice(1), params, tenant: state.tenant, refresh: render });
    if (my !== seq) return;
    main.replaceChildren(...[].concat(view.nodes ?? view));
    view.mounted?.();
  } catch (e) {
    if (my !== seq) return;
    console.warn(e);
    main.replaceChildren(h("h1", {}, title), errorBox(e));
  } finally {
    main.removeAttribute("aria-busy");
    if (my === seq) {
      main.dataset.ready = String(my);
      performance.mark("aihub:ready");
    }
  }
  fillTenants();
}

export function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

window.addEventListener("hashchange", () => { render(); main.focus({ preventScroll: true }); });
render();
