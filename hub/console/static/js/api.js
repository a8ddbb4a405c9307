// The hub's HTTP API (docs/http_api.md), with the session cookie and the CSRF
// token of the login. The token stays in this module's memory only: no other
// page, and no later visit, can read it (a reload means logging in again).
let csrf = null;

export class ApiError extends Error {
  constructor(status, code, detail, body) {
    super(code + ": " + detail);
    this.status = status; this.code = code; this.detail = detail; this.body = body || {};
  }
}

export function setCsrf(token) { csrf = token; }
export function hasCsrf() { return csrf !== null; }

// A file as the raw body (the plan image): its own Content-Type, the CSRF token.
export async function upload(method, path, blob, contentType) {
  return send(path, {method, credentials: "same-origin", cache: "no-store", body: blob,
                     headers: {"Accept": "application/json", "Content-Type": contentType,
                               ...(csrf !== null ? {"X-CSRF-Token": csrf} : {})}});
}

export async function call(method, path, body) {
  const headers = {"Accept": "application/json"};
  const init = {method, headers, credentials: "same-origin", cache: "no-store"};
  if (method !== "GET") {
    if (csrf !== null) headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  return send(path, init);
}

async function send(path, init) {
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", String(err));
  }
  let doc = {};
  try { doc = await response.json(); } catch (err) { doc = {}; }
  if (!response.ok) {
    const code = doc.error || doc.outcome || ("http_" + response.status);
    const error = new ApiError(response.status, code, doc.detail || "", doc);
    error.retryAfter = response.headers.get("Retry-After");
    throw error;
  }
  return doc;
}
