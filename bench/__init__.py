"""Load generator comparing an MCP upstream reached directly, through the hub, and through FastMCP's proxy."""
