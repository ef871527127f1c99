"""Write notification rows in the caller's transaction; the workers deliver them.

Each row's idempotency key names (event, booking, channel, recipient, scheduled time), so a
retried transaction or a second scheduler can never queue the same message twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_INSERT = text(
    "INSERT INTO notifications (business_id, booking_id, account_id, address, event, channel, "
    "locale, payload, idempotency_key, scheduled_at) "
    "SELECT * FROM unnest(CAST(:business_id AS bigint[]), CAST(:booking_id AS bigint[]), "
    "CAST(:account_id AS bigint[]), CAST(:address AS text[]), CAST(:event AS text[]), "
    "CAST(:channel AS text[]), CAST(:locale AS text[]), CAST(:payload AS jsonb[]), "
    "CAST(:key AS text[]), CAST(:scheduled_at AS timestamptz[])) "
    "ON CONFLICT (idempotency_key) DO NOTHING"
)

_CANCEL_PENDING = text(
    "UPDATE notifications SET status = 'cancelled', last_error = :why "
    "WHERE booking_id = :booking_id AND status = 'pending' AND event = ANY(:events)"
)

_RECIPIENTS = text(
    "SELECT DISTINCT m.account_id, a.locale FROM memberships m JOIN accounts a ON a.id = m.account_id "
    "WHERE m.business_id = :b AND a.deleted_at IS NULL AND m.notify_bookings AND "
    "(m.role IN ('owner', 'admin') OR m.staff_id = :staff_id) "
    "UNION SELECT s.account_id, a.locale FROM staff s JOIN accounts a ON a.id = s.account_id "
    "WHERE s.business_id = :b AND s.id = :staff_id AND a.deleted_at IS NULL"
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    event: str
    scheduled_at: datetime
    account_id: int | None = None
    address: str | None = None
    business_id: int | None = None
    booking_id: int | None = None
    channel: str = "auto"
    locale: str = "ru"
    payload: dict[str, Any] | None = None

    @property
    def idempotency_key(self) -> str:
        recipient = f"a{self.account_id}" if self.account_id else f"x{self.address}"
        return (
            f"{self.event}:{self.booking_id or '-'}:{self.channel}:{recipient}:"
            f"{self.scheduled_at.isoformat(timespec='seconds')}"
        )


async def enqueue(session: AsyncSession, messages: list[Outgoing]) -> None:
    """Queue messages in one statement, in the current transaction."""
    if not messages:
        return
    await session.execute(
        _INSERT,
        {
            "business_id": [m.business_id for m in messages],
            "booking_id": [m.booking_id for m in messages],
            "account_id": [m.account_id for m in messages],
            "address": [m.address for m in messages],
            "event": [m.event for m in messages],
            "channel": [m.channel for m in messages],
            "locale": [m.locale for m in messages],
            "payload": [msgspec.json.encode(m.payload or {}).decode() for m in messages],
            "key": [m.idempotency_key for m in messages],
            "scheduled_at": [m.scheduled_at for m in messages],
        },
    )


async def cancel_pending(
    session: AsyncSession, booking_id: int, events: list[str], why: str
) -> None:
    """Withdraw messages not yet sent (reminders of a cancelled booking, say)."""
    await session.execute(_CANCEL_PENDING, {"booking_id": booking_id, "events": events, "why": why})


async def business_recipients(
    session: AsyncSession, business_id: int, staff_id: int
) -> list[tuple[int, str]]:
    """Accounts on the business side told about a booking: its master, owners and admins."""
    rows = await session.execute(_RECIPIENTS, {"b": business_id, "staff_id": staff_id})
    return [(account_id, locale) for account_id, locale in rows]


def reminder_times(start: datetime, offsets_min: list[int], now: datetime) -> list[datetime]:
    """Reminder moments still ahead of ``now`` (a reminder for the past is never queued)."""
    return [start - timedelta(minutes=m) for m in sorted(set(offsets_min), reverse=True)
            if start - timedelta(minutes=m) > now]  # fmt: skip
