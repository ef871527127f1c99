"""Write notification rows in the caller's transaction; the workers deliver them.

Each row's idempotency key names (event, booking, channel, recipient, scheduled time), so a
retried transaction or a second scheduler can never queue the same message twice. The database
builds it (``pz_notification_key``), for the rows written here and in SQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.i18n import N_, gettext

# the key is pz_notification_key's (app/db/sql/functions), the one definition every writer uses
_INSERT = text(
    "INSERT INTO notifications (business_id, booking_id, account_id, address, event, channel, "
    "locale, payload, idempotency_key, scheduled_at) "
    "SELECT b, bk, a, addr, ev, ch, loc, pl, "
    "coalesce(k, pz_notification_key(ev, bk, ch, a, addr, at)), at "
    "FROM unnest(CAST(:business_id AS bigint[]), CAST(:booking_id AS bigint[]), "
    "CAST(:account_id AS bigint[]), CAST(:address AS text[]), CAST(:event AS text[]), "
    "CAST(:channel AS text[]), CAST(:locale AS text[]), CAST(:payload AS jsonb[]), "
    "CAST(:key AS text[]), CAST(:scheduled_at AS timestamptz[])) "
    "AS m(b, bk, a, addr, ev, ch, loc, pl, k, at) "
    "ON CONFLICT (idempotency_key) DO NOTHING"
)

_CANCEL_PENDING = text(
    "UPDATE notifications SET status = 'cancelled', last_error = :why "
    "WHERE booking_id = :booking_id AND status = 'pending' AND event = ANY(:events)"
)

_RECIPIENTS = text("SELECT account_id, locale FROM pz_booking_recipients(:b, :staff_id)")


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
    def own_key(self) -> str | None:
        """A key of the message's own; None: the database's ``pz_notification_key`` (event,
        booking, channel, recipient, time), the one rule every writer of the outbox follows."""
        return None


def columns(messages: Sequence[Outgoing]) -> dict[str, list[Any]]:
    """The messages as one array per column, for an ``INSERT … SELECT * FROM unnest(…)``."""
    return {
        "business_id": [m.business_id for m in messages],
        "booking_id": [m.booking_id for m in messages],
        "account_id": [m.account_id for m in messages],
        "address": [m.address for m in messages],
        "event": [m.event for m in messages],
        "channel": [m.channel for m in messages],
        "locale": [m.locale for m in messages],
        "payload": [msgspec.json.encode(m.payload or {}).decode() for m in messages],
        "key": [m.own_key for m in messages],
        "scheduled_at": [m.scheduled_at for m in messages],
    }


async def enqueue(session: AsyncSession, messages: list[Outgoing]) -> int:
    """Queue messages in one statement, in the current transaction; returns how many were new
    (a message already queued under the same key is not queued again)."""
    if not messages:
        return 0
    result = await session.execute(_INSERT, columns(messages))
    return int(getattr(result, "rowcount", 0) or 0)


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


_CHANNELS_OF = text(
    "SELECT telegram_id IS NOT NULL AND allows_write_to_pm AS telegram, email IS NOT NULL AS email, "
    "phone IS NOT NULL AS sms FROM accounts WHERE id = :id AND deleted_at IS NULL"
)


async def on_every_channel(session: AsyncSession, message: Outgoing) -> list[Outgoing]:
    """One copy of ``message`` per channel the person has (policy 11.1: a policy-change notice
    goes by e-mail *and* Telegram); SMS only when they have neither. Each copy is its own row,
    so each channel is delivered and retried on its own."""
    if message.account_id is None:
        return [message]
    row = (await session.execute(_CHANNELS_OF, {"id": message.account_id})).first()
    if row is None:
        return []
    channels = [c for c in ("telegram", "email") if getattr(row, c)] or (["sms"] if row.sms else [])
    return [
        Outgoing(
            event=message.event,
            scheduled_at=message.scheduled_at,
            account_id=message.account_id,
            business_id=message.business_id,
            booking_id=message.booking_id,
            channel=channel,
            locale=message.locale,
            payload=message.payload,
        )
        for channel in channels
    ]


# what the business is told when a message to its client (or staff) could not be delivered;
# the keys are the reason codes the workers put at the head of ``notifications.last_error``
FAILURE_EXPLANATIONS = {
    "blocked": N_("The person has blocked the PoZapisi bot in Telegram."),
    "invalid_address": N_("This phone number, e-mail address or Telegram chat does not exist."),
    "rejected": N_("The provider refused the message."),
    "no_channel": N_("There is no way to reach this person: no Telegram, phone or e-mail."),
    "gave_up": N_("The message could not be delivered after many attempts."),
}

_FAILED = text(
    "SELECT n.id, n.event, n.last_error, n.attempts, n.account_id = b.account_id AS to_client "
    "FROM notifications n JOIN bookings b ON b.id = n.booking_id "
    "WHERE n.booking_id = :booking_id AND n.status = 'failed' ORDER BY n.id"
)


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    notification_id: int
    event: str
    to_client: bool  # else a master, owner or admin of the business
    reason: str
    explanation: str  # in the current language
    attempts: int


def failure_reason(last_error: str | None) -> str:
    return (last_error or "").split(":", 1)[0].strip() or "gave_up"


async def delivery_failures(session: AsyncSession, booking_id: int) -> list[DeliveryFailure]:
    """Messages about a booking that could not be delivered, for the business to act on (call
    the client, say). Runs under the tenant's row-level security like any dashboard read."""
    failures = []
    for row in await session.execute(_FAILED, {"booking_id": booking_id}):
        reason = failure_reason(row.last_error)
        explanation = FAILURE_EXPLANATIONS.get(reason, FAILURE_EXPLANATIONS["gave_up"])
        failures.append(
            DeliveryFailure(
                notification_id=row.id,
                event=row.event,
                to_client=bool(row.to_client),
                reason=reason,
                explanation=gettext(explanation),
                attempts=row.attempts,
            )
        )
    return failures
