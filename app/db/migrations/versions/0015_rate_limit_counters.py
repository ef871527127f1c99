"""Rate-limit counters in PostgreSQL, so a limit holds across app processes and servers.

One row per (limit, key, window): ``app/db/sql/functions/pz_rate_limit_hit.sql`` counts with one
``INSERT … ON CONFLICT DO UPDATE`` (see ``app.security.limits`` for why PostgreSQL and not a
memory or Redis store). The key is a keyed digest, never an address, contact or id in clear.

UNLOGGED: a counter is worth nothing after a crash or on a promoted standby (it starts again
from zero, as after a quiet minute), and skipping the write-ahead log keeps a counted request
cheap. The app role gets no right on the table at all: it may only call the SECURITY DEFINER
function. The worker role deletes rows whose windows are over (``workers.maintenance``); it
needs to read ``expires_at`` for that and nothing else.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("bucket", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket", "key", "window_start", name=op.f("pk_rate_limit_counters")
        ),
        prefixes=["UNLOGGED"],
    )
    op.create_index(
        op.f("ix_rate_limit_counters_expires_at"), "rate_limit_counters", ["expires_at"]
    )
    op.execute("REVOKE ALL ON rate_limit_counters FROM PUBLIC, pozapisi_app, pozapisi_worker")
    op.execute("GRANT SELECT (expires_at), DELETE ON rate_limit_counters TO pozapisi_worker")


def downgrade() -> None:
    # the function's file created it after the migrations; it cannot outlive its table
    op.execute(
        "DROP FUNCTION IF EXISTS pz_rate_limit_hit(text, text, integer, integer, timestamptz)"
    )
    op.drop_index(op.f("ix_rate_limit_counters_expires_at"), table_name="rate_limit_counters")
    op.drop_table("rate_limit_counters")
