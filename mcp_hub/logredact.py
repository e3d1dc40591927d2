"""Keeps OAuth codes, states and tokens, and BYOK keys sent as query parameters, out of log lines. uvicorn's access log prints each request's
path with its query string, and the OAuth callback's query string carries the authorization `code` and
`state`; httpx2/httpcore2 log the URLs and redirect headers they see at INFO/DEBUG.

Redaction happens when a log record is created (a record factory), not in a logger or handler filter:
logger filters do not apply to child loggers (`httpcore2.http11`), and handlers belong to whoever
configures logging (uvicorn's dictConfig, an operator's file), so neither would catch every line."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import httpx2

REDACTED = "[redacted]"
_SECRET_PARAM = re.compile(
    r"(?i)\b(code|state|access_token|refresh_token|id_token|token|client_secret|code_verifier|key|api_key|apikey)"
    r"=[^&\s\"'\\]+"
)
# A URL's whole query string: an upstream URL may carry a user's BYOK key under any parameter name an
# admin chose (`?sig=...`), and the SDK's and httpx2's request lines print it.
_URL_QUERY = re.compile(r"(?i)\b(https?://[^\s?#\"'<>]*)\?[^\s#\"'<>]*")
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# Loggers (and their children) whose records can carry request URLs or headers.
PREFIXES = ("uvicorn", "httpx2", "httpx", "httpcore2", "httpcore", "authlib", "mcp")
ACCESS_LOGGER = "uvicorn.access"

_installed = False
_lock = threading.Lock()


def redact_text(text: str) -> str:
    text = _URL_QUERY.sub(lambda match: f"{match.group(1)}?{REDACTED}", text)
    text = _SECRET_PARAM.sub(lambda match: f"{match.group(1)}={REDACTED}", text)
    return _AUTH_HEADER.sub(lambda match: f"{match.group(1)} {REDACTED}", text)


def _strip_query(value: object) -> object:
    if isinstance(value, str) and "?" in value:
        return value.split("?", 1)[0] + "?" + REDACTED
    return value


def _redact_arg(value: object) -> object:
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, httpx2.URL):
        # httpx2 logs every request's URL. An OpenAPI spec may put a user's key in the query string
        # under any name, so no name list can catch it: the whole query string goes.
        return _strip_query(str(value))
    # Non-strings too: other objects may render with a URL's query string.
    text = value if isinstance(value, str) else str(value)
    redacted = redact_text(text)
    return value if redacted == text else redacted


def redact_record(record: logging.LogRecord) -> None:
    if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) >= 3:
        # uvicorn's access format: (client, method, path with query, http version, status). No query
        # string is needed to read an access log, and any of them may carry a secret.
        args = list(record.args)
        args[2] = _strip_query(args[2])
        record.args = tuple(args)
    elif isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(arg) for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {name: _redact_arg(arg) for name, arg in record.args.items()}
    if isinstance(record.msg, str):
        record.msg = redact_text(record.msg)


def _is_covered(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in PREFIXES)


def install_log_redaction() -> None:
    """Idempotent and process-wide: wraps the current log record factory once."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if _is_covered(record.name):
                redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
