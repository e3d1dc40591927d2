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
  registration_url?: string | null;
  issuer?: string | null;
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

/** One tool as "test connection" lists it; `allowed` follows the server's `allowed_tools`. */
export interface ToolInfo {
  name: string;
  description: string | null;
  allowed: boolean;
}

/** POST /v1/servers/{id}/test and POST /v1/servers/test. */
export interface ConnectionTest {
  server_id: string | null;
  tools: ToolInfo[];
  allowed_tools: string[] | null;
}

/** GET /v1/server-health: what the hub process last saw of a server. */
export interface ServerHealth {
  server_id: string;
  state: "ok" | "failed" | "unknown";
  checked_at: string | null;
  error: string | null;
  tool_count: number | null;
}

/** POST /v1/oauth/discover: the authorization server of an MCP server URL, in the form's terms. */
export interface DiscoveredOAuth {
  issuer: string | null;
  authorization_url: string;
  token_url: string;
  registration_url: string | null;
  scopes: string[];
  resource_metadata_url: string | null;
}

/** GET /v1/me/servers: a server the signed-in user may use, with their own credential's state. */
export interface MyServer {
  id: string;
  name: string;
  alias: string;
  description: string | null;
  auth_type: string;
  per_user: boolean;
  credential_type: "oauth2" | "byok" | null;
  credential_status: string | null;
  expires_at: string | null;
  connected_at: string | null;
  connect_url: string | null;
}
