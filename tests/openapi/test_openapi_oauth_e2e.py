"""An OAuth user's token from the real flow: the hub connects the user at a real authorization server
(oidc-provider on loopback, found through the OpenAPI spec's own oauth2 scheme), and the REST API behind
the OpenAPI server checks every token it gets by introspection (RFC 7662). Each user sees their own data."""

# No `from __future__ import annotations`: FastAPI must see the local `subject` dependency in the
# route signatures as objects, not as strings it cannot resolve.
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import httpx2
import pytest
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import OAuth2AuthorizationCodeBearer

from tests.credentials.conftest import (
    INTROSPECTION_CLIENT_ID,
    INTROSPECTION_SECRET,
    AuthServerProcess,
    Browser,
    User,
    auth_server,
)
from tests.gateway.clients import shttp_session, text_of
from tests.gateway.conftest import RunningHub
from tests.openapi.conftest import serve_app


@pytest.fixture(scope="module")
def authorization_server() -> Iterator[AuthServerProcess]:
    with auth_server() as running:
        yield running


def introspecting_api(issuer: str) -> FastAPI:
    """A REST API whose only notion of a caller is what the authorization server says of the token."""
    app = FastAPI(title="Profiles", version="1.0.0")
    scheme = OAuth2AuthorizationCodeBearer(
        authorizationUrl=f"{issuer}/auth", tokenUrl=f"{issuer}/token", scopes={"mcp:tools": "tools"}
    )
    notes: dict[str, list[str]] = {}

    async def subject(token: Annotated[str, Security(scheme, scopes=["mcp:tools"])]) -> str:
        async with httpx2.AsyncClient(trust_env=False) as http:
            answer = await http.post(
                f"{issuer}/token/introspection",
                data={"token": token},
                auth=(INTROSPECTION_CLIENT_ID, INTROSPECTION_SECRET),
            )
        claims = answer.json()
        if not claims.get("active"):
            raise HTTPException(status_code=401, detail="inactive token")
        return str(claims["sub"])

    @app.get("/me", operation_id="whoami")
    async def whoami(sub: Annotated[str, Depends(subject)]) -> dict[str, str]:
        return {"sub": sub}

    @app.post("/notes", operation_id="addNote")
    async def add_note(sub: Annotated[str, Depends(subject)], text: str) -> list[str]:
        notes.setdefault(sub, []).append(text)
        return notes[sub]

    return app


@pytest.fixture
async def api_url(authorization_server: AuthServerProcess) -> AsyncIterator[str]:
    async with serve_app(introspecting_api(authorization_server.issuer)) as url:
        yield url


async def test_oauth_users_connected_for_real_each_see_their_own_data(
    openapi_hub: RunningHub, authorization_server: AuthServerProcess, api_url: str
) -> None:
    server = await openapi_hub.add_server(
        "profiles",
        transport="http",
        spec_location=f"{api_url}/openapi.json",
        auth_type="oauth2",
        registration_url=f"{authorization_server.issuer}/reg",
    )
    # The endpoints, and the scope the operations need, came from the spec's oauth2 scheme.
    assert server["authorization_url"] == f"{authorization_server.issuer}/auth"
    assert server["scopes"] == ["mcp:tools"]
    users: list[User] = []
    for name in ("erin", "frank"):
        user_id = await openapi_hub.add_user(name)
        users.append(User(id=user_id, name=name, key=await openapi_hub.add_key(user_id)))
    for user in users:
        browser = Browser(None, user, hub_origin=openapi_hub.url)
        try:
            done = await browser.connect(server["id"])
        finally:
            await browser.aclose()
        assert done.status_code == 302, done.text
    for user in users:
        async with shttp_session(f"{openapi_hub.url}/mcp/profiles", user.key) as session:
            assert json.loads(text_of(await session.call_tool("whoami", {}))) == {"sub": user.name}
            added = await session.call_tool("addNote", {"text": f"{user.name} was here"})
            assert json.loads(text_of(added)) == [f"{user.name} was here"]
