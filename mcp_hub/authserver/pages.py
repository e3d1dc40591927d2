"""`/authorize`: the hub's own sign-in and consent pages for MCP clients.

GET /authorize validates the request (see `authorize`), then: not signed in → the sign-in page (a
password set with `mcp-hub users passwd`, or the user's hub API key); signed in and this client already
approved for these scopes → straight back to the client with a code; otherwise → the consent page,
which names the client and where it will be sent, the scopes, and the user's upstream connections with
Connect buttons. Every form carries the original request (re-validated on post) and the CSRF token."""

from __future__ import annotations

import base64
import hashlib
import html
import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from mcp_hub.auth.context import servers_for_caller
from mcp_hub.auth.deps import get_hub
from mcp_hub.auth.keys import Caller, authenticate_key
from mcp_hub.authserver.authorize import (
    AuthorizationRequest,
    PageError,
    RedirectError,
    error_location,
    parse_request,
    redirect_origin,
    success_location,
)
from mcp_hub.authserver.passwords import spend_equal_time, verify_password
from mcp_hub.authserver.sessions import (
    CSRF_FIELD,
    csrf_ok,
    csrf_token,
    pages_allowed,
    session_user,
    set_csrf_cookie,
    start_session,
)
from mcp_hub.authserver.throttle import SignInThrottle
from mcp_hub.authserver.tokens import create_code
from mcp_hub.credentials.oauth import start_authorization
from mcp_hub.credentials.routes import set_flow_cookie
from mcp_hub.errors import AuthenticationError, HubError
from mcp_hub.runtime import Hub
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import (
    PER_USER_AUTH_TYPES,
    AuthType,
    McpServer,
    McpUserCredential,
    OAuthConsent,
    User,
    UserPassword,
)

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

STYLE = (
    "body{font:16px/1.45 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
    "h1{font-size:1.4rem}fieldset{border:1px solid #ccc;border-radius:6px;margin:1rem 0;padding:.8rem}"
    "label{display:block;margin:.5rem 0 .2rem}input[type=text],input[type=password]{width:100%;"
    "padding:.45rem;box-sizing:border-box}button{padding:.5rem 1rem;margin:.6rem .4rem 0 0}"
    ".inline{display:inline}.err{color:#a40000}.muted{color:#555;font-size:.9rem}li{margin:.3rem 0}"
)
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def _csp(form_targets: str) -> str:
    # Browsers check form-action against the redirect that follows a form post too, so the client's
    # redirect origin is listed on the pages whose forms end in that redirect.
    return (
        f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self' {form_targets}; "
        "frame-ancestors 'none'; base-uri 'none'"
    ).replace("  ", " ")


