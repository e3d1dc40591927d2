"""schema.prisma against the SQLAlchemy models.

Prisma's own validator (npm `@prisma/prisma-schema-wasm`, run by prisma_dmmf.cjs under Node) must accept
the schema, and its DMMF must describe exactly the tables of `Base.metadata`: the same tables, columns
(PostgreSQL type and optionality), primary keys, unique constraints, indexes and foreign keys, under the
same database names. The comparison is exercised on mutated copies of both sides so it cannot pass
vacuously.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKeyConstraint, Index, MetaData, String, Table, UniqueConstraint
from sqlalchemy.dialects import postgresql

from mcp_hub.store.models import Base

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "schema.prisma"
DMMF_SCRIPT = Path(__file__).with_name("prisma_dmmf.cjs")

PG_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect __init__ is untyped

# What SQLAlchemy's PostgreSQL dialect emits for a column type -> (Prisma scalar type, Prisma native type).
# Comparing on PostgreSQL's DDL (the datasource's provider) checks the real column type on both sides,
# through TypeDecorators such as UTCDateTime. A type missing here is reported, never guessed.
PG_TO_PRISMA: dict[str, tuple[str, str]] = {
    "VARCHAR": ("String", "VarChar"),
    "TEXT": ("String", "Text"),
    "BOOLEAN": ("Boolean", "Boolean"),
    "SMALLINT": ("Int", "SmallInt"),
    "INTEGER": ("Int", "Integer"),
    "BIGINT": ("BigInt", "BigInt"),
    # PostgreSQL reads FLOAT without a precision as DOUBLE PRECISION.
    "FLOAT": ("Float", "DoublePrecision"),
    "DOUBLE PRECISION": ("Float", "DoublePrecision"),
    "REAL": ("Float", "Real"),
    "BYTEA": ("Bytes", "ByteA"),
    "JSON": ("Json", "Json"),
    "JSONB": ("Json", "JsonB"),
    "TIMESTAMP WITH TIME ZONE": ("DateTime", "Timestamptz"),
    "TIMESTAMP WITHOUT TIME ZONE": ("DateTime", "Timestamp"),
    "UUID": ("String", "Uuid"),
}

# The native type Prisma uses on PostgreSQL when a field has no `@db.` attribute.
PRISMA_DEFAULT_NATIVE: dict[str, tuple[str, tuple[str, ...]]] = {
    "String": ("Text", ()),
    "Boolean": ("Boolean", ()),
    "Int": ("Integer", ()),
    "BigInt": ("BigInt", ()),
    "Float": ("DoublePrecision", ()),
    "Bytes": ("ByteA", ()),
    "Json": ("JsonB", ()),
    "DateTime": ("Timestamp", ("3",)),
    "Decimal": ("Decimal", ("65", "30")),
}

# PostgreSQL's precision for a timestamp declared without one.
PG_TIMESTAMP_PRECISION = "6"

# Prisma defaults computed by the client, not by the database; every other default (now(), literals,
# dbgenerated()) becomes a column DEFAULT, which the models would then have to declare as server_default.
PRISMA_CLIENT_DEFAULTS = frozenset({"uuid", "cuid", "nanoid", "ulid"})

# Prisma's referential actions when a relation does not name one (onDelete depends on optionality).
PRISMA_DEFAULT_ON_UPDATE = "CASCADE"
PRISMA_ACTIONS = {
    "Cascade": "CASCADE",
    "Restrict": "RESTRICT",
    "NoAction": "NO ACTION",
    "SetNull": "SET NULL",
    "SetDefault": "SET DEFAULT",
}


@dataclass(frozen=True)
class ColumnShape:
    scalar: str
    native: tuple[str, tuple[str, ...]]
    nullable: bool
    autoincrement: bool
    database_default: bool


@dataclass(frozen=True)
class ForeignKeyShape:
    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]
    on_delete: str
    on_update: str


@dataclass(frozen=True)
class TableShape:
    """One table as both sides describe it, in database names only."""

    columns: dict[str, ColumnShape]
    primary_key: tuple[str | None, tuple[str, ...]]
    # (name, columns): a unique constraint and a unique index are the same thing to Prisma.
    uniques: frozenset[tuple[str | None, tuple[str, ...]]]
    indexes: frozenset[tuple[str | None, tuple[str, ...]]]
    foreign_keys: frozenset[ForeignKeyShape]


class PrismaSchemaError(Exception):
    """Prisma's validator rejected the schema."""


