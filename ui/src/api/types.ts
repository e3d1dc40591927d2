/** Shapes of the hub's REST API (mcp_hub/admin/schemas.py and the credential endpoints' contract). */

export type ApiTransport = "http" | "sse" | "stdio";
export type AuthType = "none" | "static" | "byok" | "oauth2";
export type Access = "public" | "all_users" | "listed_users";
export type ByokMode = "header" | "query" | "env";

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface ServerOut {
  id: string;
  name: string;
  alias: string;
  description: string | null;
  transport: string;
  url: string | null;
  spec_location: string | null;
  command: string | null;
  args: string[];
  env_names: string[];
  header_names: string[];
  auth_type: string;
  authorization_url: string | null;
  token_url: string | null;
  registration_url: string | null;
  client_id: string | null;
  client_secret_set: boolean;
  scopes: string[];
  allowed_tools: string[] | null;
  access: string;
  allowed_users: string[];
  enabled: boolean;
  timeout_seconds: number | null;
  byok_mode?: string | null;
  byok_name?: string | null;
  byok_template?: string | null;
  issuer?: string | null;
  oauth_discovered_at?: string | null;
  openapi_base_url?: string | null;
  openapi_include?: string[] | null;
  openapi_exclude?: string[] | null;
  /** When the OpenAPI document was last read and validated. */
  spec_fetched_at?: string | null;
  created_at: string;
  updated_at: string;
}

/** What POST /v1/servers and PATCH /v1/servers/{id} take. `transport` is never "openapi". */
export interface ServerPayload {
  name?: string;
  alias?: string;
  description?: string | null;
  transport?: ApiTransport;
  url?: string | null;
  spec_location?: string | null;
  command?: string | null;
  args?: string[];
  env?: Record<string, string>;
  headers?: Record<string, string>;
  auth_type?: AuthType;
  authorization_url?: string | null;
  token_url?: string | null;
  client_id?: string | null;
  client_secret?: string;
  scopes?: string[];
  access?: Access;
  allowed_users?: string[];
  allowed_tools?: string[] | null;
  enabled?: boolean;
  byok_mode?: ByokMode | null;
  byok_name?: string | null;
  byok_template?: string | null;
  openapi_base_url?: string | null;
  openapi_include?: string[] | null;
  openapi_exclude?: string[] | null;
}

export interface UserOut {
  id: string;
  name: string;
  email: string | null;
  disabled: boolean;
  created_at: string;
  updated_at: string;
}

export interface KeyOut {
  id: string;
  user_id: string;
  name: string | null;
  prefix: string;
  is_admin: boolean;
  allowed_servers: string[] | null;
  allowed_tools: string[] | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface KeyCreated extends KeyOut {
  key: string;
}

/**
 * One row of GET /v1/credentials as this UI reads it. The endpoint is being written alongside the UI;
 * the reader (`normalizeConnection`) tolerates the server named flat or nested, and rows for servers
 * the user has not connected yet (`type: null`).
 */
export interface CredentialRow {
  id?: string | null;
  server_id?: string;
  server_name?: string;
  server?: { id?: string; name?: string; auth_type?: string } | null;
  auth_type?: string | null;
  type?: "oauth2" | "byok" | null;
  expires_at?: string | null;
  status?: string | null;
  needs_reconnect?: boolean | null;
  updated_at?: string | null;
}
