/**
 * The server form and its mapping to the API. "OpenAPI" is a UI-only transport: the API takes `http`
 * with `spec_location` and refuses "openapi", so `buildServerPayload` is the only way a form reaches
 * the API, and every call (create, update, test) goes through it.
 */
import type { Access, ApiTransport, AuthType, ByokMode, ServerOut, ServerPayload } from "../api/types";

export type UiTransport = "streamable_http" | "sse" | "stdio" | "openapi";

export const TRANSPORT_OPTIONS: ReadonlyArray<{ value: UiTransport; label: string }> = [
  { value: "streamable_http", label: "Streamable HTTP" },
  { value: "sse", label: "SSE" },
  { value: "stdio", label: "stdio" },
  { value: "openapi", label: "OpenAPI" },
];

export const AUTH_OPTIONS: ReadonlyArray<{ value: AuthType; label: string }> = [
  { value: "none", label: "None" },
  { value: "static", label: "Static header (shared by everyone)" },
  { value: "byok", label: "BYOK: each user brings their own key" },
  { value: "oauth2", label: "OAuth2: each user signs in" },
];

export const ACCESS_OPTIONS: ReadonlyArray<{ value: Access; label: string }> = [
  { value: "all_users", label: "All users" },
  { value: "listed_users", label: "Only the users ticked below" },
  { value: "public", label: "Anyone, even without a hub key" },
];

/**
 * Where a BYOK key goes. "spec" is UI-only, for OpenAPI servers: the API's own security schemes say
 * (the payload then names no byok_name, which is what tells the hub to follow the spec).
 */
export type UiByokMode = ByokMode | "spec";

export const BYOK_MODE_OPTIONS: ReadonlyArray<{ value: UiByokMode; label: string; nameLabel: string }> = [
  { value: "spec", label: "Where the API's spec says (its security schemes)", nameLabel: "" },
  { value: "header", label: "In a header", nameLabel: "Header name" },
  { value: "query", label: "As a query parameter", nameLabel: "Query parameter name" },
  { value: "env", label: "In an environment variable (stdio; one process per user)", nameLabel: "Variable name" },
];

/** The placeholder the hub replaces with the user's key in a BYOK header template. */
export const BYOK_PLACEHOLDER = "{key}";

export interface ServerForm {
  name: string;
  description: string;
  transport: UiTransport;
  url: string;
  specLocation: string;
  command: string;
  /** One argument per line. */
  args: string;
  /** KEY=VALUE per line; write-only (blank on edit keeps what is stored). */
  env: string;
  authType: AuthType;
  headerName: string;
  /** Static header value (write-only). */
  headerValue: string;
  /** How a user's key reaches the upstream. */
  byokMode: UiByokMode;
  /** Header, query parameter or env variable that carries the key. */
  byokName: string;
  /** BYOK header template, e.g. "Bearer {key}" (header mode). */
  headerTemplate: string;
  authorizationUrl: string;
  /** The authorization server's issuer (from Discover): the hub checks the callback's `iss` against it. */
  issuer: string;
  tokenUrl: string;
  registrationUrl: string;
  clientId: string;
  /** Write-only: blank on edit keeps the stored secret. */
  clientSecret: string;
  /** Space- or comma-separated. */
  scopes: string;
  access: Access;
  allowedUsers: string[];
  /** Upstream tool names users may call, one per line; blank: all of them. */
  allowedTools: string;
  enabled: boolean;
  /** OpenAPI: where calls go instead of the spec's server URL. */
  openapiBaseUrl: string;
  /** OpenAPI: tags or operationIds to keep / leave out, one per line. */
  openapiInclude: string;
  openapiExclude: string;
}

export function emptyServerForm(): ServerForm {
  return {
    name: "",
    description: "",
    transport: "streamable_http",
    url: "",
    specLocation: "",
    command: "",
    args: "",
    env: "",
    authType: "none",
    headerName: "Authorization",
    headerValue: "",
    byokMode: "header",
    byokName: "Authorization",
    headerTemplate: "Bearer {key}",
    authorizationUrl: "",
    issuer: "",
    tokenUrl: "",
    registrationUrl: "",
    clientId: "",
    clientSecret: "",
    scopes: "",
    access: "all_users",
    allowedUsers: [],
    allowedTools: "",
    enabled: true,
    openapiBaseUrl: "",
    openapiInclude: "",
    openapiExclude: "",
  };
}

