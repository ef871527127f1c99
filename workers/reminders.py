"""Reminders: the safety net around the rows the booking transaction pre-schedules.

The booking service queues a reminder row for each of the business's reminder times (default
24 h and 2 h before the visit) in the same transaction as the booking. This job, run by cron,
keeps those rows true to the bookings and to the business's setting:

* a reminder that should fire within the look-ahead and has no row gets one (written through
  the same ``app.domain.outbox`` code, so its idempotency key is the one the booking would
  have written: exactly one row per booking per reminder time, whoever writes it first);
* a pending reminder whose booking is no longer live, or whose time is no longer one of the
  business's reminder times, is withdrawn.

The relay checks the booking again at send time; this job makes the outbox say so early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domain import outbox

LOOKAHEAD = timedelta(hours=1)

# bookings whose reminder falls due within the look-ahead, as ranges of starts_at per business
# and reminder time: ix_bookings_business_starts can serve them; lower(period), which no index
# covers since migration 0007, could not
_MISSING_CANDIDATES = text(
    "SELECT b.id AS booking_id, b.business_id, b.account_id, b.public_code, a.locale, "
    "b.starts_at - make_interval(mins => o.offset_min) AS moment "
    "FROM businesses z CROSS JOIN LATERAL unnest(z.reminder_offsets_min) AS o(offset_min) "
    "JOIN bookings b ON b.business_id = z.id "
    "AND b.starts_at > CAST(:now AS timestamptz) + make_interval(mins => o.offset_min) "
    "AND b.starts_at <= CAST(:until AS timestamptz) + make_interval(mins => o.offset_min) "
    "JOIN accounts a ON a.id = b.account_id AND a.deleted_at IS NULL "
    "WHERE b.status = ANY (pz_live_statuses()) AND b.starts_at > :now"
)
_WITHDRAW = text(
    "UPDATE notifications n SET status = 'cancelled', last_error = CASE "
    "WHEN b.status <> ALL (pz_live_statuses()) THEN 'reminder withdrawn: booking ' || b.status "
    "ELSE 'reminder withdrawn: no longer one of the business''s reminder times' END "
    "FROM bookings b JOIN businesses z ON z.id = b.business_id "
    "WHERE n.booking_id = b.id AND n.event = 'booking.reminder' AND n.status = 'pending' "
    "AND (b.status <> ALL (pz_live_statuses()) OR NOT (round(extract(epoch FROM "
    "lower(b.period) - n.scheduled_at) / 60)::int = ANY (z.reminder_offsets_min))) "
    "RETURNING n.id"
)


@dataclass(frozen=True, slots=True)
class ReminderSweep:
    scheduled: int
    withdrawn: int


async def sweep(engine: AsyncEngine, now: datetime) -> ReminderSweep:
    """One pass: queue missing reminders due within the look-ahead, withdraw stale ones."""
    async with AsyncSession(engine) as session, session.begin():
        withdrawn = len(list((await session.execute(_WITHDRAW)).scalars()))
        rows = (
            await session.execute(_MISSING_CANDIDATES, {"now": now, "until": now + LOOKAHEAD})
        ).all()
        messages = [
            outbox.Outgoing(
                event="booking.reminder",
                scheduled_at=row.moment,
                account_id=row.account_id,
                business_id=row.business_id,
                booking_id=row.booking_id,
                locale=row.locale,
                payload={"code": row.public_code},
            )
            for row in rows
        ]
        scheduled = await outbox.enqueue(session, messages)  # a reminder queued before: 0
    return ReminderSweep(scheduled=scheduled, withdrawn=withdrawn)
