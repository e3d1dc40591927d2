"""One exception hierarchy for the hub. Each error maps to one HTTP status (and, on MCP paths, one MCP
error code); handlers catch these specific types, never a bare Exception."""

from __future__ import annotations


class HubError(Exception):
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(HubError):
    """The hub is configured in a way it cannot run with."""


class DecryptionError(HubError):
    """A secret cannot be decrypted: missing key, wrong key, or a ciphertext moved from another row."""


class SchemaOutOfDateError(HubError):
    status_code = 503


class NotFoundError(HubError):
    status_code = 404


class ConflictError(HubError):
    status_code = 409


class InvalidInputError(HubError):
    status_code = 422


class AuthenticationError(HubError):
    status_code = 401


class PermissionDeniedError(HubError):
    status_code = 403


class UpstreamError(HubError):
    """An upstream server could not be reached, failed, or answered with something unusable."""

    status_code = 502


class UpstreamTimeoutError(UpstreamError):
    """An upstream call did not finish within its total deadline."""

    status_code = 504


class NotConnectedError(HubError):
    """The user has no usable credential of their own for a per-user server. `connect_url` is where they
    connect it; callers show it (REST detail, MCP error message, the `{alias}__connect` tool)."""

    status_code = 409

    def __init__(self, message: str, *, server_id: str, connect_url: str) -> None:
        super().__init__(message)
        self.server_id = server_id
        self.connect_url = connect_url


class NeedsReconnectError(NotConnectedError):
    """The user's OAuth grant is no longer accepted upstream (e.g. `invalid_grant` on refresh)."""


class OAuthFlowError(HubError):
    """An OAuth authorize/callback step was refused: bad, replayed or foreign state, wrong issuer, an
    unusable answer from the authorization server, or an error it reported."""

    status_code = 400


class UnsafeUrlError(HubError):
    """An outbound URL the hub was asked to fetch is not allowed (scheme, or an address on a private,
    loopback, link-local or otherwise internal network)."""

    status_code = 502


class InvalidSpecError(InvalidInputError):
    """An OpenAPI document cannot be used: unreadable, not OpenAPI 3.0/3.1, invalid, or unsafe (a `$ref`
    outside the document, a server URL on a refused network, a `$ref` cycle). `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid OpenAPI document: " + "; ".join(problems))
        self.problems = problems
