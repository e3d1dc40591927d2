"""OpenAPI-backed servers: stored spec document, its fetch time, base URL override, tool filters

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
# Re-chained after 0003 when the branches merge; the columns touch nothing 0003 adds.
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mcp_servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spec_document", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("spec_fetched_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("openapi_base_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("openapi_include", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("openapi_exclude", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mcp_servers", schema=None) as batch_op:
        batch_op.drop_column("openapi_exclude")
        batch_op.drop_column("openapi_include")
        batch_op.drop_column("openapi_base_url")
        batch_op.drop_column("spec_fetched_at")
        batch_op.drop_column("spec_document")
