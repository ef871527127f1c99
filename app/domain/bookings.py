"""The booking life cycle: create, confirm, cancel, reschedule, complete, no-show.

Every change runs in the caller's transaction and writes, in that same transaction, an audit
entry and the outbox rows the workers deliver. The database's exclusion constraint is the last
word on double booking: a concurrent loser surfaces as ``SlotTaken`` whether PostgreSQL
reported 23P01 (exclusion violation) or 40P01 (deadlock detected).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import audit, outbox
from app.domain.audit import Actor
from app.domain.availability import blocked_period, is_slot_available
from app.domain.errors import NotFound, SlotTaken, ValidationFailed
from app.domain.schedules import load_query, service_offers
from app.i18n import N_, gettext
from app.models import Account, Booking, Business, Client
from app.models.bookings import LIVE_STATUSES

SLOT_TAKEN_SQLSTATES = ("23P01", "40P01")
STATUS_LABELS = {
    "pending": N_("Waiting for the business to confirm"),
    "confirmed": N_("Confirmed"),
    "cancelled": N_("Cancelled"),
    "completed": N_("Completed"),
    "no_show": N_("Missed"),
}
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_public_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )


def is_slot_conflict(exc: DBAPIError) -> bool:
    return _sqlstate(exc) in SLOT_TAKEN_SQLSTATES


@dataclass(frozen=True, slots=True)
class BookingRequest:
    service_id: int
    staff_id: int | None  # None: any master who is free
    start: datetime  # aware
    comment: str | None = None
    source: str = "mini_app"
    idempotency_key: str | None = None
    client_name: str | None = None
    client_phone: str | None = None


def booking_view(booking: Booking, tz: str) -> dict[str, Any]:
    zone = ZoneInfo(tz)
    assert booking.period.lower is not None and booking.period.upper is not None
    return {
        "id": booking.id,
        "status": booking.status,
        "start": booking.period.lower.astimezone(zone).isoformat(),
        "end": booking.period.upper.astimezone(zone).isoformat(),
        "staff_id": booking.staff_id,
        "service_id": booking.service_id,
    }


def _snapshot(booking: Booking) -> dict[str, Any]:
    """What the audit log digests: the booking's business facts, not the client's details."""
    return {
        "status": booking.status,
        "staff_id": booking.staff_id,
        "service_id": booking.service_id,
        "start": booking.period.lower.isoformat() if booking.period.lower else None,
        "end": booking.period.upper.isoformat() if booking.period.upper else None,
        "price_tiyn": booking.price_tiyn,
    }


async def _client_card(
    session: AsyncSession, business_id: int, account: Account | None, request: BookingRequest
) -> int:
    """The business's card for this person: found by account, created on first booking."""
    name = request.client_name or (account.name if account else None)
    phone = request.client_phone or (account.phone if account else None)
    if account is not None:
        row = await session.execute(
            text(
                "INSERT INTO clients (business_id, account_id, name, phone) "
                "VALUES (:b, :a, :name, :phone) "
                "ON CONFLICT (business_id, account_id) WHERE account_id IS NOT NULL DO UPDATE SET "
                "name = COALESCE(clients.name, EXCLUDED.name), "
                "phone = COALESCE(EXCLUDED.phone, clients.phone) RETURNING id"
            ),
            {"b": business_id, "a": account.id, "name": name, "phone": phone},
        )
        return int(row.scalar_one())
    client = Client(business_id=business_id, name=name, phone=phone)
    session.add(client)
    await session.flush()
    return client.id


async def _notify_booking(
    session: AsyncSession,
    business: Business,
    booking: Booking,
    event: str,
    now: datetime,
    *,
    client_locale: str,
    extra: dict[str, Any] | None = None,
) -> None:
    payload = {"code": booking.public_code, **(extra or {})}
    messages = []
    if booking.account_id is not None:
        messages.append(
            outbox.Outgoing(
                event=event,
                scheduled_at=now,
                account_id=booking.account_id,
                business_id=business.id,
                booking_id=booking.id,
                locale=client_locale,
                payload=payload,
            )
        )
    for account_id, locale in await outbox.business_recipients(
        session, business.id, booking.staff_id
    ):
        if account_id == booking.account_id:
            continue
        messages.append(
            outbox.Outgoing(
                event=f"staff.{event}",
                scheduled_at=now,
                account_id=account_id,
                business_id=business.id,
                booking_id=booking.id,
                locale=locale,
                payload=payload,
            )
        )
    if (
        event in ("booking.created", "booking.confirmed", "booking.rescheduled")
        and booking.account_id
    ):
        assert booking.period.lower is not None
        for moment in outbox.reminder_times(
            booking.period.lower, business.reminder_offsets_min, now
        ):
            messages.append(
                outbox.Outgoing(
                    event="booking.reminder",
                    scheduled_at=moment,
                    account_id=booking.account_id,
                    business_id=business.id,
                    booking_id=booking.id,
                    locale=client_locale,
                    payload=payload,
                )
            )
    await outbox.enqueue(session, messages)


