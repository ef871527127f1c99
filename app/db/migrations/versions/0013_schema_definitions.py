"""Functions, triggers and policies become source files; this table records which were applied.

From here on the current definition of every database function, trigger and row-level-security
policy is its own file under ``app/db/sql/`` (see ``app.db.definitions``), applied after the
migrations by ``pozapisi db upgrade`` whenever its text changes. ``schema_definitions`` keeps the
sha256 of each file's text as last applied. Only the owner reads or writes it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE schema_definitions ("
        "name text PRIMARY KEY, "
        "checksum text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )


def downgrade() -> None:
    op.execute("DROP TABLE schema_definitions")