def prisma_datamodel(schema_text: str) -> dict[str, Any]:
    """Validate with Prisma's own validator and return the datamodel of its DMMF."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; the Prisma schema check needs Node 20+ (see TOOLS.md)")
    if not (REPO_ROOT / "node_modules" / "@prisma" / "prisma-schema-wasm").is_dir():
        pytest.fail("npm package @prisma/prisma-schema-wasm is missing: run `make node-deps`")
    result = subprocess.run(
        [node, str(DMMF_SCRIPT)],
        input=schema_text,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise PrismaSchemaError(result.stderr.strip() or f"node exited with {result.returncode}")
    datamodel: dict[str, Any] = json.loads(result.stdout)
    return datamodel


# --- the models' side ---------------------------------------------------------------------------------


def _prisma_type(column: Column[Any]) -> tuple[str, tuple[str, tuple[str, ...]]] | str:
    """The column's PostgreSQL type as (Prisma scalar, Prisma native type), or why there is none."""
    ddl = column.type.compile(dialect=PG_DIALECT)
    match = re.fullmatch(r"([A-Z ]+?)(?:\((.*)\))?", ddl)
    if match is None or match.group(1) not in PG_TO_PRISMA:
        return f"no Prisma equivalent known for PostgreSQL type {ddl}: extend PG_TO_PRISMA"
    scalar, native = PG_TO_PRISMA[match.group(1)]
    args = tuple(arg.strip() for arg in match.group(2).split(",")) if match.group(2) else ()
    if native in {"Timestamptz", "Timestamp"} and not args:
        args = (PG_TIMESTAMP_PRECISION,)
    return scalar, (native, args)


def models_shape(metadata: MetaData) -> tuple[dict[str, TableShape], list[str]]:
    tables: dict[str, TableShape] = {}
    problems: list[str] = []
    for table in metadata.tables.values():
        columns: dict[str, ColumnShape] = {}
        for column in table.columns:
            prisma_type = _prisma_type(column)
            if isinstance(prisma_type, str):
                problems.append(f"{table.name}.{column.name}: {prisma_type}")
                continue
            columns[column.name] = ColumnShape(
                scalar=prisma_type[0],
                native=prisma_type[1],
                nullable=bool(column.nullable),
                autoincrement=table.autoincrement_column is column,
                database_default=column.server_default is not None,
            )
        tables[table.name] = TableShape(
            columns=columns,
            primary_key=(_name(table.primary_key.name), tuple(c.name for c in table.primary_key.columns)),
            uniques=frozenset(_model_uniques(table)),
            indexes=frozenset(
                (_name(index.name), tuple(c.name for c in index.columns))
                for index in table.indexes
                if not index.unique
            ),
            foreign_keys=frozenset(_model_foreign_key(fk) for fk in table.foreign_key_constraints),
        )
    return tables, problems


def _model_uniques(table: Table) -> list[tuple[str | None, tuple[str, ...]]]:
    constraints = [
        (_name(c.name), tuple(col.name for col in c.columns))
        for c in table.constraints
        if isinstance(c, UniqueConstraint)
    ]
    unique_indexes = [
        (_name(index.name), tuple(col.name for col in index.columns))
        for index in table.indexes
        if index.unique
    ]
    return constraints + unique_indexes


def _model_foreign_key(fk: ForeignKeyConstraint) -> ForeignKeyShape:
    return ForeignKeyShape(
        columns=tuple(fk.column_keys),
        referred_table=fk.referred_table.name,
        referred_columns=tuple(element.column.name for element in fk.elements),
        on_delete=(fk.ondelete or "NO ACTION").upper(),
        on_update=(fk.onupdate or "NO ACTION").upper(),
    )


def _name(name: Any) -> str | None:
    # Names from the naming convention are `conv` (a str subclass); compare them as plain strings.
    return None if name is None else str(name)


def model_foreign_key_names(metadata: MetaData) -> set[str]:
    return {
        str(fk.name)
        for table in metadata.tables.values()
        for fk in table.foreign_key_constraints
        if fk.name is not None
    }