async def _existing_by_key(session: AsyncSession, account_id: int, key: str) -> Booking | None:
    return (
        await session.execute(
            select(Booking).where(Booking.account_id == account_id, Booking.idempotency_key == key)
        )
    ).scalar_one_or_none()


async def create_booking(
    session: AsyncSession,
    business: Business,
    request: BookingRequest,
    *,
    account: Account | None,
    actor: Actor,
    now: datetime | None = None,
    event: str = "booking.created",
) -> tuple[Booking, bool]:
    """Hold the slot and record the booking; returns (booking, created).

    ``created`` is False when an ``Idempotency-Key`` replays an earlier request.
    """
    now = now or datetime.now(UTC)
    if request.start.tzinfo is None:
        raise ValidationFailed(fields={"start": gettext(N_("Give the time with its UTC offset."))})
    if request.comment is not None and len(request.comment) > 500:
        raise ValidationFailed(fields={"comment": gettext(N_("At most 500 characters."))})

    if account is not None and request.idempotency_key:
        existing = await _existing_by_key(session, account.id, request.idempotency_key)
        if existing is not None:
            return existing, False

    offers = await service_offers(session, business.id, request.service_id)
    if request.staff_id is not None:
        if request.staff_id not in offers.offers:
            raise NotFound(gettext(N_("This master does not perform this service.")))
        candidates = [request.staff_id]
    else:
        candidates = list(offers.offers)
    if not candidates:
        raise NotFound(gettext(N_("Nobody performs this service at the moment.")))

    tz = ZoneInfo(business.timezone)
    local_date = request.start.astimezone(tz).date()
    query = await load_query(session, business, offers, candidates, local_date, local_date, now)
    free = [s for s in candidates if is_slot_available(query, s, request.start)]
    if not free:
        raise SlotTaken()

    client_id = await _client_card(session, business.id, account, request)
    if account is not None:
        active = await session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(
                Booking.business_id == business.id,
                Booking.client_id == client_id,
                Booking.status.in_(LIVE_STATUSES),
                func.upper(Booking.period) > now,
            )
        )
        if (active or 0) >= business.max_active_bookings_per_client:
            raise ValidationFailed(
                gettext(
                    N_("You already have the maximum number of upcoming bookings here. "
                       "Cancel one or wait until it has passed.")
                )
            )  # fmt: skip

    status = "confirmed" if business.auto_confirm else "pending"
    service = offers.service
    start = request.start.astimezone(UTC)
    for staff_id in free:
        offer = offers.offers[staff_id]
        end = start + timedelta(minutes=offer.duration_min)
        b_start, b_end = blocked_period(
            start, offer.duration_min, service.buffer_before_min, service.buffer_after_min
        )
        booking = Booking(
            business_id=business.id,
            public_code=new_public_code(),
            client_id=client_id,
            account_id=account.id if account else None,
            staff_id=staff_id,
            service_id=service.id,
            period=Range(start, end, bounds="[)"),
            blocked_period=Range(b_start, b_end, bounds="[)"),
            status=status,
            source=request.source,
            pending_expires_at=now + timedelta(minutes=business.pending_ttl_min)
            if status == "pending"
            else None,
            service_name=dict(service.name),
            duration_min=offer.duration_min,
            price_tiyn=offer.price_tiyn,
            comment=request.comment,
            idempotency_key=request.idempotency_key,
            created_at=now,
            updated_at=now,
        )
        # a savepoint only where a failed insert leaves something to try: another free master,
        # or a concurrent retry's booking to answer with; otherwise the error ends the request
        recoverable = len(free) > 1 or bool(account is not None and request.idempotency_key)
        try:
            if recoverable:
                async with session.begin_nested():
                    session.add(booking)
                    await session.flush()
            else:
                session.add(booking)
                await session.flush()
        except DBAPIError as exc:
            if not recoverable:
                if is_slot_conflict(exc):
                    raise SlotTaken() from exc
                raise
            if booking in session:  # the savepoint's rollback usually expunged it already
                session.expunge(booking)
            if account is not None and request.idempotency_key:
                # a concurrent retry with the same key may have won (unique index, or the slot
                # it holds): answer with that booking, not with a conflict
                replay = await _existing_by_key(session, account.id, request.idempotency_key)
                if replay is not None:
                    return replay, False
            if is_slot_conflict(exc):
                continue  # "any master": the next free one may still be free
            raise
        locale = account.locale if account else business.default_locale
        await _notify_booking(session, business, booking, event, now, client_locale=locale)
        # last: the chain's lock is held from here to COMMIT, so bookings of one business
        # queue behind each other only for that short stretch
        await audit.record(
            session,
            actor=actor,
            action="booking.create",
            entity="booking",
            entity_id=booking.id,
            business_id=business.id,
            after=_snapshot(booking),
        )
        return booking, True
    raise SlotTaken()


