"""`mcp-hub`: run the hub and manage it. Management commands work on the database directly, so an operator
can bootstrap before the server runs. Exit codes: 0 ok, 1 a user error (one line on stderr), 2 usage."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
import uvicorn
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from mcp_hub.admin.schemas import ServerCreate, UserCreate
from mcp_hub.app import announce_admin_key, create_app
from mcp_hub.authserver.clients import delete_client, list_clients
from mcp_hub.authserver.passwords import check_password_strength, set_password
from mcp_hub.crypto import prepend_key_to_file
from mcp_hub.errors import HubError, InvalidSpecError
from mcp_hub.openapi.runtime import openapi_runtime
from mcp_hub.openapi.tools import build_tools
from mcp_hub.runtime import Hub, bootstrap_admin_key, open_hub
from mcp_hub.settings import Settings
from mcp_hub.store import servers as server_repo
from mcp_hub.store import users as user_repo
from mcp_hub.store.apply import apply_servers
from mcp_hub.store.engine import create_engine, current_revision, head_revision, transaction, upgrade
from mcp_hub.store.models import McpServer
from mcp_hub.store.rotation import rotate_all

app = typer.Typer(
    help="mcp-hub: one MCP endpoint for all your servers, with each user's own credentials.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
servers_app = typer.Typer(help="Upstream MCP servers.", no_args_is_help=True)
users_app = typer.Typer(help="Users.", no_args_is_help=True)
keys_app = typer.Typer(help="Hub API keys.", no_args_is_help=True)
credentials_app = typer.Typer(help="Encrypted credentials and encryption keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(servers_app, name="servers")
app.add_typer(users_app, name="users")
clients_app = typer.Typer(help="MCP clients of the hub's OAuth authorization server.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
app.add_typer(credentials_app, name="credentials")

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _one_line(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()
    )


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turns the hub's own errors into exit code 1 with one line; anything else is a bug and shows."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            raise fail(_one_line(exc)) from None
        except HubError as exc:
            raise fail(exc.message) from None
        except (SQLAlchemyError, OSError) as exc:
            raise fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None

    return wrapper


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def _settings() -> Settings:
    return Settings()


async def _with_hub(action: Callable[[Hub], Awaitable[R]]) -> R:
    async with open_hub(_settings()) as hub:
        return await action(hub)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise HubError(f"{option} takes KEY=VALUE (got {value!r})")
        result[key] = val
    return result


# --- serve / db ----------------------------------------------------------------------------------------


@app.command()
@user_errors
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 4000)", min=1, max=65535)] = None,
) -> None:
    """Start the hub (migrates SQLite automatically; PostgreSQL must be upgraded with `db upgrade`)."""
    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic announces its context on every readiness probe; only its warnings matter to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    typer.echo(f"mcp-hub listening on {settings.base_url}  (data: {settings.data_dir.resolve()})", err=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # uvicorn formats every request's access line before its logger drops it; above INFO, none is shown.
        access_log=logging.getLogger().isEnabledFor(logging.INFO),
    )


@db_app.command("upgrade")
@user_errors
def db_upgrade() -> None:
    """Migrate the database schema to the version this hub needs."""

    async def _go() -> tuple[str | None, str | None]:
        engine = create_engine(_settings().resolved_database_url)
        try:
            before = await current_revision(engine)
            await upgrade(engine)
            return before, await current_revision(engine)
        finally:
            await engine.dispose()

    before, after = run(_go())
    typer.echo(
        f"database schema: {before or 'empty'} -> {after}"
        if before != after
        else f"database schema is current ({after})"
    )


@db_app.command("status")
@user_errors
def db_status() -> None:
    """Show the schema revision of the database and the one this hub needs."""

    async def _go() -> str | None:
        engine = create_engine(_settings().resolved_database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current, head = run(_go()), head_revision()
    typer.echo(
        f"database: {current or 'empty'}; needed: {head}; {'current' if current == head else 'run `mcp-hub db upgrade`'}"
    )


# --- servers -------------------------------------------------------------------------------------------


@servers_app.command("add")
@user_errors
def servers_add(
    name: Annotated[str, typer.Argument(help="unique server name")],
    transport: Annotated[str, typer.Option(help="http | sse | stdio")],
    url: Annotated[str | None, typer.Option(help="MCP endpoint URL (http, sse)")] = None,
    command: Annotated[str | None, typer.Option(help="program to run (stdio)")] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", help="argument for the command; repeatable")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="KEY=VALUE for the command; repeatable")
    ] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="NAME=VALUE sent upstream; repeatable")
    ] = None,
    spec: Annotated[str | None, typer.Option("--spec", help="OpenAPI document URL or path (http)")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAPI: call this URL instead of the spec's server")
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="OpenAPI: only this tag or operationId; repeatable")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="OpenAPI: leave out this tag or operationId; repeatable"),
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="tool-name prefix on /mcp (default from the name)")
    ] = None,
    public: Annotated[bool, typer.Option("--public", help="usable without a hub key")] = False,
) -> None:
    """Connect an upstream server."""
    fields: dict[str, Any] = {
        "name": name,
        "transport": transport,
        "url": url,
        "command": command,
        "spec_location": spec,
        "alias": alias,
        "openapi_base_url": base_url,
        "openapi_include": include or None,
        "openapi_exclude": exclude or None,
    }
    if arg:
        fields["args"] = arg
    if env:
        fields["env"] = _pairs(env, "--env")
    if header:
        fields["headers"] = _pairs(header, "--header")
    if public:
        fields["access"] = "public"
    spec_model = ServerCreate.model_validate({k: v for k, v in fields.items() if v is not None})

    async def _go(hub: Hub) -> McpServer:
        document = await _read_spec(hub, spec_model)
        async with transaction(hub.sessions) as session:
            return await server_repo.create_server(session, hub.keyring, spec_model, spec_document=document)

    server = run(_with_hub(_go))
    typer.echo(f"added server {server.name} (id {server.id}, alias {server.alias})")


async def _read_spec(hub: Hub, server: ServerCreate) -> dict[str, Any] | None:
    """Reads and validates an OpenAPI server's document. The CLI runs on the hub's machine as its
    operator, so any file path may be read (the admin API limits files to MCP_HUB_OPENAPI_SPEC_DIRS)."""
    if server.transport != "http" or not server.spec_location:
        return None
    return await _load_spec(hub, server.spec_location, server.headers or {}, server.openapi_base_url)


async def _load_spec(
    hub: Hub, location: str, headers: dict[str, str], base_url: str | None
) -> dict[str, Any]:
    runtime = openapi_runtime(hub)
    try:
        loaded = await runtime.load(location, headers=headers, base_url_override=base_url, file_roots=None)
    finally:
        await runtime.aclose()
    return loaded.document


@servers_app.command("refresh")
@user_errors
def servers_refresh(name: str) -> None:
    """Read an OpenAPI server's spec again (its tools follow it); an invalid spec is refused and the last
    good one stays in use."""

    async def _go(hub: Hub) -> int:
        async with transaction(hub.sessions) as session:
            reading = server_repo.spec_reading(
                hub.keyring, await server_repo.get_server_by_name(session, name)
            )
        document = await _load_spec(hub, reading.location, reading.headers, reading.base_url)
        async with transaction(hub.sessions) as session:
            row = await server_repo.get_server_by_name(session, name)
            server_repo.set_spec_document(row, document)
            tools = build_tools(document, include=row.openapi_include, exclude=row.openapi_exclude)
        return len(tools)

    count = run(_with_hub(_go))
    typer.echo(f"refreshed {name}: {count} tools")


@servers_app.command("list")
@user_errors
def servers_list() -> None:
    """List the connected servers."""

    async def _go(hub: Hub) -> list[McpServer]:
        rows: list[McpServer] = []
        cursor: str | None = None
        async with transaction(hub.sessions) as session:
            while True:
                page = await server_repo.list_servers(session, limit=200, after=cursor)
                rows.extend(page)
                if len(page) < 200:
                    return rows
                cursor = page[-1].id

    rows = run(_with_hub(_go))
    if not rows:
        typer.echo("no servers yet: add one with `mcp-hub servers add NAME --transport http --url URL`")
        return
    for row in rows:
        target = row.url or row.spec_location or " ".join([row.command or "", *row.args])
        state = "enabled" if row.enabled else "disabled"
        typer.echo(f"{row.name}\t{row.transport}\t{row.access}\t{state}\t{target}")


@servers_app.command("remove")
@user_errors
def servers_remove(name: str) -> None:
    """Disconnect a server (its users' stored credentials for it are deleted too)."""

    async def _go(hub: Hub) -> None:
        async with transaction(hub.sessions) as session:
            await server_repo.delete_server(session, await server_repo.get_server_by_name(session, name))

    run(_with_hub(_go))
    typer.echo(f"removed server {name}")


class ServersFile(BaseModel):
    """The file `servers apply` takes."""

    model_config = ConfigDict(extra="forbid")
    servers: list[ServerCreate] = Field(default_factory=list)


@servers_app.command("apply")
@user_errors
def servers_apply(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="YAML file")],
    prune: Annotated[
        bool, typer.Option("--prune", help="also remove servers the file does not list")
    ] = False,
) -> None:
    """Make the servers match a YAML file (idempotent: applying it twice changes nothing)."""
    try:
        document = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise fail(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from None
    desired = ServersFile.model_validate(document)
    names = [spec.name for spec in desired.servers]
    if len(set(names)) != len(names):
        raise fail(f"{file}: a server name appears twice")

    async def _go(hub: Hub) -> list[str]:
        # Specs are read before the transaction: no database transaction waits on the network.
        documents = await _read_specs(hub, desired.servers)
        async with transaction(hub.sessions) as session:
            return await apply_servers(
                session, hub.keyring, desired.servers, prune=prune, spec_documents=documents
            )

    for line in run(_with_hub(_go)):
        typer.echo(line)


async def _read_specs(hub: Hub, servers: list[ServerCreate]) -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for server in servers:
        try:
            document = await _read_spec(hub, server)
        except InvalidSpecError as exc:
            # The file may list many servers: say which one's spec is at fault.
            raise InvalidSpecError(
                [f"server {server.name!r}: {problem}" for problem in exc.problems]
            ) from None
        if document is not None:
            documents[server.name] = document
    return documents


# --- users and keys ------------------------------------------------------------------------------------


@users_app.command("add")
@user_errors
def users_add(name: str, email: Annotated[str | None, typer.Option(help="contact address")] = None) -> None:
    """Create a user."""
    body = UserCreate.model_validate({"name": name, "email": email})

    async def _go(hub: Hub) -> str:
        async with transaction(hub.sessions) as session:
            return (await user_repo.create_user(session, body.name, body.email)).id

    user_id = run(_with_hub(_go))
    typer.echo(f"added user {name} (id {user_id})")


@users_app.command("list")
@user_errors
def users_list() -> None:
    """List users."""

    async def _go(hub: Hub) -> list[tuple[str, str, bool]]:
        async with transaction(hub.sessions) as session:
            rows = await user_repo.list_users(session, limit=1000)
        return [(row.name, row.id, row.disabled) for row in rows]

    for name, user_id, disabled in run(_with_hub(_go)):
        typer.echo(f"{name}\t{user_id}\t{'disabled' if disabled else 'active'}")


@users_app.command("passwd")
@user_errors
def users_passwd(
    name: str,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="read the password from standard input (for scripts)")
    ] = False,
) -> None:
    """Set the password a user signs in with when an MCP client connects through OAuth."""
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    check_password_strength(password)

    async def _go(hub: Hub) -> None:
        async with transaction(hub.sessions) as session:
            user = await user_repo.get_user_by_name(session, name)
            await set_password(session, user.id, password)

    run(_with_hub(_go))
    typer.echo(f"password set for {name}")


