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
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import audit, outbox
from app.domain.audit import Actor
from app.domain.availability import SlotQuery, blocked_period, is_slot_available
from app.domain.errors import DomainError, NotFound, SlotTaken, ValidationFailed
from app.domain.schedules import Offer, load_query, service_offers
from app.i18n import N_, gettext
from app.models import Account, Booking, Business
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


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised by asyncpg or wrapped by SQLAlchemy."""
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        return getattr(orig, "sqlstate", None) or getattr(
            getattr(orig, "__cause__", None), "sqlstate", None
        )
    return getattr(exc, "sqlstate", None)


def is_slot_conflict(exc: BaseException) -> bool:
    return sqlstate_of(exc) in SLOT_TAKEN_SQLSTATES


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
    return snapshot(
        booking.status, booking.staff_id, booking.service_id, booking.period.lower,
        booking.period.upper, booking.price_tiyn,
    )  # fmt: skip


def snapshot(
    status: str,
    staff_id: int,
    service_id: int,
    start: datetime | None,
    end: datetime | None,
    price_tiyn: int,
) -> dict[str, Any]:
    """What the audit log digests: the booking's business facts, not the client's details."""
    return {
        "status": status,
        "staff_id": staff_id,
        "service_id": service_id,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "price_tiyn": price_tiyn,
    }


def client_messages(
    event: str,
    *,
    account_id: int | None,
    business_id: int,
    booking_id: int | None,
    start: datetime,
    reminder_offsets_min: list[int],
    client_locale: str,
    payload: dict[str, Any],
    now: datetime,
) -> list[outbox.Outgoing]:
    """What the client is told about a booking event: the message now, and for a booking that
    stands (created, confirmed, moved) its reminders still ahead."""
    if account_id is None:
        return []
    messages = [
        outbox.Outgoing(
            event=event, scheduled_at=now, account_id=account_id, business_id=business_id,
            booking_id=booking_id, locale=client_locale, payload=payload,
        )
    ]  # fmt: skip
    if event in ("booking.created", "booking.confirmed", "booking.rescheduled"):
        for moment in outbox.reminder_times(start, reminder_offsets_min, now):
            messages.append(
                outbox.Outgoing(
                    event="booking.reminder", scheduled_at=moment, account_id=account_id,
                    business_id=business_id, booking_id=booking_id, locale=client_locale,
                    payload=payload,
                )
            )  # fmt: skip
    return messages


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
    assert booking.period.lower is not None
    messages = client_messages(
        event, account_id=booking.account_id, business_id=business.id, booking_id=booking.id,
        start=booking.period.lower, reminder_offsets_min=business.reminder_offsets_min,
        client_locale=client_locale, payload=payload, now=now,
    )  # fmt: skip
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
    await outbox.enqueue(session, messages)


async def existing_by_key(session: AsyncSession, account_id: int, key: str) -> Booking | None:
    return (
        await session.execute(
            select(Booking).where(Booking.account_id == account_id, Booking.idempotency_key == key)
        )
    ).scalar_one_or_none()


class _Rules(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def timezone(self) -> str: ...
    @property
    def default_locale(self) -> str: ...
    @property
    def auto_confirm(self) -> bool: ...
    @property
    def pending_ttl_min(self) -> int: ...
    @property
    def max_active_bookings_per_client(self) -> int: ...
    @property
    def reminder_offsets_min(self) -> list[int]: ...


class _ServiceFacts(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> dict[str, str]: ...
    @property
    def buffer_before_min(self) -> int: ...
    @property
    def buffer_after_min(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Person:
    """The signed-in client a booking is for (None for a walk-in the business books)."""

    id: int
    locale: str
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    staff_id: int
    start: datetime  # UTC
    end: datetime


@dataclass(frozen=True, slots=True)
class BookingPlan:
    """What ``pz_booking_insert`` records, as the slot engine approved it."""

    payload: dict[str, Any]
    status: str
    candidates: dict[int, Candidate]


def check_request(request: BookingRequest) -> None:
    if request.start.tzinfo is None:
        raise ValidationFailed(fields={"start": gettext(N_("Give the time with its UTC offset."))})
    if request.comment is not None and len(request.comment) > 500:
        raise ValidationFailed(fields={"comment": gettext(N_("At most 500 characters."))})


def candidates_for(offers: dict[int, Offer], staff_id: int | None) -> list[int]:
    """The masters a request may go to: the one asked for, or every one who does the service."""
    if staff_id is not None:
        if staff_id not in offers:
            raise NotFound(gettext(N_("This master does not perform this service.")))
        return [staff_id]
    if not offers:
        raise NotFound(gettext(N_("Nobody performs this service at the moment.")))
    return list(offers)


def plan_booking(
    business: _Rules,
    service: _ServiceFacts,
    offers: dict[int, Offer],
    query: SlotQuery,
    candidates: list[int],
    request: BookingRequest,
    *,
    person: Person | None,
    actor: Actor,
    now: datetime,
    event: str = "booking.created",
    account_update: dict[str, Any] | None = None,
) -> BookingPlan:
    """Check the slot with the slot engine and describe the booking for ``pz_booking_insert``:
    the free candidates in order, the client card, the client's messages and the audit entry.
    Pure: the same plan for the API's fast path and for every other caller."""
    free = [s for s in candidates if is_slot_available(query, s, request.start)]
    if not free:
        raise SlotTaken()
    status = "confirmed" if business.auto_confirm else "pending"
    start = request.start.astimezone(UTC)
    code = new_public_code()
    planned: dict[int, Candidate] = {}
    rows = []
    for staff_id in free:
        offer = offers[staff_id]
        end = start + timedelta(minutes=offer.duration_min)
        b_start, b_end = blocked_period(
            start, offer.duration_min, service.buffer_before_min, service.buffer_after_min
        )
        planned[staff_id] = Candidate(staff_id, start, end)
        rows.append({
            "staff_id": staff_id, "start": start.isoformat(), "end": end.isoformat(),
            "blocked_start": b_start.isoformat(), "blocked_end": b_end.isoformat(),
            "duration_min": offer.duration_min, "price_tiyn": offer.price_tiyn,
            "snapshot": snapshot(status, staff_id, service.id, start, end, offer.price_tiyn),
        })  # fmt: skip
    payload = {"code": code}
    messages = client_messages(
        event, account_id=person.id if person else None, business_id=business.id,
        booking_id=None, start=start, reminder_offsets_min=business.reminder_offsets_min,
        client_locale=person.locale if person else business.default_locale,
        payload=payload, now=now,
    )  # fmt: skip
    plan: dict[str, Any] = {
        "business_id": business.id,
        "account_id": person.id if person else None,
        "client": {
            "name": request.client_name or (person.name if person else None),
            "phone": request.client_phone or (person.phone if person else None),
        },
        "max_active": business.max_active_bookings_per_client,
        "service_id": service.id,
        "service_name": dict(service.name),
        "public_code": code,
        "status": status,
        "source": request.source,
        "pending_expires_at": (now + timedelta(minutes=business.pending_ttl_min)).isoformat()
        if status == "pending"
        else None,
        "comment": request.comment,
        "idempotency_key": request.idempotency_key if person else None,
        "now": now.isoformat(),
        "now_key": now.isoformat(timespec="seconds"),
        "event": event,
        "payload": payload,
        "candidates": rows,
        "messages": [
            {
                "event": m.event,
                "account_id": m.account_id,
                "locale": m.locale,
                "at": m.scheduled_at.isoformat(),
                "key": m.key_for("{booking}"),
            }
            for m in messages
        ],
        "actor": {
            "account_id": actor.account_id,
            "kind": actor.kind,
            "request_id": actor.request_id,
            "ip": audit.inet_or_none(actor.ip),
            "user_agent": audit.user_agent_or_none(actor.user_agent),
        },
    }
    if account_update:
        plan["account_update"] = account_update
    return BookingPlan(payload=plan, status=status, candidates=planned)