async def get_booking(
    session: AsyncSession, booking_id: int, *, account_id: int | None = None
) -> Booking:
    """A booking visible in this transaction (RLS decides); ``account_id`` narrows to one client."""
    stmt = select(Booking).where(Booking.id == booking_id)
    if account_id is not None:
        stmt = stmt.where(Booking.account_id == account_id)
    booking = (await session.execute(stmt)).scalar_one_or_none()
    if booking is None:
        raise NotFound()
    return booking


_ACCOUNT_BOOKINGS = text(
    "SELECT b.id, b.status, lower(b.period) AS start, upper(b.period) AS end, b.staff_id, "
    "b.service_id, b.service_name, b.price_tiyn, b.public_code AS code, b.business_id, z.slug, z.name "
    "AS business_name, z.timezone, st.name AS staff_name FROM bookings b "
    "JOIN businesses z ON z.id = b.business_id JOIN staff st ON st.id = b.staff_id "
    "WHERE b.account_id = :a ORDER BY lower(b.period) DESC LIMIT :limit"
)


@dataclass(frozen=True, slots=True)
class AccountBooking:
    """One of a person's bookings, in any business, as their own lists show it."""

    id: int
    status: str
    start: datetime
    end: datetime
    staff_id: int
    service_id: int
    service_name: dict[str, str]
    price_tiyn: int
    code: str
    business_id: int
    slug: str
    business_name: str
    timezone: str
    staff_name: str

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


async def bookings_of_account(
    session: AsyncSession, account_id: int, limit: int = 200
) -> list[AccountBooking]:
    """Newest first; needs ``app.account_id`` set (the client_own policy crosses businesses)."""
    rows = await session.execute(_ACCOUNT_BOOKINGS, {"a": account_id, "limit": limit})
    return [AccountBooking(**row._mapping) for row in rows]


def cancel_deadline(booking: Booking, business: Business) -> datetime:
    assert booking.period.lower is not None
    return booking.period.lower - timedelta(minutes=business.cancel_deadline_min)


async def _transition(
    session: AsyncSession,
    business: Business,
    booking: Booking,
    *,
    to: str,
    actor: Actor,
    now: datetime,
    event: str | None,
    extra: dict[str, Any] | None = None,
    locale: str = "ru",
) -> Booking:
    before = _snapshot(booking)
    booking.status = to
    booking.updated_at = now
    if to != "pending":
        booking.pending_expires_at = None
    await session.flush()
    if to in ("cancelled", "completed", "no_show"):
        await outbox.cancel_pending(session, booking.id, ["booking.reminder"], f"booking {to}")
    if event:
        await _notify_booking(
            session, business, booking, event, now, client_locale=locale, extra=extra
        )
    await audit.record(
        session,
        actor=actor,
        action=f"booking.{to}",
        entity="booking",
        entity_id=booking.id,
        business_id=business.id,
        before=before,
        after=_snapshot(booking),
    )
    return booking


async def _client_locale(session: AsyncSession, booking: Booking, business: Business) -> str:
    if booking.account_id is None:
        return business.default_locale
    locale = await session.scalar(select(Account.locale).where(Account.id == booking.account_id))
    return locale or business.default_locale


