import { describe, expect, it } from "vitest";
import { ApiClient, ApiError, allPages, probeRole, safeRedirectUrl } from "../src/api/client";
import { buildServerPayload, emptyServerForm } from "../src/utils/transport";

interface Seen {
  url: string;
  init: RequestInit;
}

function fakeFetch(status: number, body: unknown, seen: Seen[] = [], statusText = "") {
  return (async (url: string | URL | Request, init?: RequestInit) => {
    seen.push({ url: String(url), init: init ?? {} });
    const text = body === null ? "" : typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, {
      status,
      statusText,
      headers: { "content-type": typeof body === "string" ? "text/plain" : "application/json" },
    });
  }) as typeof fetch;
}

describe("ApiClient", () => {
  it("tests an OpenAPI form as http + spec_location, and health for several servers in one call", async () => {
    const seen: Seen[] = [];
    const client = new ApiClient("k", "", fakeFetch(200, { server_id: null, tools: [], allowed_tools: null, items: [] }, seen));
    const form = { ...emptyServerForm(), name: "pets", transport: "openapi" as const, specLocation: "https://api/o.json" };
    await client.testServerForm(buildServerPayload(form, "create"));
    expect(seen[0]?.url).toBe("/v1/servers/test");
    const sent = JSON.parse(String(seen[0]?.init.body)) as Record<string, unknown>;
    expect(sent.transport).toBe("http");
    expect(sent.spec_location).toBe("https://api/o.json");
    expect("url" in sent).toBe(false);

    await client.testServer("a/b");
    expect(seen[1]?.url).toBe("/v1/servers/a%2Fb/test");
    expect(seen[1]?.init.method).toBe("POST");
    await client.serverHealth(["s1", "s 2"]);
    expect(seen[2]?.url).toBe("/v1/server-health?server_id=s1&server_id=s%202");
    expect(await client.serverHealth([])).toEqual([]);
    expect(seen).toHaveLength(3);
    await client.discoverOAuth("https://x/mcp");
    expect(JSON.parse(String(seen[3]?.init.body))).toEqual({ url: "https://x/mcp" });
  });

  it("sends the key as a Bearer header, JSON bodies, and drops empty query values", async () => {
    const seen: Seen[] = [];
    const client = new ApiClient("mcph_k", "http://hub", fakeFetch(201, { id: "s1" }, seen));
    await client.createServer({ name: "x", transport: "http", url: "http://u/mcp" });
    await client.listServers(null, 5);
    expect(seen[0]?.url).toBe("http://hub/v1/servers");
    expect(seen[0]?.init.method).toBe("POST");
    expect((seen[0]?.init.headers as Record<string, string>).Authorization).toBe("Bearer mcph_k");
    expect(JSON.parse(String(seen[0]?.init.body))).toEqual({ name: "x", transport: "http", url: "http://u/mcp" });
    expect(seen[1]?.url).toBe("http://hub/v1/servers?limit=5");
  });

  it("turns an error answer into ApiError with the extracted message", async () => {
    const client = new ApiClient("k", "", fakeFetch(422, { detail: [{ loc: ["body", "url"], msg: "bad url" }] }));
    const error = await client.getServer("s").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toBe("url: bad url");
    expect((error as ApiError).status).toBe(422);
  });

  it("reports a refused key once, so the app can sign out", async () => {
    const reasons: string[] = [];
    const client = new ApiClient("k", "", fakeFetch(401, { detail: "unknown or revoked API key" }), (m) =>
      reasons.push(m),
    );
    await expect(client.listMyServers()).rejects.toThrow("unknown or revoked API key");
    expect(reasons).toEqual(["unknown or revoked API key"]);
  });

  it("says plainly when the hub cannot be reached", async () => {
    const failing = (async () => {
      throw new TypeError("fetch failed");
    }) as typeof fetch;
    await expect(new ApiClient("k", "", failing).listUsers()).rejects.toThrow(/Cannot reach the hub/);
  });

  it("tells an admin key from a user key", async () => {
    expect(await probeRole(new ApiClient("k", "", fakeFetch(200, { items: [], next_cursor: null })))).toBe("admin");
    expect(await probeRole(new ApiClient("k", "", fakeFetch(403, { detail: "not an admin key" })))).toBe("user");
    await expect(probeRole(new ApiClient("k", "", fakeFetch(401, { detail: "unknown key" })))).rejects.toThrow(
      "unknown key",
    );
  });

  it("walks every page, bounded", async () => {
    const pages: Record<string, { items: number[]; next_cursor: string | null }> = {
      start: { items: [1, 2], next_cursor: "a" },
      a: { items: [3], next_cursor: null },
    };
    expect(await allPages(async (cursor) => pages[cursor ?? "start"]!)).toEqual([1, 2, 3]);
    let calls = 0;
    await allPages(async () => {
      calls += 1;
      return { items: [], next_cursor: "again" };
    }, 3);
    expect(calls).toBe(3);
  });

  it("follows only http(s) authorization URLs", () => {
    expect(safeRedirectUrl("https://as.example/authorize?x=1")).toBe("https://as.example/authorize?x=1");
    expect(safeRedirectUrl("javascript:alert(1)")).toBeNull();
    expect(safeRedirectUrl("data:text/html,hi")).toBeNull();
    expect(safeRedirectUrl(42)).toBeNull();
  });
});
