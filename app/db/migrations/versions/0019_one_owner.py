"""Exactly one owner a business, held by the database too.

The team's domain (``app.domain.team``) locks the memberships of a business before any change
of roles and steps the old owner down before the new one takes over; this unique partial index
makes a second owner impossible whatever writes the table (a bug, a script, a concurrent
transfer), the way the exclusion constraint does for double bookings.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uq_memberships_one_owner",
        "memberships",
        ["business_id"],
        unique=True,
        postgresql_where="role = 'owner'",
    )


def downgrade() -> None:
    op.drop_index("uq_memberships_one_owner", table_name="memberships")
