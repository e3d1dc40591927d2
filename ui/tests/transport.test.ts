import { describe, expect, it } from "vitest";
import type { ServerOut } from "../src/api/types";
import {
  FormError,
  TRANSPORT_OPTIONS,
  buildServerPayload,
  emptyServerForm,
  formFromServer,
  toApiTransport,
  uiTransportOf,
} from "../src/utils/transport";

function stored(overrides: Partial<ServerOut>): ServerOut {
  return {
    id: "s1",
    name: "petstore",
    alias: "petstore",
    description: null,
    transport: "http",
    url: null,
    spec_location: null,
    command: null,
    args: [],
    env_names: [],
    header_names: [],
    auth_type: "none",
    authorization_url: null,
    token_url: null,
    registration_url: null,
    client_id: null,
    client_secret_set: false,
    scopes: [],
    allowed_tools: null,
    access: "all_users",
    allowed_users: [],
    enabled: true,
    timeout_seconds: null,
    created_at: "2026-11-27T05:00:00",
    updated_at: "2026-11-27T05:00:00",
    ...overrides,
  };
}

describe("transport mapping", () => {
  it("offers the four transports the issue names", () => {
    expect(TRANSPORT_OPTIONS.map((o) => o.label)).toEqual(["Streamable HTTP", "SSE", "stdio", "OpenAPI"]);
  });

  it("never sends openapi to the API", () => {
    expect(toApiTransport("openapi")).toBe("http");
    expect(toApiTransport("streamable_http")).toBe("http");
    expect(toApiTransport("sse")).toBe("sse");
    expect(toApiTransport("stdio")).toBe("stdio");
    for (const option of TRANSPORT_OPTIONS) {
      expect(["http", "sse", "stdio"]).toContain(toApiTransport(option.value));
    }
  });

  it("maps an OpenAPI form to http + spec_location, without a url", () => {
    const payload = buildServerPayload(
      { ...emptyServerForm(), name: "petstore", transport: "openapi", specLocation: " https://p.example/openapi.json " },
      "create",
    );
    expect(payload.transport).toBe("http");
    expect(payload.spec_location).toBe("https://p.example/openapi.json");
    expect(payload).not.toHaveProperty("url");
    expect(JSON.stringify(payload)).not.toContain("openapi\"");
  });

  it("maps streamable HTTP to http + url", () => {
    const payload = buildServerPayload(
      { ...emptyServerForm(), name: "everything", url: "http://127.0.0.1:3201/mcp" },
      "create",
    );
    expect(payload).toMatchObject({ name: "everything", transport: "http", url: "http://127.0.0.1:3201/mcp" });
    expect(payload).not.toHaveProperty("spec_location");
  });

  it("clears the other transport's fields on update, so switching transport works", () => {
    const payload = buildServerPayload(
      { ...emptyServerForm(), name: "petstore", transport: "openapi", specLocation: "/srv/spec.yaml" },
      "update",
    );
    expect(payload).toMatchObject({ transport: "http", spec_location: "/srv/spec.yaml", url: null, command: null });
  });

  it("reads a stored http server with a spec as OpenAPI, and back", () => {
    expect(uiTransportOf(stored({ spec_location: "/srv/spec.yaml" }))).toBe("openapi");
    expect(uiTransportOf(stored({ url: "http://x/mcp" }))).toBe("streamable_http");
    const form = formFromServer(stored({ spec_location: "/srv/spec.yaml" }));
    expect(buildServerPayload(form, "update").transport).toBe("http");
  });

  it("builds stdio with args and env", () => {
    const payload = buildServerPayload(
      { ...emptyServerForm(), name: "files", transport: "stdio", command: "npx", args: "-y\n pkg \n", env: "A=1\nB=x=y" },
      "create",
    );
    expect(payload).toMatchObject({ transport: "stdio", command: "npx", args: ["-y", "pkg"], env: { A: "1", B: "x=y" } });
  });

  it("puts auth fields by type", () => {
    const oauth = buildServerPayload(
      {
        ...emptyServerForm(),
        name: "gh",
        url: "https://gh.example/mcp",
        authType: "oauth2",
        authorizationUrl: "https://as.example/authorize",
        registrationUrl: "https://as.example/register",
        issuer: "https://as.example",
        clientId: "abc",
        scopes: "read, write repo",
      },
      "create",
    );
    expect(oauth).toMatchObject({
      auth_type: "oauth2",
      authorization_url: "https://as.example/authorize",
      registration_url: "https://as.example/register",
      issuer: "https://as.example",
      client_id: "abc",
      scopes: ["read", "write", "repo"],
    });
    expect(oauth).not.toHaveProperty("token_url");
    expect(oauth).not.toHaveProperty("client_secret");

    const byok = buildServerPayload(
      { ...emptyServerForm(), name: "k", url: "https://k.example/mcp", authType: "byok", byokName: "X-API-Key", headerTemplate: "{key}" },
      "create",
    );
    expect(byok).toMatchObject({ auth_type: "byok", byok_mode: "header", byok_name: "X-API-Key", byok_template: "{key}" });
    expect(byok).not.toHaveProperty("headers");

    const query = buildServerPayload(
      { ...emptyServerForm(), name: "q", url: "https://q.example/mcp", authType: "byok", byokMode: "query", byokName: "api_key" },
      "create",
    );
    expect(query).toMatchObject({ byok_mode: "query", byok_name: "api_key" });
    expect(query).not.toHaveProperty("byok_template");

    expect(() =>
      buildServerPayload(
        { ...emptyServerForm(), name: "k", url: "https://k.example/mcp", authType: "byok", headerTemplate: "Bearer" },
        "create",
      ),
    ).toThrow(FormError);
    expect(() =>
      buildServerPayload(
        { ...emptyServerForm(), name: "k", url: "https://k.example/mcp", authType: "byok", byokMode: "env", byokName: "KEY" },
        "create",
      ),
    ).toThrow(/stdio/);

    const staticHeader = buildServerPayload(
      { ...emptyServerForm(), name: "s", url: "https://s.example/mcp", authType: "static", headerName: "X-Token", headerValue: "t0k" },
      "create",
    );
    expect(staticHeader).toMatchObject({ auth_type: "static", headers: { "X-Token": "t0k" } });
  });

  it("keeps a stored issuer through an edit, and clears it when blanked", () => {
    // The issuer checks the callback's `iss` (RFC 9207) when endpoints are stored instead of discovered.
    const form = formFromServer(
      stored({ auth_type: "oauth2", url: "https://gh.example/mcp", authorization_url: "https://as.example/a", issuer: "https://as.example" }),
    );
    expect(form.issuer).toBe("https://as.example");
    expect(buildServerPayload(form, "update").issuer).toBe("https://as.example");
    expect(buildServerPayload({ ...form, issuer: " " }, "update").issuer).toBeNull();
    expect(buildServerPayload({ ...form, issuer: "" }, "create")).not.toHaveProperty("issuer");
  });

  it("sends allowed tools as a list, and clears them on update when blank", () => {
    const base = { ...emptyServerForm(), name: "t", url: "https://t.example/mcp" };
    expect(buildServerPayload({ ...base, allowedTools: "echo\n get-sum \n" }, "create").allowed_tools).toEqual([
      "echo",
      "get-sum",
    ]);
    expect(buildServerPayload(base, "create")).not.toHaveProperty("allowed_tools");
    expect(buildServerPayload(base, "update").allowed_tools).toBeNull();
  });

  it("sends an OpenAPI server's base URL and filters, and clears them when the transport changes", () => {
    const form = {
      ...emptyServerForm(),
      name: "notes",
      transport: "openapi" as const,
      specLocation: "https://n.example/openapi.json",
      openapiBaseUrl: " https://n.example/v2 ",
      openapiInclude: "notes\n getNote \n",
      openapiExclude: "",
    };
    expect(buildServerPayload(form, "create")).toMatchObject({
      openapi_base_url: "https://n.example/v2",
      openapi_include: ["notes", "getNote"],
    });
    expect(buildServerPayload(form, "create")).not.toHaveProperty("openapi_exclude");
    expect(buildServerPayload(form, "update").openapi_exclude).toBeNull();
    const switched = buildServerPayload({ ...form, transport: "streamable_http", url: "https://n.example/mcp" }, "update");
    expect(switched).toMatchObject({ spec_location: null, openapi_base_url: null, openapi_include: null, openapi_exclude: null });
    const back = formFromServer(
      stored({ spec_location: "/srv/spec.yaml", openapi_base_url: "https://b", openapi_include: ["a", "b"], openapi_exclude: null }),
    );
    expect([back.openapiBaseUrl, back.openapiInclude, back.openapiExclude]).toEqual(["https://b", "a\nb", ""]);
  });

  it("lets an OpenAPI server's spec say where a BYOK key goes (no byok_name sent)", () => {
    const form = {
      ...emptyServerForm(),
      name: "notes",
      transport: "openapi" as const,
      specLocation: "https://n.example/openapi.json",
      authType: "byok" as const,
      byokMode: "spec" as const,
    };
    const created = buildServerPayload(form, "create");
    expect(created.auth_type).toBe("byok");
    expect(created).not.toHaveProperty("byok_name");
    expect(created).not.toHaveProperty("byok_mode");
    expect(buildServerPayload(form, "update")).toMatchObject({ byok_mode: null, byok_name: null, byok_template: null });
    expect(() => buildServerPayload({ ...form, transport: "streamable_http", url: "https://n.example/mcp" }, "create")).toThrow(
      /only an OpenAPI server/,
    );
    const storedSpec = stored({ spec_location: "/srv/spec.yaml", auth_type: "byok", byok_name: null, byok_mode: null });
    expect(formFromServer(storedSpec).byokMode).toBe("spec");
    expect(formFromServer({ ...storedSpec, byok_name: "X-Key", byok_mode: "query" }).byokMode).toBe("query");
  });

  it("refuses an incomplete form before any call", () => {
    expect(() => buildServerPayload({ ...emptyServerForm(), name: "x", transport: "openapi" }, "create")).toThrow(
      /OpenAPI document/,
    );
  });
});
