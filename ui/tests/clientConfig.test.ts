import { describe, expect, it } from "vitest";
import { KEY_PLACEHOLDER, clientConfig, endpointUrl, whereToPaste } from "../src/utils/clientConfig";

const ORIGIN = "http://127.0.0.1:4000";

describe("client setup", () => {
  it("points at /mcp or one server", () => {
    expect(endpointUrl(ORIGIN, null)).toBe("http://127.0.0.1:4000/mcp");
    expect(endpointUrl(`${ORIGIN}/`, "git hub")).toBe("http://127.0.0.1:4000/mcp/git%20hub");
  });

  it("gives valid JSON for the JSON clients with a key, the key as a placeholder", () => {
    for (const kind of ["claude_desktop", "cursor", "vscode"] as const) {
      const text = clientConfig(kind, ORIGIN, "everything", "key");
      expect(() => JSON.parse(text)).not.toThrow();
      expect(text).toContain("http://127.0.0.1:4000/mcp/everything");
    }
    expect(JSON.parse(clientConfig("cursor", ORIGIN, null, "key"))).toEqual({
      mcpServers: { "mcp-hub": { url: `${ORIGIN}/mcp`, headers: { Authorization: `Bearer ${KEY_PLACEHOLDER}` } } },
    });
    expect(JSON.parse(clientConfig("vscode", ORIGIN, null, "key"))).toEqual({
      inputs: [{ type: "promptString", id: "mcp-hub-key", description: "mcp-hub API key", password: true }],
      servers: {
        "mcp-hub": { type: "http", url: `${ORIGIN}/mcp`, headers: { Authorization: "Bearer ${input:mcp-hub-key}" } },
      },
    });
  });

  it("gives Claude Desktop mcp-remote for a key, with --allow-http only off loopback over http", () => {
    expect(JSON.parse(clientConfig("claude_desktop", ORIGIN, null, "key"))).toEqual({
      mcpServers: {
        "mcp-hub": {
          command: "npx",
          args: ["-y", "mcp-remote", `${ORIGIN}/mcp`, "--header", "Authorization:${MCP_HUB_AUTH}"],
          env: { MCP_HUB_AUTH: `Bearer ${KEY_PLACEHOLDER}` },
        },
      },
    });
    const lan = JSON.parse(clientConfig("claude_desktop", "http://hub.lan:4000", null, "key"));
    expect(lan.mcpServers["mcp-hub"].args).toContain("--allow-http");
    const tls = JSON.parse(clientConfig("claude_desktop", "https://hub.example.com", null, "key"));
    expect(tls.mcpServers["mcp-hub"].args).not.toContain("--allow-http");
  });

  it("with OAuth gives no header at all: the client signs in through the hub", () => {
    // Claude Desktop's custom connectors take only a URL (Settings → Connectors), and need public HTTPS.
    expect(clientConfig("claude_desktop", "https://hub.example.com", "git", "oauth")).toBe(
      "https://hub.example.com/mcp/git",
    );
    expect(whereToPaste("claude_desktop", "oauth")).toContain("Add custom connector");
    expect(whereToPaste("claude_desktop", "oauth")).toContain("public HTTPS");
    expect(JSON.parse(clientConfig("cursor", ORIGIN, null, "oauth"))).toEqual({
      mcpServers: { "mcp-hub": { url: `${ORIGIN}/mcp` } },
    });
    expect(JSON.parse(clientConfig("vscode", ORIGIN, null, "oauth"))).toEqual({
      servers: { "mcp-hub": { type: "http", url: `${ORIGIN}/mcp` } },
    });
    expect(clientConfig("claude_code", ORIGIN, null, "oauth")).toBe(`claude mcp add --transport http mcp-hub ${ORIGIN}/mcp`);
    for (const kind of ["claude_desktop", "claude_code", "cursor", "vscode"] as const) {
      expect(clientConfig(kind, ORIGIN, null, "oauth")).not.toContain("Authorization");
    }
  });

  it("gives a shell command for Claude Code with a key", () => {
    expect(clientConfig("claude_code", ORIGIN, null, "key")).toBe(
      `claude mcp add --transport http mcp-hub ${ORIGIN}/mcp --header 'Authorization: Bearer ${KEY_PLACEHOLDER}'`,
    );
  });
});