# --- Prisma's side ------------------------------------------------------------------------------------


def prisma_shape(datamodel: dict[str, Any]) -> dict[str, TableShape]:
    models = {model["name"]: model for model in datamodel["models"]}
    tables: dict[str, TableShape] = {}
    for model in models.values():
        db_field = {field["name"]: field.get("dbName") or field["name"] for field in model["fields"]}
        indexes = [index for index in datamodel["indexes"] if index["model"] == model["name"]]
        primary = [_index_key(index, db_field) for index in indexes if index["type"] == "id"]
        tables[_db_name(model)] = TableShape(
            columns={
                db_field[field["name"]]: _prisma_column(field)
                for field in model["fields"]
                if field["kind"] in {"scalar", "enum"}
            },
            primary_key=primary[0] if primary else (None, ()),
            uniques=frozenset(_index_key(i, db_field) for i in indexes if i["type"] == "unique"),
            indexes=frozenset(_index_key(i, db_field) for i in indexes if i["type"] == "normal"),
            foreign_keys=frozenset(
                _prisma_foreign_key(field, db_field, models[field["type"]])
                for field in model["fields"]
                if field["kind"] == "object" and field.get("relationFromFields")
            ),
        )
    return tables


def _index_key(index: dict[str, Any], db_field: dict[str, str]) -> tuple[str | None, tuple[str, ...]]:
    return index.get("dbName"), tuple(db_field[field["name"]] for field in index["fields"])


def _db_name(model: dict[str, Any]) -> str:
    return str(model.get("dbName") or model["name"])


def _prisma_column(field: dict[str, Any]) -> ColumnShape:
    if field["nativeType"] is None:
        native = PRISMA_DEFAULT_NATIVE.get(field["type"], (f"<default for {field['type']}>", ()))
    else:
        native_name, native_args = field["nativeType"][0], tuple(field["nativeType"][1])
        if native_name in {"Timestamptz", "Timestamp"} and not native_args:
            native_args = (PG_TIMESTAMP_PRECISION,)
        native = (native_name, native_args)
    default = field.get("default")
    default_name = default.get("name") if isinstance(default, dict) else None
    return ColumnShape(
        # A list field is a PostgreSQL array, which no model column maps to yet: keep it unequal.
        scalar=f"{field['type']}[]" if field["isList"] else field["type"],
        native=native,
        nullable=not field["isRequired"],
        autoincrement=default_name == "autoincrement",
        database_default=field["hasDefaultValue"]
        and not field.get("isUpdatedAt", False)
        and default_name not in PRISMA_CLIENT_DEFAULTS | {"autoincrement"},
    )


def _prisma_foreign_key(
    field: dict[str, Any], db_field: dict[str, str], target: dict[str, Any]
) -> ForeignKeyShape:
    target_field = {f["name"]: f.get("dbName") or f["name"] for f in target["fields"]}
    on_delete = field.get("relationOnDelete")
    on_update = field.get("relationOnUpdate")
    return ForeignKeyShape(
        columns=tuple(db_field[name] for name in field["relationFromFields"]),
        referred_table=_db_name(target),
        referred_columns=tuple(target_field[name] for name in field["relationToFields"]),
        # Without onDelete Prisma restricts a required relation and nulls an optional one.
        on_delete=PRISMA_ACTIONS[on_delete]
        if on_delete
        else ("RESTRICT" if field["isRequired"] else "SET NULL"),
        on_update=PRISMA_ACTIONS[on_update] if on_update else PRISMA_DEFAULT_ON_UPDATE,
    )


def prisma_foreign_key_names(schema_text: str) -> set[str]:
    # The DMMF does not carry a relation's constraint name, so read `map:` from the @relation attributes.
    return set(re.findall(r'@relation\([^)]*\bmap:\s*"([^"]+)"', schema_text))


# --- the comparison -----------------------------------------------------------------------------------


