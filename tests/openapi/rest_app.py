"""A real REST API for the OpenAPI tests: FastAPI serving its own openapi.json (OpenAPI 3.1) with path,
query and header parameters, JSON request bodies, `$ref`s (nested and recursive), an enum, an apiKey
scheme and an oauth2 scheme. Each caller sees only their own notes.

It also counts what reached it, so tests can prove an attack did not get through: `hits` records every
request's raw path, `streamed` the bytes the endless download produced.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import APIKeyHeader, APIKeyQuery, OAuth2AuthorizationCodeBearer
from pydantic import BaseModel, Field

API_KEYS = {"key-alice": "alice", "key-bob": "bob"}
OAUTH_TOKENS = {"token-carol": "carol", "token-dave": "dave"}


class Order(enum.StrEnum):
    newest = "newest"
    oldest = "oldest"


class Person(BaseModel):
    name: str
    email: str | None = None


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = ""
    tags: list[str] = []
    author: Person | None = None


class Note(NoteIn):
    id: int
    owner: str


class TreeNode(BaseModel):
    label: str
    children: list[TreeNode] = []


@dataclass
class ApiState:
    notes: dict[str, list[Note]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    streamed: int = 0
    next_id: int = 1

    def add(self, owner: str, note: NoteIn) -> Note:
        created = Note(id=self.next_id, owner=owner, **note.model_dump())
        self.next_id += 1
        self.notes.setdefault(owner, []).append(created)
        return created


api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
# Some APIs take the key in the query string, under a name of their own.
signature = APIKeyQuery(name="sig_token", auto_error=False, scheme_name="QueryKey")
oauth = OAuth2AuthorizationCodeBearer(
    authorizationUrl="https://auth.example/authorize",
    tokenUrl="https://auth.example/token",
    auto_error=False,
    scheme_name="OAuth",
)


def caller(
    key: Annotated[str | None, Security(api_key)], token: Annotated[str | None, Security(oauth)]
) -> str:
    if key is not None and key in API_KEYS:
        return API_KEYS[key]
    if token is not None and token in OAUTH_TOKENS:
        return OAUTH_TOKENS[token]
    raise HTTPException(status_code=401, detail="unknown key or token")


Caller = Annotated[str, Depends(caller)]


def create_rest_app(state: ApiState) -> FastAPI:
    app = FastAPI(title="Notes", version="1.0.0")

    @app.middleware("http")
    async def record(request: Request, call_next):  # type: ignore[no-untyped-def]
        state.hits.append(request.scope["raw_path"].decode())
        return await call_next(request)

    @app.get("/me", operation_id="whoami", summary="Who the API thinks you are", tags=["account"])
    async def whoami(who: Caller) -> dict[str, str]:
        return {"user": who}

    @app.get("/notes", operation_id="listNotes", summary="List your notes", tags=["notes"])
    async def list_notes(
        who: Caller,
        tag: Annotated[str | None, Query(description="only notes with this tag")] = None,
        order: Order = Order.oldest,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[Note]:
        notes = [note for note in state.notes.get(who, []) if tag is None or tag in note.tags]
        if order is Order.newest:
            notes = list(reversed(notes))
        return notes[:limit]

    @app.post("/notes", operation_id="createNote", summary="Create a note", tags=["notes"], status_code=201)
    async def create_note(who: Caller, note: NoteIn) -> Note:
        return state.add(who, note)

    @app.get("/notes/{note_id}", operation_id="getNote", tags=["notes"])
    async def get_note(
        who: Caller,
        note_id: int,
        x_trace_id: Annotated[str | None, Header(description="echoed back")] = None,
    ) -> JSONResponse:
        for note in state.notes.get(who, []):
            if note.id == note_id:
                return JSONResponse({**note.model_dump(), "trace": x_trace_id})
        raise HTTPException(status_code=404, detail=f"no note {note_id}")

    @app.delete("/notes/{note_id}", operation_id="deleteNote", tags=["notes"], status_code=204)
    async def delete_note(who: Caller, note_id: int) -> None:
        state.notes[who] = [note for note in state.notes.get(who, []) if note.id != note_id]

    @app.get("/signed", operation_id="whoamiSigned", tags=["account"])
    async def whoami_signed(sig: Annotated[str | None, Security(signature)]) -> dict[str, str]:
        if sig is None or sig not in API_KEYS:
            raise HTTPException(status_code=401, detail="unknown key")
        return {"user": API_KEYS[sig]}

    @app.get("/session", operation_id="session", tags=["account"])
    async def session(who: Caller, request: Request) -> JSONResponse:
        """Sets a cookie for the caller and reports the one it was sent (none, if clients keep apart)."""
        response = JSONResponse({"user": who, "cookie_sent": request.cookies.get("sid")})
        response.set_cookie("sid", f"session-of-{who}")
        return response

    @app.get("/files/{name}", operation_id="getFile", tags=["files"])
    async def get_file(name: str, request: Request) -> dict[str, str]:
        return {"name": name, "raw_path": request.scope["raw_path"].decode()}

    @app.get("/admin/secret", operation_id="adminSecret", tags=["internal"])
    async def admin_secret() -> dict[str, str]:
        return {"secret": "reached"}

    @app.post("/tree/count", operation_id="countTree", tags=["tree"])
    async def count_tree(tree: TreeNode) -> dict[str, int]:
        def count(node: TreeNode) -> int:
            return 1 + sum(count(child) for child in node.children)

        return {"nodes": count(tree)}

    @app.get("/readme", operation_id="readme", tags=["misc"], response_class=PlainTextResponse)
    async def readme() -> str:
        return "Notes API: plain text here."

    @app.get("/huge", operation_id="huge", tags=["misc"])
    async def huge() -> StreamingResponse:
        chunk = b"x" * 65536

        async def endless() -> AsyncIterator[bytes]:
            for _ in range(1600):  # 100 MiB
                state.streamed += len(chunk)
                yield chunk
                await asyncio.sleep(0)

        return StreamingResponse(endless(), media_type="application/json")

    @app.get("/slow", operation_id="slow", tags=["misc"])
    async def slow(seconds: float) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    return app


if __name__ == "__main__":
    # `python -m tests.openapi.rest_app PORT`: the Notes API on loopback, for trying docs/openapi.md by hand.
    import sys

    import uvicorn

    uvicorn.run(create_rest_app(ApiState()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
