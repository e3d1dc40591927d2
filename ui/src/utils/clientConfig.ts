/** Ready-to-paste client configuration for the hub's MCP endpoint (`/mcp`) or one server (`/mcp/{name}`). */

export type ClientKind = "claude_desktop" | "claude_code" | "cursor" | "vscode";

export const CLIENTS: ReadonlyArray<{ value: ClientKind; label: string; where: string }> = [
  {
    value: "claude_desktop",
    label: "Claude Desktop",
    where: "claude_desktop_config.json (Settings → Developer → Edit config); needs Node.js for mcp-remote",
  },
  { value: "claude_code", label: "Claude Code", where: "run in a terminal" },
  { value: "cursor", label: "Cursor", where: "~/.cursor/mcp.json, or .cursor/mcp.json in a project" },
  { value: "vscode", label: "VS Code", where: ".vscode/mcp.json in a workspace (VS Code asks for the key once)" },
];

/** Never the signed-in key: a config pasted into a chat or a repository must not carry a secret. */
export const KEY_PLACEHOLDER = "<your mcp-hub API key>";

export function endpointUrl(origin: string, serverName: string | null): string {
  const base = origin.replace(/\/+$/, "");
  return serverName ? `${base}/mcp/${encodeURIComponent(serverName)}` : `${base}/mcp`;
}

/** A client-side name for the entry: letters, digits, - and _. */
export function entryName(serverName: string | null): string {
  const raw = serverName ? `mcp-hub-${serverName}` : "mcp-hub";
  return raw.replace(/[^A-Za-z0-9_-]/g, "_");
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export function clientConfig(kind: ClientKind, origin: string, serverName: string | null): string {
  const url = endpointUrl(origin, serverName);
  const name = entryName(serverName);
  switch (kind) {
    case "claude_desktop":
      return json({
        mcpServers: {
          [name]: {
            command: "npx",
            args: ["-y", "mcp-remote", url, "--header", "Authorization:${MCP_HUB_AUTH}"],
            env: { MCP_HUB_AUTH: `Bearer ${KEY_PLACEHOLDER}` },
          },
        },
      });
    case "claude_code":
      return [
        "claude mcp add --transport http",
        shellQuote(name),
        shellQuote(url),
        "--header",
        shellQuote(`Authorization: Bearer ${KEY_PLACEHOLDER}`),
      ].join(" ");
    case "cursor":
      return json({ mcpServers: { [name]: { url, headers: { Authorization: `Bearer ${KEY_PLACEHOLDER}` } } } });
    case "vscode":
      return json({
        inputs: [{ type: "promptString", id: `${name}-key`, description: "mcp-hub API key", password: true }],
        servers: { [name]: { type: "http", url, headers: { Authorization: `Bearer \${input:${name}-key}` } } },
      });
  }
}
