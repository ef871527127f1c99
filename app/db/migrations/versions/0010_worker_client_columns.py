"""The worker role sees of a client card only what its messages name: id and name.

Workers deliver messages, keep reminders and enforce retention. A message to the business
names its client (``workers/context.py``); nothing a worker does needs the card's phone, tags
or the business's private notes about the person, so column privileges replace the table-wide
``SELECT`` that migration 0002 gave.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKER_CLIENT_COLUMNS = ("id", "business_id", "name")


def upgrade() -> None:
    op.execute("REVOKE SELECT ON clients FROM pozapisi_worker")
    op.execute(f"GRANT SELECT ({', '.join(WORKER_CLIENT_COLUMNS)}) ON clients TO pozapisi_worker")


def downgrade() -> None:
    op.execute(
        f"REVOKE SELECT ({', '.join(WORKER_CLIENT_COLUMNS)}) ON clients FROM pozapisi_worker"
    )
    op.execute("GRANT SELECT ON clients TO pozapisi_worker")