async def cancel_booking(
    session: AsyncSession,
    business: Business,
    booking: Booking,
    *,
    by: str,
    actor: Actor,
    reason: str | None = None,
    now: datetime | None = None,
) -> Booking:
    """Cancel: a client until the business's deadline, the business at any time (with reason)."""
    now = now or datetime.now(UTC)
    if booking.status not in LIVE_STATUSES:
        raise ValidationFailed(gettext(N_("This booking is no longer active.")))
    if by == "client" and now > cancel_deadline(booking, business):
        raise ValidationFailed(
            gettext(
                N_("It is too late to cancel online: the business accepts cancellations up to "
                   "%(hours)s h before the visit. Please write or call them.")
            ) % {"hours": format(round(business.cancel_deadline_min / 60, 1), "g")}
        )  # fmt: skip
    if reason is not None and len(reason) > 500:
        raise ValidationFailed(fields={"reason": gettext(N_("At most 500 characters."))})
    booking.cancel_reason = reason
    booking.cancelled_by = by
    locale = await _client_locale(session, booking, business)
    return await _transition(
        session, business, booking, to="cancelled", actor=actor, now=now,
        event="booking.cancelled", extra={"by": by}, locale=locale,
    )  # fmt: skip


async def confirm_booking(
    session: AsyncSession,
    business: Business,
    booking: Booking,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> Booking:
    now = now or datetime.now(UTC)
    if booking.status != "pending":
        raise ValidationFailed(
            gettext(N_("Only a booking that waits for confirmation can be confirmed."))
        )
    locale = await _client_locale(session, booking, business)
    return await _transition(
        session, business, booking, to="confirmed", actor=actor, now=now,
        event="booking.confirmed", locale=locale,
    )  # fmt: skip


async def mark_attendance(
    session: AsyncSession,
    business: Business,
    booking: Booking,
    *,
    attended: bool,
    actor: Actor,
    now: datetime | None = None,
) -> Booking:
    """After the visit: completed, or a no-show. Not before the visit has started."""
    now = now or datetime.now(UTC)
    if booking.status not in LIVE_STATUSES:
        raise ValidationFailed(gettext(N_("This booking is no longer active.")))
    assert booking.period.lower is not None
    if booking.period.lower > now:
        raise ValidationFailed(gettext(N_("The visit has not started yet.")))
    return await _transition(
        session, business, booking, to="completed" if attended else "no_show",
        actor=actor, now=now, event=None,
    )  # fmt: skip


async def reschedule_booking(
    session: AsyncSession,
    business: Business,
    booking: Booking,
    *,
    new_start: datetime,
    new_staff_id: int | None,
    by: str,
    actor: Actor,
    account: Account | None,
    now: datetime | None = None,
) -> Booking:
    """Move a booking atomically: the new slot is held before the old one is released.

    Both happen in one transaction; if the new slot is taken, nothing changes.
    """
    now = now or datetime.now(UTC)
    if booking.status not in LIVE_STATUSES:
        raise ValidationFailed(gettext(N_("This booking is no longer active.")))
    if by == "client" and now > cancel_deadline(booking, business):
        raise ValidationFailed(
            gettext(
                N_("It is too late to move this booking online. Please write or call the business.")
            )
        )
    # The old booking still blocks its own time, so a move by less than its length would clash
    # with itself: release it inside a savepoint that rolls back if the new slot is not free.
    before = _snapshot(booking)
    async with session.begin_nested():
        await session.execute(
            text(
                "UPDATE bookings SET status = 'cancelled', cancelled_by = :by, "
                "cancel_reason = 'rescheduled', pending_expires_at = NULL, updated_at = :now "
                "WHERE id = :id"
            ),
            {"by": by, "now": now, "id": booking.id},
        )
        request = BookingRequest(
            service_id=booking.service_id,
            staff_id=new_staff_id if new_staff_id is not None else booking.staff_id,
            start=new_start,
            comment=booking.comment,
            source=booking.source,
        )
        new_booking, _created = await create_booking(
            session, business, request, account=account, actor=actor, now=now,
            event="booking.rescheduled",
        )  # fmt: skip
    new_booking.rescheduled_from_id = booking.id
    await session.flush()
    await session.refresh(booking)
    await outbox.cancel_pending(session, booking.id, ["booking.reminder"], "booking rescheduled")
    await audit.record(
        session,
        actor=actor,
        action="booking.reschedule",
        entity="booking",
        entity_id=booking.id,
        business_id=business.id,
        before=before,
        after=_snapshot(new_booking),
    )
    return new_booking
