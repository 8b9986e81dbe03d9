// Tiny DOM helpers: h("tag", {attrs}, ...children); text is always set as text, never HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// One Intl formatter per precision: Number.toLocaleString builds a new one on every call,
// which dominates rendering a table of 1,000 versions.
const formatters = new Map();
function numberFormat(d) {
  if (!formatters.has(d)) formatters.set(d, new Intl.NumberFormat("en", { maximumFractionDigits: d }));
  return formatters.get(d);
}

export const fmt = {
  int: (n) => (n === null || n === undefined ? "–" : numberFormat(0).format(n)),
  num: (n, d = 3) => (n === null || n === undefined ? "–" : numberFormat(d).format(n)),
  bytes: (n) => {
    if (n === null || n === undefined) return "–";
    const u = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
  },
  time: (s) => (s ? new Date(s).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–"),
  ago: (s) => {
    if (!s) return "never";
    const m = (Date.now() - new Date(s).getTime()) / 60000;
    if (m < 90) return `${Math.round(m)} min ago`;
    if (m < 48 * 60) return `${Math.round(m / 60)} h ago`;
    return `${Math.round(m / 1440)} days ago`;
  },
};

export function stage(s) { return h("span", { class: `stage stage-${s}` }, s); }

export function table(columns, rows, caption) {
  return h("div", { class: "table-wrap" }, h("table", {},
    caption ? h("caption", { class: "muted" }, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) =>
      h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, columns.map((c) =>
      h("td", { class: c.num ? "num" : null }, c.value(r)))))
      : h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "Nothing yet.")))));
}

export function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, `Error${e.status ? ` ${e.status}` : ""}: ${e.message}`);
}

export const enc = encodeURIComponent;

// HTML-escaped text, for the few long tables built as one string (1,000+ rows render in one
// parse instead of thousands of createElement calls).
const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function esc(v) { return String(v ?? "").replace(/[&<>"']/g, (c) => ESC[c]); }