@clients_app.command("list")
@user_errors
def clients_list() -> None:
    """MCP clients known to the hub's authorization server (registered, or by metadata document)."""

    async def _go(hub: Hub) -> list[tuple[str, str, str, str]]:
        return [
            (c.client_id, c.kind, str(c.metadata_.get("client_name", "")), c.last_used_at.isoformat())
            for c in await list_clients(hub)
        ]

    for client_id, kind, name, last_used in run(_with_hub(_go)):
        typer.echo(f"{client_id}\t{kind}\t{name}\tlast used {last_used}")


@clients_app.command("delete")
@user_errors
def clients_delete(client_id: str) -> None:
    """Forget an MCP client: its tokens stop working and it gets invalid_client until it registers again."""
    if not run(_with_hub(lambda hub: delete_client(hub, client_id))):
        raise HubError(f"no client with id {client_id!r}")
    typer.echo(f"deleted client {client_id}")


@keys_app.command("create")
@user_errors
def keys_create(
    user: Annotated[str, typer.Option("--user", help="user name")],
    admin: Annotated[bool, typer.Option("--admin", help="may use the admin API")] = False,
    name: Annotated[str | None, typer.Option(help="label for the key")] = None,
    server: Annotated[
        list[str] | None, typer.Option("--server", help="restrict to this server; repeatable")
    ] = None,
) -> None:
    """Create an API key; the key is printed once, as the last line."""

    async def _go(hub: Hub) -> tuple[str, str]:
        async with transaction(hub.sessions) as session:
            owner = await user_repo.get_user_by_name(session, user)
            key, new_key = await user_repo.create_key(
                session, owner, name=name, is_admin=admin, allowed_servers=server or None
            )
            return key.prefix, new_key.plaintext

    prefix, plaintext = run(_with_hub(_go))
    typer.echo(f"created {'admin ' if admin else ''}key {prefix}… for {user}; it is shown only now:")
    typer.echo(plaintext)