def _page(
    title: str, body: str, *, status: int = 200, form_targets: str = "", head: str = ""
) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style>{head}'
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(
        document,
        status_code=status,
        headers={
            "Content-Security-Policy": _csp(form_targets),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def _error_page(message: str, status: int = 400) -> HTMLResponse:
    return _page("Cannot sign in to this app", f'<p class="err">{html.escape(message)}</p>', status=status)


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{name}" value="{html.escape(value, quote=True)}">'


def _with_csrf(response: Response, hub: Hub, token: str, new: bool) -> Response:
    if new:
        set_csrf_cookie(response, hub.settings, token)
    return response


def _sign_in_page(req: AuthorizationRequest, csrf: str, error: str | None = None) -> HTMLResponse:
    problem = f'<p class="err">{html.escape(error)}</p>' if error else ""
    body = (
        f"<p><b>{html.escape(req.client_name)}</b> wants to use this hub's MCP servers as you. "
        "Sign in first.</p>"
        f"{problem}"
        f'<form method="post" action="/authorize">{_hidden(CSRF_FIELD, csrf)}{_hidden("request", req.query)}'
        "<fieldset><legend>With your password</legend>"
        '<label for="username">User name</label><input type="text" id="username" name="username" '
        'autocomplete="username">'
        '<label for="password">Password</label><input type="password" id="password" name="password" '
        'autocomplete="current-password"></fieldset>'
        "<fieldset><legend>Or with your hub API key</legend>"
        '<label for="api_key">API key</label><input type="password" id="api_key" name="api_key" '
        'autocomplete="off"></fieldset>'
        '<button type="submit" id="sign-in">Sign in</button></form>'
    )
    # Signing in may answer with the redirect to the client straight away (consent remembered).
    return _page(
        "Sign in to mcp-hub",
        body,
        status=401 if error else 200,
        form_targets=redirect_origin(req.redirect_uri),
    )


async def _connections(hub: Hub, user: User) -> list[tuple[McpServer, str | None]]:
    """The per-user servers this user may use, each with the state of their credential (None: none)."""
    caller = Caller(user.id, user.name, "", False, None, None)
    async with transaction(hub.sessions) as session:
        servers = [s for s in await servers_for_caller(session, caller) if s.auth_type in PER_USER_AUTH_TYPES]
        ids = [server.id for server in servers]
        rows = (
            await session.execute(
                select(McpUserCredential.server_id, McpUserCredential.status).where(
                    McpUserCredential.user_id == user.id, McpUserCredential.server_id.in_(ids)
                )
            )
        ).all()
    status = {row[0]: row[1] for row in rows}
    return [(server, status.get(server.id)) for server in servers]


def _connection_item(server: McpServer, status: str | None, csrf: str, query: str) -> str:
    name = html.escape(server.name)
    state = "connected" if status == "active" else ("needs reconnecting" if status else "not connected")
    if status == "active":
        action = ""
    elif server.auth_type == AuthType.oauth2.value:
        action = (
            f'<form method="post" action="/authorize/connect" class="inline">'
            f"{_hidden(CSRF_FIELD, csrf)}{_hidden('request', query)}{_hidden('server_id', server.id)}"
            f'<button type="submit" class="connect" data-server="{name}">Connect</button></form>'
        )
    else:
        action = f' — <a href="/ui/servers/{html.escape(server.id)}/connect">Add your key</a>'
    return f"<li><b>{name}</b>: {state} {action}</li>"


async def _consent_page(hub: Hub, req: AuthorizationRequest, user: User, csrf: str) -> HTMLResponse:
    connections = await _connections(hub, user)
    items = "".join(_connection_item(s, status, csrf, req.query) for s, status in connections)
    upstream = (
        f"<p>Your connections to the servers behind this hub:</p><ul>{items}</ul>"
        '<p class="muted">You can connect them now or later; tools of a server you have not connected '
        "tell the app where to connect it.</p>"
        if connections
        else ""
    )
    verified = (
        f"its identity is published at {html.escape(req.client.client_id)}"
        if req.client.kind == "cimd"
        else "it registered itself, so its name is not verified"
    )
    body = (
        f"<p>Signed in as <b>{html.escape(user.name)}</b>.</p>"
        f'<p><b id="client-name">{html.escape(req.client_name)}</b> ({verified}) asks to use this hub\'s '
        "MCP servers on your behalf, with your permissions.</p>"
        f'<p>After you approve you will be sent to <b id="redirect-host">{html.escape(req.redirect_host)}</b>.'
        "</p>"
        f"<p>Access requested: <b>{html.escape(' '.join(req.scopes))}</b> (use the MCP servers you may use"
        "; keep access until you revoke it).</p>"
        f"{upstream}"
        f'<form method="post" action="/authorize/consent">{_hidden(CSRF_FIELD, csrf)}'
        f"{_hidden('request', req.query)}"
        '<button type="submit" name="decision" value="approve" id="approve">Approve</button>'
        '<button type="submit" name="decision" value="deny" id="deny">Deny</button></form>'
    )
    return _page("Allow access?", body, form_targets=redirect_origin(req.redirect_uri))


async def _consented(hub: Hub, user_id: str, req: AuthorizationRequest) -> bool:
    async with transaction(hub.sessions) as session:
        scopes = await session.scalar(
            select(OAuthConsent.scopes).where(
                OAuthConsent.user_id == user_id, OAuthConsent.client_ref == req.client.ref
            )
        )
    return scopes is not None and set(req.scopes) <= set(scopes)


async def _remember_consent(hub: Hub, user_id: str, req: AuthorizationRequest) -> None:
    async with transaction(hub.sessions) as session:
        row = await session.scalar(
            select(OAuthConsent)
            .where(OAuthConsent.user_id == user_id, OAuthConsent.client_ref == req.client.ref)
            .with_for_update()
        )
        if row is None:
            session.add(OAuthConsent(user_id=user_id, client_ref=req.client.ref, scopes=req.scopes))
        else:
            row.scopes = sorted(set(row.scopes) | set(req.scopes))


async def _issue_code(hub: Hub, user_id: str, req: AuthorizationRequest) -> RedirectResponse:
    code = await create_code(
        hub,
        client_ref=req.client.ref,
        user_id=user_id,
        redirect_uri=req.redirect_uri,
        redirect_uri_explicit=req.redirect_uri_explicit,
        code_challenge=req.code_challenge,
        scopes=req.scopes,
        resource=req.resource,
    )
    return _redirect(success_location(hub, req, code))


async def _signed_in_step(hub: Hub, req: AuthorizationRequest, user: User, csrf: str) -> Response:
    if await _consented(hub, user.id, req):
        return await _issue_code(hub, user.id, req)
    return await _consent_page(hub, req, user, csrf)


_NEEDS_HTTPS = (
    "This hub's sign-in page is served on https only (or on plain-http loopback): set "
    "MCP_HUB_PUBLIC_BASE_URL to the hub's https URL."
)


async def _parse(hub: Hub, query: str) -> AuthorizationRequest | Response:
    if not pages_allowed(hub.settings):
        # Before anything else, for every page: no password, key or session cookie in clear on a network.
        return _error_page(_NEEDS_HTTPS)
    try:
        return await parse_request(hub, query)
    except PageError as exc:
        return _error_page(exc.message)
    except RedirectError as exc:
        return _redirect(error_location(hub, exc))


@router.get("/authorize")
async def authorize(request: Request) -> Response:
    hub = get_hub(request)
    parsed = await _parse(hub, request.url.query)
    if isinstance(parsed, Response):
        return parsed
    csrf, new = csrf_token(request, hub.settings)
    user = await session_user(hub, request)
    response = await _signed_in_step(hub, parsed, user, csrf) if user else _sign_in_page(parsed, csrf)
    return _with_csrf(response, hub, csrf, new)


async def _form(request: Request) -> tuple[dict[str, str], bool]:
    """The posted fields, and whether the CSRF token matched the browser's cookie."""
    hub = get_hub(request)
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    return fields, csrf_ok(request, hub.settings, fields.get(CSRF_FIELD))


_FORGED = (
    "This form was not sent from the hub's own page (missing or wrong CSRF token). Start again from the app."
)


class SignInThrottled(Exception):
    """Too many wrong passwords for this user name from this address, recently."""


def _throttle(request: Request) -> SignInThrottle:
    state = request.app.state
    if not hasattr(state, "sign_in_throttle"):
        state.sign_in_throttle = SignInThrottle()
    throttle: SignInThrottle = state.sign_in_throttle
    return throttle


async def _sign_in(hub: Hub, fields: dict[str, str], throttle: SignInThrottle, address: str) -> User | None:
    api_key = fields.get("api_key", "").strip()
    if api_key:
        try:
            async with transaction(hub.sessions) as session:
                caller = await authenticate_key(session, api_key)
                if caller.allowed_servers is not None or caller.allowed_tools is not None:
                    # The grant acts as the whole user: a key limited to some servers or tools must not
                    # become a token without those limits.
                    return None
                return await session.get(User, caller.user_id)
        except AuthenticationError:
            return None
    name, password = fields.get("username", "").strip(), fields.get("password", "")
    if not name or not password:
        return None
    if throttle.blocked(name, address):
        raise SignInThrottled
    user = await _password_user(hub, name, password)
    if user is None:
        throttle.failed(name, address)
    else:
        throttle.succeeded(name, address)
    return user


async def _password_user(hub: Hub, name: str, password: str) -> User | None:
    async with transaction(hub.sessions) as session:
        row = (
            await session.execute(
                select(User, UserPassword.password_hash)
                .join(UserPassword, UserPassword.user_id == User.id)
                .where(User.name == name)
            )
        ).first()
    if row is None:
        await spend_equal_time(password)
        return None
    user, stored = row
    if not await verify_password(password, stored) or user.disabled:
        return None
    return user


async def _posted_request(
    hub: Hub, request: Request
) -> tuple[dict[str, str], AuthorizationRequest] | Response:
    """A form posted from the sign-in or consent page: CSRF checked, the authorization request it
    carries re-validated."""
    fields, csrf_valid = await _form(request)
    if not csrf_valid:
        return _error_page(_FORGED, status=403)
    parsed = await _parse(hub, fields.get("request", ""))
    if isinstance(parsed, Response):
        return parsed
    return fields, parsed


@router.post("/authorize")
async def sign_in(request: Request) -> Response:
    hub = get_hub(request)
    posted = await _posted_request(hub, request)
    if isinstance(posted, Response):
        return posted
    fields, parsed = posted
    csrf = fields[CSRF_FIELD]
    address = request.client.host if request.client else ""
    try:
        user = await _sign_in(hub, fields, _throttle(request), address)
    except SignInThrottled:
        log.warning("authorization sign-in throttled after repeated wrong passwords")
        page = _sign_in_page(parsed, csrf, error="Too many wrong passwords: wait 15 minutes.")
        page.status_code = 429
        return page
    if user is None:
        log.info("authorization sign-in refused")
        return _sign_in_page(
            parsed,
            csrf,
            error="Wrong user name and password, or API key (a key limited to some servers or tools "
            "cannot be used here).",
        )
    response = await _signed_in_step(hub, parsed, user, csrf)
    await start_session(hub, response, user.id)
    return response


async def _signed_in_form(
    hub: Hub, request: Request
) -> tuple[dict[str, str], AuthorizationRequest, User] | Response:
    """A form posted from the consent page: CSRF checked, the request re-validated, the user signed in."""
    posted = await _posted_request(hub, request)
    if isinstance(posted, Response):
        return posted
    fields, parsed = posted
    user = await session_user(hub, request)
    if user is None:
        return _sign_in_page(parsed, fields[CSRF_FIELD], error="Your sign-in expired: sign in again.")
    return fields, parsed, user


@router.post("/authorize/consent")
async def consent(request: Request) -> Response:
    hub = get_hub(request)
    step = await _signed_in_form(hub, request)
    if isinstance(step, Response):
        return step
    fields, parsed, user = step
    if fields.get("decision") != "approve":
        denied = RedirectError(parsed.redirect_uri, "access_denied", "the user denied access", parsed.state)
        return _redirect(error_location(hub, denied))
    await _remember_consent(hub, user.id, parsed)
    return await _issue_code(hub, user.id, parsed)


@router.post("/authorize/connect")
async def connect_upstream(request: Request) -> Response:
    """Connect button: starts the credentials package's OAuth flow for one upstream server and returns
    to this consent page afterwards."""
    hub = get_hub(request)
    step = await _signed_in_form(hub, request)
    if isinstance(step, Response):
        return step
    fields, parsed, user = step
    server_id = fields.get("server_id", "")
    if server_id not in {server.id for server, _ in await _connections(hub, user)}:
        return _error_page("You may not connect that server.", status=404)
    try:
        flow = await start_authorization(
            hub, user_id=user.id, server_id=server_id, redirect_after=f"/authorize?{parsed.query}"
        )
    except HubError as exc:
        return _error_page(f"Connecting the server did not start: {exc.message}", status=exc.status_code)
    # A page that moves on by itself rather than a 302: CSP form-action would block a form post that
    # redirects to the upstream's (unknown in advance) authorization server.
    target = html.escape(flow.authorization_url, quote=True)
    host = html.escape(redirect_origin(flow.authorization_url))
    response = _page(
        "Connecting…",
        f'<p>Taking you to <a id="continue" href="{target}">{host}</a> to connect the server.</p>',
        head=f'<meta http-equiv="refresh" content="0;url={target}">',
    )
    set_flow_cookie(response, flow, hub)
    return response