def schema_differences(schema_text: str, datamodel: dict[str, Any], metadata: MetaData) -> list[str]:
    """Every way schema.prisma and the models disagree, as readable lines; empty when they match."""
    models, differences = models_shape(metadata)
    prisma = prisma_shape(datamodel)
    differences += [f"table {name} only in the models" for name in sorted(models.keys() - prisma.keys())]
    differences += [f"table {name} only in schema.prisma" for name in sorted(prisma.keys() - models.keys())]
    for name in sorted(models.keys() & prisma.keys()):
        differences += _table_differences(name, models[name], prisma[name])
    model_fks, prisma_fks = model_foreign_key_names(metadata), prisma_foreign_key_names(schema_text)
    differences += [f"foreign key name {n} only in the models" for n in sorted(model_fks - prisma_fks)]
    differences += [f"foreign key name {n} only in schema.prisma" for n in sorted(prisma_fks - model_fks)]
    return differences


def _table_differences(table: str, model: TableShape, prisma: TableShape) -> list[str]:
    differences = [
        f"{table}: column {c} only in the models"
        for c in sorted(model.columns.keys() - prisma.columns.keys())
    ]
    differences += [
        f"{table}: column {c} only in schema.prisma"
        for c in sorted(prisma.columns.keys() - model.columns.keys())
    ]
    for column in sorted(model.columns.keys() & prisma.columns.keys()):
        mine, theirs = model.columns[column], prisma.columns[column]
        if (mine.scalar, mine.native) != (theirs.scalar, theirs.native):
            differences.append(
                f"{table}.{column}: type {mine.scalar} {_native(mine)} in the models, "
                f"{theirs.scalar} {_native(theirs)} in schema.prisma"
            )
        if mine.nullable != theirs.nullable:
            differences.append(
                f"{table}.{column}: {'nullable' if mine.nullable else 'required'} in the models, "
                f"{'nullable' if theirs.nullable else 'required'} in schema.prisma"
            )
        if mine.autoincrement != theirs.autoincrement:
            differences.append(f"{table}.{column}: autoincrement differs (models {mine.autoincrement})")
        if mine.database_default != theirs.database_default:
            differences.append(
                f"{table}.{column}: database default differs (models {mine.database_default}); "
                "Python-side defaults have no place in schema.prisma"
            )
    if model.primary_key != prisma.primary_key:
        differences.append(
            f"{table}: primary key {model.primary_key} in the models, {prisma.primary_key} in schema.prisma"
        )
    for kind, mine_set, theirs_set in (
        ("unique", model.uniques, prisma.uniques),
        ("index", model.indexes, prisma.indexes),
    ):
        differences += [
            f"{table}: {kind} {key} only in the models" for key in sorted(mine_set - theirs_set, key=str)
        ]
        differences += [
            f"{table}: {kind} {key} only in schema.prisma" for key in sorted(theirs_set - mine_set, key=str)
        ]
    differences += [
        f"{table}: foreign key {fk} only in the models"
        for fk in sorted(model.foreign_keys - prisma.foreign_keys, key=str)
    ]
    differences += [
        f"{table}: foreign key {fk} only in schema.prisma"
        for fk in sorted(prisma.foreign_keys - model.foreign_keys, key=str)
    ]
    return differences


def _native(column: ColumnShape) -> str:
    name, args = column.native
    return f"@db.{name}({', '.join(args)})" if args else f"@db.{name}"


# --- tests --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_text() -> str:
    return SCHEMA_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def datamodel(schema_text: str) -> dict[str, Any]:
    return prisma_datamodel(schema_text)


def test_schema_prisma_is_valid_and_matches_the_models(schema_text: str, datamodel: dict[str, Any]) -> None:
    assert schema_differences(schema_text, datamodel, Base.metadata) == []
    # Guard against comparing two empty sides: every table is there, with its columns.
    assert {_db_name(m) for m in datamodel["models"]} == set(Base.metadata.tables)
    assert len(prisma_shape(datamodel)["mcp_servers"].columns) == len(
        Base.metadata.tables["mcp_servers"].columns
    )


def test_prisma_validator_rejects_an_invalid_schema(schema_text: str) -> None:
    broken = _replace_once(schema_text, "  disabled  Boolean\n", "  disabled  Boolean @db.VarChar(5)\n")
    with pytest.raises(PrismaSchemaError, match="P1012"):
        prisma_datamodel(broken)


