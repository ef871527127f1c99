"""Indexes for the dashboard's live counts and for finding a client by phone.

Every open calendar asks every 5 s, and every other dashboard page every 30 s, how many of the
business's bookings wait for confirmation and how many client messages are unread
(``app.domain.live``); a walk-in or phone booking looks for the business's card with that
number (``pz_booking_insert``). Without these, each is a walk over all of a business's bookings,
messages or clients; with them, a look at the few rows that answer.

- ``ix_bookings_business_pending``: the waiting bookings by business and master (a master's
  badge counts their own);
- ``ix_messages_business_unread``: the clients' messages nobody has read yet;
- ``ix_clients_business_phone``: a business's cards by phone number.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_bookings_business_pending",
        "bookings",
        ["business_id", "staff_id"],
        postgresql_where="status = 'pending'",
    )
    op.create_index(
        "ix_messages_business_unread",
        "messages",
        ["business_id"],
        postgresql_where="sender = 'client' AND read_at IS NULL",
    )
    op.create_index(
        "ix_clients_business_phone",
        "clients",
        ["business_id", "phone"],
        postgresql_where="phone IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_index("ix_clients_business_phone", table_name="clients")
    op.drop_index("ix_messages_business_unread", table_name="messages")
    op.drop_index("ix_bookings_business_pending", table_name="bookings")
