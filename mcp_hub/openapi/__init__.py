"""OpenAPI-backed servers: a REST API's spec becomes MCP tools, called with each user's credential.

loader (read + parse) -> refs ($ref rules) -> spec (validate, base URL) -> tools (operations as tools)
-> auth (place the credential) -> request (build, send, result) -> server (in-process MCP server)
-> runtime (pooled clients, entry points for the admin API, the CLI and the upstream pool).
"""
