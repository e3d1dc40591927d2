/** The one API client: Bearer key, JSON in and out, errors as `ApiError` with a readable message. */
import { extractErrorMessage } from "../utils/errors";
import type {
  ConnectionTest,
  DiscoveredOAuth,
  KeyCreated,
  KeyOut,
  MyServer,
  Page,
  ServerHealth,
  ServerOut,
  ServerPayload,
  UserOut,
} from "./types";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The sentence to show for a failed call: the hub's message for an `ApiError`, else the page's fallback. */
export function apiErrorMessage(caught: unknown, fallback: string): string {
  return caught instanceof ApiError ? caught.message : fallback;
}

type Query = Record<string, string | number | null | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return null;
  if ((response.headers.get("content-type") ?? "").includes("json")) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

export class ApiClient {
  constructor(
    private readonly key: string,
    private readonly baseUrl: string = "",
    private readonly fetcher: typeof fetch = (...args) => fetch(...args),
    /** Called when the hub refuses the key itself (revoked, deleted): the session is over. */
    private readonly onUnauthorized: (message: string) => void = () => {},
  ) {}

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== null && value !== undefined && value !== "") params.set(name, String(value));
    }
    const search = params.toString();
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.key}`,
      Accept: "application/json",
    };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await this.fetcher(`${this.baseUrl}${path}${search ? `?${search}` : ""}`, {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new ApiError("Cannot reach the hub: check that it is running and try again.", 0, null);
    }
    const body = await readBody(response);
    if (!response.ok) {
      const message = extractErrorMessage(body, response.statusText, response.status);
      if (response.status === 401) this.onUnauthorized(message);
      throw new ApiError(message, response.status, body);
    }
    return body as T;
  }

  // --- admin: servers, users, keys ------------------------------------------------------------------

  listServers(cursor: string | null = null, limit = 50): Promise<Page<ServerOut>> {
    return this.request("GET", "/v1/servers", { query: { limit, cursor } });
  }
  getServer(id: string): Promise<ServerOut> {
    return this.request("GET", `/v1/servers/${encodeURIComponent(id)}`);
  }
  createServer(payload: ServerPayload): Promise<ServerOut> {
    return this.request("POST", "/v1/servers", { body: payload });
  }
  updateServer(id: string, payload: ServerPayload): Promise<ServerOut> {
    return this.request("PATCH", `/v1/servers/${encodeURIComponent(id)}`, { body: payload });
  }
  /** Reads an OpenAPI server's spec again; a 422 lists the problems of an invalid one. */
  refreshServerSpec(id: string): Promise<ServerOut> {
    return this.request("POST", `/v1/servers/${encodeURIComponent(id)}/refresh`);
  }
  deleteServer(id: string): Promise<null> {
    return this.request("DELETE", `/v1/servers/${encodeURIComponent(id)}`);
  }
  /** Connects with the signed-in admin's own credential and lists the saved server's tools. */
  testServer(id: string): Promise<ConnectionTest> {
    return this.request("POST", `/v1/servers/${encodeURIComponent(id)}/test`);
  }
  /** The same for a form not saved yet; the payload comes from `buildServerPayload` (never "openapi"). */
  testServerForm(payload: ServerPayload): Promise<ConnectionTest> {
    return this.request("POST", "/v1/servers/test", { body: payload });
  }
  async serverHealth(ids: string[]): Promise<ServerHealth[]> {
    if (ids.length === 0) return [];
    const query = ids.map((id) => `server_id=${encodeURIComponent(id)}`).join("&");
    const answer = await this.request<{ items: ServerHealth[] }>("GET", `/v1/server-health?${query}`);
    return answer.items;
  }
  discoverOAuth(url: string): Promise<DiscoveredOAuth> {
    return this.request("POST", "/v1/oauth/discover", { body: { url } });
  }

  listUsers(cursor: string | null = null, limit = 50): Promise<Page<UserOut>> {
    return this.request("GET", "/v1/users", { query: { limit, cursor } });
  }
  createUser(body: { name: string; email?: string }): Promise<UserOut> {
    return this.request("POST", "/v1/users", { body });
  }

  listKeys(cursor: string | null = null, limit = 50): Promise<Page<KeyOut>> {
    return this.request("GET", "/v1/keys", { query: { limit, cursor } });
  }
  createKey(body: { user_id: string; name?: string; is_admin: boolean }): Promise<KeyCreated> {
    return this.request("POST", "/v1/keys", { body });
  }
  revokeKey(id: string): Promise<KeyOut> {
    return this.request("DELETE", `/v1/keys/${encodeURIComponent(id)}`);
  }

  // --- the signed-in user's own credentials ---------------------------------------------------------

  /** Every server the signed-in user may use, with the state of their own credential for it. */
  listMyServers(cursor: string | null = null, limit = 200): Promise<Page<MyServer>> {
    return this.request("GET", "/v1/me/servers", { query: { limit, cursor } });
  }
  /** `redirect` is the UI path the hub's OAuth callback sends the browser back to. */
  startOAuth(serverId: string, redirect: string): Promise<{ authorization_url: string }> {
    return this.request("GET", `/v1/servers/${encodeURIComponent(serverId)}/oauth/authorize`, {
      query: { redirect },
    });
  }
  disconnectOAuth(serverId: string): Promise<null> {
    return this.request("DELETE", `/v1/servers/${encodeURIComponent(serverId)}/oauth`);
  }
  saveByokKey(serverId: string, key: string): Promise<unknown> {
    return this.request("PUT", `/v1/servers/${encodeURIComponent(serverId)}/credential`, { body: { key } });
  }
  deleteByokKey(serverId: string): Promise<null> {
    return this.request("DELETE", `/v1/servers/${encodeURIComponent(serverId)}/credential`);
  }
}

/** Every page of a cursor-paginated list, bounded so a runaway cursor cannot loop forever. */
export async function allPages<T>(
  fetchPage: (cursor: string | null) => Promise<Page<T>>,
  maxPages = 50,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const result: Page<T> = await fetchPage(cursor);
    items.push(...result.items);
    if (!result.next_cursor) break;
    cursor = result.next_cursor;
  }
  return items;
}

/**
 * Who the key belongs to: an admin key can list servers; any other valid key gets 403 there.
 * Anything else (401, network) is an error the sign-in form shows.
 */
export async function probeRole(client: ApiClient): Promise<"admin" | "user"> {
  try {
    await client.listServers(null, 1);
    return "admin";
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return "user";
    throw error;
  }
}

/** Only http(s) URLs are followed for the OAuth redirect; anything else from an answer is refused. */
export function safeRedirectUrl(value: unknown): string | null {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.toString() : null;
  } catch {
    return null;
  }
}
