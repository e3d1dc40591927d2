"""Callbacks racing each other: the same callback URL opened twice at once (a double click, a browser
retry), and two flows of one user finishing together (two tabs). Neither may end in a 500, a state may be
used once only, and the user ends up with one working credential."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from mcp_hub.credentials.resolver import resolve
from mcp_hub.credentials.store import read_payload
from mcp_hub.store.engine import transaction
from mcp_hub.store.models import McpUserCredential
from tests.credentials.conftest import AuthServerProcess, User, hub_of
from tests.credentials.test_oauth_flow import whoami


@pytest.fixture
async def alice_and_server(make_user, make_server, oidc_as: AuthServerProcess) -> tuple[User, dict[str, Any]]:
    return await make_user("alice"), await make_server("notes", url=oidc_as.resource, auth_type="oauth2")


async def test_same_callback_twice_at_once(
    app: FastAPI, oidc_as: AuthServerProcess, alice_and_server, browsers
) -> None:
    alice, server = alice_and_server
    for _ in range(5):
        browser = browsers(alice)
        start = await browser.start(server["id"])
        callback = await browser.consent(start.headers["location"])
        oidc_as.reset()
        answers = await asyncio.gather(*(browser.http.get(callback) for _ in range(4)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [302, 400, 400, 400], [(a.status_code, a.text[:200]) for a in answers]
        assert all("already used" in a.text for a in answers if a.status_code == 400), [
            a.text[:200] for a in answers
        ]
        # The code went to the token endpoint once: a second use would make the authorization server
        # revoke the grant, and the stored token with it.
        assert oidc_as.counts()["grants"].get("authorization_code") == 1
        auth = await resolve(hub_of(app), alice.id, server["id"])
        assert whoami(oidc_as, dict(auth.headers))["sub"] == "alice"


async def test_two_flows_of_one_user_finish_at_once(app: FastAPI, alice_and_server, browsers) -> None:
    alice, server = alice_and_server
    for _ in range(5):
        async with transaction(hub_of(app).sessions) as session:
            for row in (await session.scalars(select(McpUserCredential))).all():
                await session.delete(row)
        tabs = [browsers(alice) for _ in range(3)]
        starts = [await tab.start(server["id"]) for tab in tabs]
        callbacks = [await tab.consent(s.headers["location"]) for tab, s in zip(tabs, starts, strict=True)]
        answers = await asyncio.gather(*(tab.http.get(cb) for tab, cb in zip(tabs, callbacks, strict=True)))
        assert [a.status_code for a in answers] == [302] * 3, [(a.status_code, a.text[:300]) for a in answers]
        async with transaction(hub_of(app).sessions) as session:
            rows = (await session.scalars(select(McpUserCredential))).all()
        assert len(rows) == 1


async def test_concurrent_byok_writes_of_one_user(app: FastAPI, client, make_user, make_server) -> None:
    """The same race without OAuth: several saves of one user's key at once (two tabs) all succeed and
    leave one row, holding one of the keys."""
    alice = await make_user("alice")
    server = await make_server("search", url="https://s.example/mcp", auth_type="byok")
    keys = [f"key-{n}" for n in range(6)]
    answers = await asyncio.gather(
        *(
            client.put(f"/v1/servers/{server['id']}/credential", json={"key": key}, headers=alice.auth)
            for key in keys
        )
    )
    assert [a.status_code for a in answers] == [200] * len(keys), [a.text[:200] for a in answers]
    async with transaction(hub_of(app).sessions) as session:
        rows = (await session.scalars(select(McpUserCredential))).all()
    assert len(rows) == 1 and read_payload(hub_of(app).keyring, rows[0])["key"] in keys
