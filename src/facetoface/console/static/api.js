// The console's only way to the service: the JSON API with the signed-in user's bearer token.
//
// The token lives in this tab's sessionStorage (gone when the tab closes; never in a cookie,
// never in the URL). An app can hand its user's access token over by opening
// `/console#access_token=<token>`: the fragment never reaches a server, and it is moved into
// sessionStorage and removed from the address bar as soon as the page loads.

const TOKEN_KEY = "facetoface.access_token";
//  Another user's token from a link, kept aside until the signed-in user says what to do.
const OFFER_KEY = "facetoface.offered_token";

/**
 * Move an `#access_token=…` fragment into sessionStorage and strip it from the URL.
 *
 * While someone is signed in, a link carrying another user's token never switches users
 * silently (a link can be planted): the token is kept aside (`offeredToken`) and the
 * sign-in page asks. A fresh token of the same user simply replaces the old one.
 */
export function adoptTokenFromFragment() {
  if (!location.hash.includes("access_token=")) {
    return;
  }
  const params = new URLSearchParams(location.hash.slice(1));
  const offered = (params.get("access_token") || "").trim();
  history.replaceState(null, "", location.pathname + location.search);
  if (!offered) {
    return;
  }
  const current = token();
  const subject = (value) => claimsOf(value)?.sub ?? null;
  if (current && current !== offered && subject(current) !== subject(offered)) {
    sessionStorage.setItem(OFFER_KEY, offered);
    return;
  }
  sessionStorage.removeItem(OFFER_KEY);
  sessionStorage.setItem(TOKEN_KEY, offered);
}

/** Another user's token a link offered while someone was signed in (see above), or null. */
export function offeredToken() {
  return sessionStorage.getItem(OFFER_KEY);
}

export function dropOfferedToken() {
  sessionStorage.removeItem(OFFER_KEY);
}

const RETURN_KEY = "facetoface.return_to";
const RETURNABLE = /^\/console#session\/[0-9a-f-]{36}$/i;

/** Keep where a signed-out visitor was going (a session's details), for after sign-in. */
export function rememberReturn(path) {
  if (RETURNABLE.test(path)) {
    sessionStorage.setItem(RETURN_KEY, path);
  }
}

/** Where to go after sign-in, once (only a session's details in this console, never a URL
 * from elsewhere). */
export function takeReturn() {
  const path = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  return path && RETURNABLE.test(path) ? path : null;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(OFFER_KEY);
}

/**
 * The token's claims, decoded for display and navigation only (the server verifies the
 * token on every call; nothing here is trusted).
 */
export function claims() {
  return claimsOf(token());
}

/** The claims of any token (for display only, as above). */
export function claimsOf(value) {
  if (!value) {
    return null;
  }
  try {
    const payload = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(payload), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    const data = JSON.parse(json);
    return data && typeof data === "object" ? data : null;
  } catch {
    return null;
  }
}

export function isOperator(data = claims()) {
  return Boolean(
    data && data.app_metadata && data.app_metadata.facetoface_role === "operator",
  );
}

/** An RFC 9457 problem document the service answered with (or one made up for a network error). */
export class Problem extends Error {
  constructor(status, body, retryAfter = null) {
    const doc = body && typeof body === "object" ? body : {};
    super(doc.title || `HTTP ${status}`);
    this.status = status;
    this.title = doc.title || `The service answered ${status}`;
    this.detail = doc.detail || "";
    this.code = doc.code || null;
    this.requestId = doc.request_id || null;
    this.body = doc;
    // Seconds to wait before trying again, when the service said (`Retry-After`).
    this.retryAfter = retryAfterSeconds(retryAfter);
  }
}

/** Seconds a `Retry-After` header asks for (delay-seconds or an HTTP date); null if none. */
export function retryAfterSeconds(value, now = Date.now()) {
  if (!value) {
    return null;
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    return Number(text);
  }
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/** A fresh Idempotency-Key (random, 128 bits, hex). */
export function idempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Call the API; resolves to the JSON body (null for 204), rejects with a `Problem`. */
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  const bearer = token();
  if (bearer) {
    init.headers.Authorization = `Bearer ${bearer}`;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new Problem(0, {
      title: "The service cannot be reached",
      detail: "Check your connection (or that the service is running), then try again.",
    });
  }
  if (response.status === 204) {
    return null;
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Problem(response.status, data, response.headers.get("Retry-After"));
  }
  return data;
}
