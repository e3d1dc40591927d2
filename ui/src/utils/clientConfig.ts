/** Ready-to-paste client configuration for the hub's MCP endpoint (`/mcp`) or one server (`/mcp/{name}`). */

export type ClientKind = "claude_desktop" | "claude_code" | "cursor" | "vscode";

/** How the client authenticates to the hub: OAuth (the hub's own authorization server; the client signs
 * the person in in the browser) or a hub API key sent as a header. */
export type ClientAuth = "oauth" | "key";

export const CLIENTS: ReadonlyArray<{ value: ClientKind; label: string }> = [
  { value: "claude_desktop", label: "Claude Desktop" },
  { value: "claude_code", label: "Claude Code" },
  { value: "cursor", label: "Cursor" },
  { value: "vscode", label: "VS Code" },
];

export const AUTHS: ReadonlyArray<{ value: ClientAuth; label: string }> = [
  { value: "oauth", label: "Sign in in the browser (OAuth)" },
  { value: "key", label: "Hub API key" },
];

/** Where the text goes and what to do next, per client and auth (docs/clients/*.md say the same). */
export function whereToPaste(kind: ClientKind, auth: ClientAuth): string {
  switch (kind) {
    case "claude_desktop":
      // Claude's custom connectors take a URL and OAuth only, and connect from Anthropic's servers; its
      // JSON config file only starts local (stdio) processes, so a key needs the mcp-remote bridge.
      return auth === "oauth"
        ? "Settings → Connectors → Add custom connector: paste this URL, leave the OAuth client fields empty, then Connect. Claude reaches the hub from Anthropic's servers: the hub must be on a public HTTPS URL."
        : "claude_desktop_config.json (Settings → Developer → Edit config). Claude Desktop starts mcp-remote (needs Node.js), which sends the key; restart Claude Desktop afterwards.";
    case "claude_code":
      return auth === "oauth"
        ? "Run in a terminal, then in Claude Code run /mcp, choose the server and Authenticate."
        : "Run in a terminal.";
    case "cursor":
      return auth === "oauth"
        ? "~/.cursor/mcp.json, or .cursor/mcp.json in a project; then Cursor Settings → MCP shows Needs login: click it and sign in."
        : "~/.cursor/mcp.json, or .cursor/mcp.json in a project.";
    case "vscode":
      return auth === "oauth"
        ? ".vscode/mcp.json in a workspace; Start the server and allow VS Code to sign in with the hub."
        : ".vscode/mcp.json in a workspace (VS Code asks for the key once and keeps it in its secret storage).";
  }
}

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

/** mcp-remote refuses plain http:// except to localhost unless told `--allow-http`. */
function needsAllowHttp(url: string): boolean {
  const parsed = new URL(url);
  return parsed.protocol === "http:" && !["localhost", "127.0.0.1", "[::1]"].includes(parsed.hostname);
}

export function clientConfig(kind: ClientKind, origin: string, serverName: string | null, auth: ClientAuth): string {
  const url = endpointUrl(origin, serverName);
  const name = entryName(serverName);
  const oauth = auth === "oauth";
  switch (kind) {
    case "claude_desktop": {
      if (oauth) return url;
      // The header value goes through an env variable: mcp-remote's documented way around arguments with
      // spaces, which some platforms split.
      const args = ["-y", "mcp-remote", url, "--header", "Authorization:${MCP_HUB_AUTH}"];
      if (needsAllowHttp(url)) args.push("--allow-http");
      return json({
        mcpServers: { [name]: { command: "npx", args, env: { MCP_HUB_AUTH: `Bearer ${KEY_PLACEHOLDER}` } } },
      });
    }
    case "claude_code": {
      const command = ["claude mcp add --transport http", shellQuote(name), shellQuote(url)];
      if (!oauth) command.push("--header", shellQuote(`Authorization: Bearer ${KEY_PLACEHOLDER}`));
      return command.join(" ");
    }
    case "cursor":
      return json({
        mcpServers: { [name]: oauth ? { url } : { url, headers: { Authorization: `Bearer ${KEY_PLACEHOLDER}` } } },
      });
    case "vscode":
      if (oauth) return json({ servers: { [name]: { type: "http", url } } });
      return json({
        inputs: [{ type: "promptString", id: `${name}-key`, description: "mcp-hub API key", password: true }],
        servers: { [name]: { type: "http", url, headers: { Authorization: `Bearer \${input:${name}-key}` } } },
      });
  }
}
