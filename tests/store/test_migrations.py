"""The Alembic migrations against the models, on a SQLite file and on the local PostgreSQL.

From an empty database, `upgrade head` must produce exactly what `Base.metadata` describes: Alembic's
autogenerate comparison (the one `alembic revision --autogenerate` runs, with type comparison on) finds
nothing to do. A drifted database must be noticed by the same comparison, so the check cannot pass by
comparing nothing. Also: the migrations go down to base and up again, PostgreSQL is never migrated behind
the operator's back, and SQLite is migrated at start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_hub.errors import SchemaOutOfDateError
from mcp_hub.store.engine import (
    _alembic_config,
    create_engine,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from mcp_hub.store.models import Base

MODEL_TABLES = set(Base.metadata.tables)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def _compare_with_models(connection: Connection) -> list[Any]:
    # The same options as migrations/env.py, plus server defaults: the models declare none, so any
    # DEFAULT a migration adds is drift too.
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def differences_from_models(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_compare_with_models)


async def table_names(engine: AsyncEngine) -> set[str]:
    def _names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with engine.connect() as conn:
        return await conn.run_sync(_names)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def _run(connection: Connection) -> None:
        command.downgrade(_alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


def summarize(differences: list[Any]) -> set[tuple[str, ...]]:
    """compare_metadata's entries as (operation, table, column-or-name) tuples that tests can compare.

    Column changes come grouped in lists of `(op, schema, table, column, ...)`; table, column, index and
    constraint changes are `(op, object)` or `(op, schema, table, column)` tuples."""
    summary: set[tuple[str, ...]] = set()
    for entry in differences:
        for change in entry if isinstance(entry, list) else [entry]:
            operation = change[0]
            if operation.startswith("modify_") or operation in {"add_column", "remove_column"}:
                column = change[3]
                summary.add((operation, change[2], column if isinstance(column, str) else column.name))
            elif operation in {"add_table", "remove_table"}:
                summary.add((operation, change[1].name))
            else:  # indexes, unique constraints, foreign keys: (op, object)
                summary.add((operation, change[1].table.name, str(change[1].name)))
    return summary


async def test_migrations_from_empty_match_the_models(engine: AsyncEngine) -> None:
    assert await table_names(engine) == set()
    assert await current_revision(engine) is None

    await upgrade(engine)

    assert await current_revision(engine) == head_revision()
    assert await table_names(engine) == MODEL_TABLES | {"alembic_version"}
    assert await differences_from_models(engine) == []


async def test_the_comparison_notices_a_drifted_database(engine: AsyncEngine) -> None:
    await upgrade(engine)

    def drift(connection: Connection) -> None:
        operations = Operations(MigrationContext.configure(connection))
        operations.add_column("users", sa.Column("surplus", sa.String(10)))
        operations.drop_index("ix_api_keys_user_id", table_name="api_keys")
        if connection.dialect.name == "postgresql":
            # Through the UTCDateTime TypeDecorator: a lost time zone must count as a type change.
            operations.alter_column("users", "created_at", type_=sa.DateTime(timezone=False))
        else:
            # SQLite cannot ALTER a column's type; batch mode rebuilds the table.
            with operations.batch_alter_table("audit_events") as batch:
                batch.alter_column("action", type_=sa.String(10))

    async with engine.begin() as conn:
        await conn.run_sync(drift)

    changed_type = (
        ("modify_type", "users", "created_at")
        if engine.dialect.name == "postgresql"
        else ("modify_type", "audit_events", "action")
    )
    assert summarize(await differences_from_models(engine)) == {
        ("remove_column", "users", "surplus"),
        ("add_index", "api_keys", "ix_api_keys_user_id"),
        changed_type,
    }


async def test_downgrade_to_base_and_upgrade_again(engine: AsyncEngine) -> None:
    await upgrade(engine)

    await downgrade(engine, "base")

    assert await current_revision(engine) is None
    # Alembic keeps its (now empty) version table; every table of the hub is gone.
    assert await table_names(engine) == {"alembic_version"}

    await upgrade(engine)

    assert await current_revision(engine) == head_revision()
    assert await differences_from_models(engine) == []


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_ensure_schema_refuses_an_unmigrated_postgres_database(engine: AsyncEngine) -> None:
    with pytest.raises(SchemaOutOfDateError, match="`mcp-hub db upgrade`") as refused:
        await ensure_schema(engine)

    assert str(head_revision()) in str(refused.value)
    # Refusing means touching nothing: the operator migrates on purpose.
    assert await table_names(engine) == set()
    assert await current_revision(engine) is None


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_ensure_schema_refuses_an_out_of_date_postgres_database(engine: AsyncEngine) -> None:
    head = head_revision()
    assert head is not None
    previous = ScriptDirectory.from_config(_alembic_config()).get_revision(head).down_revision
    if not isinstance(previous, str):
        pytest.skip("only one migration (or a merge point) at head: no older single revision to stop at")
    await upgrade(engine, previous)

    with pytest.raises(SchemaOutOfDateError, match="`mcp-hub db upgrade`"):
        await ensure_schema(engine)
    assert await current_revision(engine) == previous

    await upgrade(engine)
    await ensure_schema(engine)  # current now: no error
    assert await current_revision(engine) == head


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_ensure_schema_migrates_sqlite_automatically(engine: AsyncEngine) -> None:
    assert await current_revision(engine) is None

    await ensure_schema(engine)

    assert await current_revision(engine) == head_revision()
    assert await differences_from_models(engine) == []
    await ensure_schema(engine)  # already current: a second start changes nothing
    assert await current_revision(engine) == head_revision()
