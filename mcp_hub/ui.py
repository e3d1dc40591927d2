"""The web UI at /ui: the static build of `ui/` (shipped inside the package as `mcp_hub/ui_dist/`), an SPA
fallback so every /ui path loads the app, and the response headers the UI and the API need."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_DIST = Path(__file__).parent / "ui_dist"
UI_PREFIX = "/ui"

# No inline script or style, nothing from another origin, and no framing (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
UI_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# Hashed file names under assets/ never change content; everything else is revalidated.
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"
NO_STORE = b"no-store"


def _in(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class ResponseHeadersMiddleware:
    """Pure ASGI (no body buffering, so /mcp's SSE streams pass untouched). API answers carry keys, tokens
    and user data: `Cache-Control: no-store` on /v1. The UI gets its CSP and cache headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra: list[tuple[bytes, bytes]]
        if _in(path, "/v1"):
            extra = [(b"cache-control", NO_STORE), (b"pragma", b"no-cache")]
        elif _in(path, UI_PREFIX):
            cache = IMMUTABLE if path.startswith(f"{UI_PREFIX}/assets/") else REVALIDATE
            extra = [*UI_HEADERS, (b"cache-control", cache)]
        else:
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SpaStaticFiles(StaticFiles):
    """Serves the build; any other path that is not a file under assets/ gets index.html, so deep links
    such as /ui/servers/ID or the OAuth return to /ui/connections load the app."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except StarletteHTTPException as exc:
            if exc.status_code != 404 or path.startswith("assets"):
                raise
            return await super().get_response("index.html", scope)


def mount_ui(app: FastAPI, dist: Path = UI_DIST) -> None:
    """Serve the UI at /ui. Without a build (a source checkout before `make ui`), /ui says how to make one."""
    app.add_middleware(ResponseHeadersMiddleware)

    @app.get(UI_PREFIX, include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=307)

    if (dist / "index.html").is_file():
        app.mount(UI_PREFIX, SpaStaticFiles(directory=dist, html=True), name="ui")
        return

    @app.get(UI_PREFIX + "/{path:path}", include_in_schema=False)
    async def ui_not_built(path: str) -> PlainTextResponse:
        return PlainTextResponse(
            "The web UI is not built in this installation: run `make ui` (needs Node.js 20+) and restart.",
            status_code=503,
        )