CAP_SQLSTATE = "PZ001"  # pz_booking_insert: the client is at the business's cap


def refusal_of(exc: BaseException) -> DomainError | None:
    """What ``pz_booking_insert``'s error means for the person booking, if it is about them:
    the slot was taken (23P01, or 40P01 from the race), or they are at the business's cap."""
    if is_slot_conflict(exc):
        return SlotTaken()
    if sqlstate_of(exc) == CAP_SQLSTATE:
        return ValidationFailed(
            gettext(
                N_("You already have the maximum number of upcoming bookings here. "
                   "Cancel one or wait until it has passed.")
            )
        )  # fmt: skip
    return None


_INSERT = text("SELECT CAST(pz_booking_insert(CAST(:p AS jsonb)) AS text)")


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
    check_request(request)
    key = request.idempotency_key if account is not None else None
    if account is not None and key:
        existing = await existing_by_key(session, account.id, key)
        if existing is not None:
            return existing, False

    offers = await service_offers(session, business.id, request.service_id)
    candidates = candidates_for(offers.offers, request.staff_id)
    local_date = request.start.astimezone(ZoneInfo(business.timezone)).date()
    query = await load_query(session, business, offers, candidates, local_date, local_date, now)
    person = Person(account.id, account.locale, account.name, account.phone) if account else None
    plan = plan_booking(
        business, offers.service, offers.offers, query, candidates, request,
        person=person, actor=actor, now=now, event=event,
    )  # fmt: skip
    body = msgspec.json.encode(plan.payload).decode()
    try:
        if key:  # a concurrent retry with the same key may win: recover and answer with it
            async with session.begin_nested():
                row = await session.scalar(_INSERT, {"p": body})
        else:
            row = await session.scalar(_INSERT, {"p": body})
    except DBAPIError as exc:
        if account is not None and key:
            replay = await existing_by_key(session, account.id, key)
            if replay is not None:
                return replay, False
        refusal = refusal_of(exc)
        if refusal is not None:
            raise refusal from exc
        raise
    booking = await session.get(Booking, msgspec.json.decode(row)["id"])
    assert booking is not None
    return booking, True


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
