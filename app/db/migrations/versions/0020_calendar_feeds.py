"""Calendar feeds: a private iCalendar address per master (``GET /ical/{token}.ics``).

- ``calendar_feeds``: one row per feed a master (or an admin for a master) creates; the secret
  of the address is kept only as its sha256 digest; ``revoked_at`` ends it; ``include_phone``
  (off unless the owner allows it) puts the client's phone into the events. Tenant row-level
  security like every business table; a feed request has no session, so the address is looked
  up by digest through the SECURITY DEFINER ``pz_feed_for_token`` (app/db/sql).
- The owner's audit view verifies its own business's chain through ``audit_chain_problems``
  (app/db/sql); a downgrade drops both functions with the table.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER_ALL = (
    "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON {table} TO %I "
    "USING (true) WITH CHECK (true)', current_user); END $$"
)


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("include_phone", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_feeds_token_hash")),
        sa.ForeignKeyConstraint(
            ["business_id", "staff_id"],
            ["staff.business_id", "staff.id"],
            name=op.f("fk_calendar_feeds_business_id_staff"),
        ),
    )
    op.create_index(op.f("ix_calendar_feeds_business_id"), "calendar_feeds", ["business_id"])
    op.execute("GRANT SELECT, INSERT, UPDATE ON calendar_feeds TO pozapisi_app")
    op.execute("ALTER TABLE calendar_feeds ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE calendar_feeds FORCE ROW LEVEL SECURITY")
    op.execute(OWNER_ALL.format(table="calendar_feeds"))


FUNCTIONS = ("pz_feed_for_token(text)", "audit_chain_problems()")


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.drop_table("calendar_feeds")
