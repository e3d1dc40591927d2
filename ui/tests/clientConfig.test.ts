import { describe, expect, it } from "vitest";
import { KEY_PLACEHOLDER, clientConfig, endpointUrl } from "../src/utils/clientConfig";

const ORIGIN = "http://127.0.0.1:4000";

describe("client setup", () => {
  it("points at /mcp or one server", () => {
    expect(endpointUrl(ORIGIN, null)).toBe("http://127.0.0.1:4000/mcp");
    expect(endpointUrl(`${ORIGIN}/`, "git hub")).toBe("http://127.0.0.1:4000/mcp/git%20hub");
  });

  it("gives valid JSON for the JSON clients, with the key as a placeholder", () => {
    for (const kind of ["claude_desktop", "cursor", "vscode"] as const) {
      const text = clientConfig(kind, ORIGIN, "everything");
      expect(() => JSON.parse(text)).not.toThrow();
      expect(text).toContain("http://127.0.0.1:4000/mcp/everything");
    }
    expect(JSON.parse(clientConfig("cursor", ORIGIN, null))).toEqual({
      mcpServers: { "mcp-hub": { url: `${ORIGIN}/mcp`, headers: { Authorization: `Bearer ${KEY_PLACEHOLDER}` } } },
    });
    const vscode = JSON.parse(clientConfig("vscode", ORIGIN, null));
    expect(vscode.servers["mcp-hub"]).toMatchObject({ type: "http", url: `${ORIGIN}/mcp` });
  });

  it("gives a shell command for Claude Code", () => {
    expect(clientConfig("claude_code", ORIGIN, null)).toBe(
      `claude mcp add --transport http mcp-hub ${ORIGIN}/mcp --header 'Authorization: Bearer ${KEY_PLACEHOLDER}'`,
    );
  });
});
