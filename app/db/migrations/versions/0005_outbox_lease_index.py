"""Index the leases of notifications being sent, so finding rows of a dead worker needs no scan.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_notifications_sending_lease",
        "notifications",
        ["next_attempt_at"],
        unique=False,
        postgresql_where="status = 'sending'",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_notifications_sending_lease",
        table_name="notifications",
        postgresql_where="status = 'sending'",
    )
