// The public JSON API, with the API key (sessionStorage) on every call.
const KEY = "aihub.key";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (k) => sessionStorage.setItem(KEY, k),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorized = async () => false;
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export async function api(path, { method = "GET", params, body } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const headers = { Accept: "application/json" };
    const k = key.get();
    if (k) headers.Authorization = `Bearer ${k}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status === 401 && (await onUnauthorized(attempt > 0))) continue;
    const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
    if (!r.ok) throw new ApiError(r.status, data?.detail ?? r.statusText);
    return data;
  }
  throw new ApiError(401, "an API key is required");
}

// Which optional endpoints this server has (e.g. forecast monitoring): read once from the
// OpenAPI document, so the dashboard never calls a route that does not exist.
let paths;
export async function hasRoute(method, path) {
  paths ??= api("/openapi.json").then((d) => d.paths).catch(() => ({}));
  return Boolean((await paths)[path]?.[method.toLowerCase()]);
}

let me;
export function whoami() {
  me ??= api("/ai/auth/whoami").catch((e) => { me = undefined; throw e; });
  return me;
}
export function forgetWhoami() { me = undefined; }

// The window the monitoring views score: the last 28 days.
export function recentWindow(days = 28) {
  const end = new Date(Math.ceil(Date.now() / 3600e3) * 3600e3);
  return { start: new Date(end - days * 86400e3).toISOString(), end: end.toISOString() };
}
