"""The hub as the OAuth 2.1 authorization server of its own `/mcp` resource, so MCP clients that speak
only OAuth (Claude Desktop, claude.ai, ChatGPT, Cursor, VS Code, Claude Code) connect with no
configuration: discovery, dynamic registration or a client ID metadata document, sign-in and consent
in the browser, tokens the gateway accepts like hub API keys."""
