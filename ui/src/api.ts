// The console's one way to the API: same origin, the bearer token from
// sessionStorage (never a cookie, never in a URL except the two places the
// API forces it: the SSE stream's ?token= and the WebSocket's).
const TOKEN_KEY = "lucid.token";
const REFRESH_KEY = "lucid.refresh";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null, refresh?: string | null) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  if (refresh) sessionStorage.setItem(REFRESH_KEY, refresh);
  else if (refresh === null || !t) sessionStorage.removeItem(REFRESH_KEY);
}

export class ApiError extends Error {
  constructor(public status: number, message: string, public body: unknown) {
    super(message);
  }
}

// The five documents' error bodies, reduced to one message.
function errorMessage(status: number, body: any): string {
  if (!body || typeof body !== "object") return "HTTP " + status;
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d: any) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  if (body.error && typeof body.error === "object") return body.error.message || body.error.code || "HTTP " + status;
  if (typeof body.error === "string") return body.error;
  if (typeof body.message === "string") return body.message;
  return "HTTP " + status;
}

let onUnauthorized: (() => void) | null = null;
export function whenUnauthorized(f: () => void) {
  onUnauthorized = f;
}

// Calls the API; returns the parsed JSON (null for 204). Throws ApiError.
export async function api<T = any>(method: string, path: string, body?: unknown, opts: { auth?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const t = token();
  if (t && opts.auth !== false) headers["Authorization"] = "Bearer " + t;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await r.text();
  let json: any = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
  }
  if (!r.ok) {
    if (r.status === 401 && opts.auth !== false && onUnauthorized) onUnauthorized();
    throw new ApiError(r.status, errorMessage(r.status, json), json);
  }
  return json as T;
}

// The cluster API wraps answers in {status, data, ...}: its data.
export async function cluster<T = any>(method: string, path: string, body?: unknown): Promise<{ data: T; pagination?: any }> {
  const r = await api(method, path, body);
  return { data: r.data as T, pagination: r.pagination };
}

export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? "?" + s : "";
}