export function toApiTransport(transport: UiTransport): ApiTransport {
  switch (transport) {
    case "streamable_http":
    case "openapi":
      return "http";
    case "sse":
      return "sse";
    case "stdio":
      return "stdio";
  }
}

/** How a stored server shows in the UI: an `http` server with a spec is an OpenAPI server. */
export function uiTransportOf(server: Pick<ServerOut, "transport" | "spec_location">): UiTransport {
  if (server.transport === "http") return server.spec_location ? "openapi" : "streamable_http";
  if (server.transport === "sse") return "sse";
  if (server.transport === "stdio") return "stdio";
  // Anything else came from outside this UI; show it as the API's default rather than guess.
  return "streamable_http";
}

export function transportLabel(transport: UiTransport): string {
  return TRANSPORT_OPTIONS.find((option) => option.value === transport)?.label ?? transport;
}

function blankToNull(value: string): string | null {
  const trimmed = value.trim();
  return trimmed ? trimmed : null;
}

export function splitScopes(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .map((scope) => scope.trim())
    .filter(Boolean);
}

/** Non-blank lines, trimmed (the form's one-per-line fields). */
export function lines(value: string): string[] {
  return value
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

export class FormError extends Error {}

function parsePairs(value: string, what: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const line of lines(value)) {
    const at = line.indexOf("=");
    if (at <= 0) throw new FormError(`${what}: "${line.split("=")[0]}" needs the form NAME=VALUE`);
    pairs[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return pairs;
}

/**
 * The API body for a form. `mode: "update"` sends every field of the chosen transport and clears the
 * others (so switching transport works), and leaves write-only secrets alone when their inputs are blank.
 */
export function buildServerPayload(form: ServerForm, mode: "create" | "update"): ServerPayload {
  const creating = mode === "create";
  const transport = toApiTransport(form.transport);
  const payload: ServerPayload = {
    name: form.name.trim(),
    transport,
    auth_type: form.authType,
    access: form.access,
    enabled: form.enabled,
  };
  const description = blankToNull(form.description);
  if (description !== null || !creating) payload.description = description;

  const url = blankToNull(form.url);
  const spec = blankToNull(form.specLocation);
  const command = blankToNull(form.command);
  switch (form.transport) {
    case "streamable_http":
    case "sse":
      if (!url) throw new FormError("URL: enter the server's MCP endpoint URL");
      payload.url = url;
      if (!creating) {
        payload.spec_location = null;
        payload.command = null;
        payload.args = [];
        clearOpenApiSettings(payload);
      }
      break;
    case "openapi": {
      if (!spec) throw new FormError("OpenAPI document: enter its URL or file path");
      payload.spec_location = spec;
      const baseUrl = blankToNull(form.openapiBaseUrl);
      const include = lines(form.openapiInclude);
      const exclude = lines(form.openapiExclude);
      if (baseUrl !== null || !creating) payload.openapi_base_url = baseUrl;
      if (include.length > 0 || !creating) payload.openapi_include = include.length > 0 ? include : null;
      if (exclude.length > 0 || !creating) payload.openapi_exclude = exclude.length > 0 ? exclude : null;
      if (!creating) {
        payload.url = null;
        payload.command = null;
        payload.args = [];
      }
      break;
    }
    case "stdio": {
      if (!command) throw new FormError("Command: enter the program to run");
      payload.command = command;
      payload.args = lines(form.args);
      const env = parsePairs(form.env, "Environment");
      if (Object.keys(env).length > 0) payload.env = env;
      if (!creating) {
        payload.url = null;
        payload.spec_location = null;
        clearOpenApiSettings(payload);
      }
      break;
    }
  }

  const headerName = form.headerName.trim();
  if (form.authType === "static" && form.headerValue) {
    if (!headerName) throw new FormError("Header name: enter the header to send");
    payload.headers = { [headerName]: form.headerValue };
  } else if (form.authType === "static" && creating) {
    throw new FormError("Header value: enter the value to send");
  }
  if (form.authType === "byok") {
    const mode = form.byokMode;
    if (mode === "spec") {
      if (form.transport !== "openapi") {
        throw new FormError("BYOK: only an OpenAPI server has a spec that says where the key goes");
      }
      if (!creating) {
        payload.byok_mode = null;
        payload.byok_name = null;
        payload.byok_template = null;
      }
    } else {
      const name = form.byokName.trim();
      if (!name) throw new FormError("BYOK: name the header, query parameter or variable that carries the key");
      if (mode === "env" && form.transport !== "stdio") {
        throw new FormError("BYOK: an environment variable only reaches a stdio server");
      }
      payload.byok_mode = mode;
      payload.byok_name = name;
      if (mode === "header") {
        const template = form.headerTemplate.trim();
        if (!template.includes(BYOK_PLACEHOLDER)) {
          throw new FormError(`Header template: it must contain ${BYOK_PLACEHOLDER}, where the user's key goes`);
        }
        payload.byok_template = template;
      } else if (!creating) {
        payload.byok_template = null;
      }
    }
  }
  if (form.authType === "oauth2") {
    const authorizationUrl = blankToNull(form.authorizationUrl);
    const tokenUrl = blankToNull(form.tokenUrl);
    const registrationUrl = blankToNull(form.registrationUrl);
    const issuer = blankToNull(form.issuer);
    const clientId = blankToNull(form.clientId);
    if (authorizationUrl !== null || !creating) payload.authorization_url = authorizationUrl;
    if (tokenUrl !== null || !creating) payload.token_url = tokenUrl;
    if (registrationUrl !== null || !creating) payload.registration_url = registrationUrl;
    if (issuer !== null || !creating) payload.issuer = issuer;
    if (clientId !== null || !creating) payload.client_id = clientId;
    if (form.clientSecret) payload.client_secret = form.clientSecret;
    const scopes = splitScopes(form.scopes);
    if (scopes.length > 0 || !creating) payload.scopes = scopes;
  }
  const allowedTools = lines(form.allowedTools);
  if (allowedTools.length > 0) payload.allowed_tools = allowedTools;
  else if (!creating) payload.allowed_tools = null;
  if (form.access === "listed_users") payload.allowed_users = [...form.allowedUsers];
  else if (!creating) payload.allowed_users = [];
  return payload;
}

function clearOpenApiSettings(payload: ServerPayload): void {
  payload.openapi_base_url = null;
  payload.openapi_include = null;
  payload.openapi_exclude = null;
}

/** The form for editing a stored server; write-only values start blank. */
export function formFromServer(server: ServerOut): ServerForm {
  const base = emptyServerForm();
  const authType = (AUTH_OPTIONS.some((o) => o.value === server.auth_type) ? server.auth_type : "none") as AuthType;
  const access = (ACCESS_OPTIONS.some((o) => o.value === server.access) ? server.access : "all_users") as Access;
  return {
    ...base,
    name: server.name,
    description: server.description ?? "",
    transport: uiTransportOf(server),
    url: server.url ?? "",
    specLocation: server.spec_location ?? "",
    command: server.command ?? "",
    args: server.args.join("\n"),
    authType,
    headerName: server.header_names[0] ?? base.headerName,
    byokMode: storedByokMode(server),
    byokName: server.byok_name ?? base.byokName,
    headerTemplate: server.byok_template ?? base.headerTemplate,
    authorizationUrl: server.authorization_url ?? "",
    issuer: server.issuer ?? "",
    tokenUrl: server.token_url ?? "",
    registrationUrl: server.registration_url ?? "",
    clientId: server.client_id ?? "",
    scopes: server.scopes.join(" "),
    access,
    allowedUsers: [...server.allowed_users],
    allowedTools: (server.allowed_tools ?? []).join("\n"),
    enabled: server.enabled,
    openapiBaseUrl: server.openapi_base_url ?? "",
    openapiInclude: (server.openapi_include ?? []).join("\n"),
    openapiExclude: (server.openapi_exclude ?? []).join("\n"),
  };
}

function storedByokMode(server: ServerOut): UiByokMode {
  // An OpenAPI server whose BYOK delivery names nothing follows its spec's security schemes.
  if (uiTransportOf(server) === "openapi" && server.auth_type === "byok" && !server.byok_name) return "spec";
  return BYOK_MODE_OPTIONS.some((o) => o.value === server.byok_mode && o.value !== "spec")
    ? (server.byok_mode as ByokMode)
    : "header";
}