@keys_app.command("revoke")
@user_errors
def keys_revoke(prefix: str) -> None:
    """Revoke a key by its prefix (as shown by the API and `keys create`)."""

    async def _go(hub: Hub) -> str:
        async with transaction(hub.sessions) as session:
            key = await user_repo.get_key_by_prefix(session, prefix)
            await user_repo.revoke_key(session, key)
            return key.prefix

    typer.echo(f"revoked key {run(_with_hub(_go))}")


# --- credentials ---------------------------------------------------------------------------------------


@credentials_app.command("new-key")
@user_errors
def credentials_new_key() -> None:
    """Add a fresh encryption key in front of the key file (it encrypts from now on; old keys still
    decrypt). Then run `credentials rotate-key`."""
    settings = _settings()
    if settings.encryption_keys:
        raise fail(
            "keys come from MCP_HUB_ENCRYPTION_KEYS: put a new 'id:key' entry first in that list instead"
        )
    key_id = prepend_key_to_file(settings.key_file)
    typer.echo(
        f"new encryption key {key_id} added to {settings.key_file}; now run `mcp-hub credentials rotate-key`"
    )


@credentials_app.command("rotate-key")
@user_errors
def credentials_rotate_key() -> None:
    """Re-encrypt every stored secret with the newest key, in batches, while the hub runs."""

    async def _go(hub: Hub) -> str:
        report = await rotate_all(hub.sessions, hub.keyring, batch_size=hub.settings.rotate_batch_size)
        return (
            f"re-encrypted {report.servers} server rows and {report.credentials} credentials "
            f"with key {hub.keyring.primary_id}"
        )

    typer.echo(run(_with_hub(_go)))


@app.command("bootstrap", hidden=True)
@user_errors
def bootstrap() -> None:
    """Create the first admin key now instead of at first start."""
    key = run(_with_hub(bootstrap_admin_key))
    if key:
        announce_admin_key(key)
    else:
        typer.echo("an admin key already exists", err=True)


def main() -> None:  # pragma: no cover - console entry alias
    sys.exit(app())
