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