MUTATIONS = {
    "extra column": (
        "  disabled  Boolean\n",
        "  disabled  Boolean\n  nickname  String? @db.VarChar(50)\n",
        "users: column nickname only in schema.prisma",
    ),
    "dropped column": (
        '  specLocation          String?  @map("spec_location") @db.VarChar(2048)\n',
        "",
        "mcp_servers: column spec_location only in the models",
    ),
    "optionality": (
        "  email     String?  @db.VarChar(320)\n",
        "  email     String   @db.VarChar(320)\n",
        "users.email: nullable in the models, required in schema.prisma",
    ),
    "length": (
        '@unique(map: "uq_users_name") @db.VarChar(200)',
        '@unique(map: "uq_users_name") @db.VarChar(100)',
        "users.name: type String @db.VarChar(200) in the models, String @db.VarChar(100) in schema.prisma",
    ),
    "timestamp without time zone": (
        '  expiresAt        DateTime? @map("expires_at") @db.Timestamptz(6)\n',
        '  expiresAt        DateTime? @map("expires_at")\n',
        "mcp_user_credentials.expires_at: type DateTime @db.Timestamptz(6) in the models, "
        "DateTime @db.Timestamp(3) in schema.prisma",
    ),
    "jsonb instead of json": (
        "  scopes                Json     @db.Json\n",
        "  scopes                Json\n",
        "mcp_servers.scopes: type Json @db.Json in the models, Json @db.JsonB in schema.prisma",
    ),
    "database default": (
        "  disabled  Boolean\n",
        "  disabled  Boolean @default(false)\n",
        "users.disabled: database default differs",
    ),
    "dropped index": (
        '  @@index([userId], map: "ix_api_keys_user_id")\n',
        "",
        "api_keys: index ('ix_api_keys_user_id', ('user_id',)) only in the models",
    ),
    "index columns": (
        '@@index([type, expiresAt], map: "ix_mcp_user_credentials_type_expires_at")',
        '@@index([expiresAt, type], map: "ix_mcp_user_credentials_type_expires_at")',
        "mcp_user_credentials: index ('ix_mcp_user_credentials_type_expires_at', ('expires_at', 'type')) "
        "only in schema.prisma",
    ),
    "unique name": (
        '@unique(map: "uq_api_keys_prefix")',
        "@unique",
        "api_keys: unique ('uq_api_keys_prefix', ('prefix',)) only in the models",
    ),
    "on delete": (
        'onDelete: Cascade, onUpdate: NoAction, map: "fk_api_keys_user_id_users"',
        'onUpdate: NoAction, map: "fk_api_keys_user_id_users"',
        "api_keys: foreign key ForeignKeyShape(columns=('user_id',), referred_table='users', "
        "referred_columns=('id',), on_delete='RESTRICT'",
    ),
    "foreign key name": (
        'map: "fk_api_keys_user_id_users"',
        'map: "api_keys_user_fk"',
        "foreign key name fk_api_keys_user_id_users only in the models",
    ),
    "table name": (
        '@@map("audit_events")',
        '@@map("audit_log")',
        "table audit_events only in the models",
    ),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_changed_schema_prisma_fails_the_comparison(schema_text: str, mutation: str) -> None:
    old, new, expected = MUTATIONS[mutation]
    mutated = _replace_once(schema_text, old, new)
    differences = schema_differences(mutated, prisma_datamodel(mutated), Base.metadata)
    assert any(expected in line for line in differences), differences


def test_a_column_added_to_the_models_fails_the_comparison(
    schema_text: str, datamodel: dict[str, Any]
) -> None:
    metadata = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    metadata.tables["users"].append_column(Column("nickname", String(50), nullable=True))
    Index("ix_api_keys_name", metadata.tables["api_keys"].c.name)  # attaches itself to the table

    differences = schema_differences(schema_text, datamodel, metadata)

    assert "users: column nickname only in the models" in differences
    assert "api_keys: index ('ix_api_keys_name', ('name',)) only in the models" in differences


def _replace_once(text: str, old: str, new: str) -> str:
    # A mutation that no longer applies (schema.prisma was edited) must fail loudly, not test nothing.
    assert text.count(old) == 1, f"mutation target not found exactly once: {old!r}"
    return text.replace(old, new)
