"""The booking life cycle: create, confirm, cancel, reschedule, complete, no-show.

Every change runs in the caller's transaction and writes, in that same transaction, an audit
entry and the outbox rows the workers deliver. The database's exclusion constraint is the last
word on double booking: a concurrent loser surfaces as ``SlotTaken`` whether PostgreSQL
reported 23P01 (exclusion violation) or 40P01 (deadlock detected).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.policy_versions import policy_today
from app.db.session import Database, set_context
from app.domain import audit, outbox, plans
from app.domain.access import booking_for
from app.domain.accounts import (
    ByAccount,
    ByTelegram,
    Client,
    account_from_telegram,
    act_as_client,
    telegram_changes,
)
from app.domain.audit import Actor
from app.domain.availability import SlotQuery, blocked_period, is_slot_available
from app.domain.availability_reader import (
    Availability,
    AvailabilityReader,
    Key,
    Offer,
    availability_reader,
    build_query,
    sent,
)
from app.domain.consent import REQUIRED_PURPOSES
from app.domain.errors import (
    ConsentRequired,
    DomainError,
    NotFound,
    SlotTaken,
    Unauthorized,
    ValidationFailed,
)
from app.domain.members import Member
from app.domain.messages import clean_body, thread
from app.i18n import N_, gettext, set_locale
from app.models import Account, Booking, Business, Message, Staff
from app.models import Client as ClientCard
from app.models.bookings import LIVE_STATUSES

SLOT_TAKEN_SQLSTATES = ("23P01", "40P01")
# the sources of bookings the business's own staff make (the rest are clients')
STAFF_SOURCES = ("walk_in", "dashboard")
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
    # a confirmed booking the business itself moves stays confirmed at its new time
    keeps_confirmation: bool = False

    def confirmed_at_once(self, business: _Rules) -> bool:
        """A booking the business enters itself (at the desk, by phone) or moves needs no
        confirmation of its own; a client's waits for it unless the business confirms
        automatically (a client moving a confirmed booking asks for the new time anew)."""
        return business.auto_confirm or self.source in STAFF_SOURCES or self.keeps_confirmation


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
    status = "confirmed" if request.confirmed_at_once(business) else "pending"
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
        "event": event,
        "payload": payload,
        "candidates": rows,
        "messages": [
            {
                "event": m.event,
                "account_id": m.account_id,
                "locale": m.locale,
                "at": m.scheduled_at.isoformat(),
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


# --- creating a booking: one implementation for every caller ----------------------------------


@dataclass(frozen=True, slots=True)
class BookingMade:
    """A booking as the one who made it sees it: times in its business's zone."""

    id: int
    status: str
    start: datetime
    end: datetime
    staff_id: int
    service_id: int
    created: bool  # False: an Idempotency-Key replayed an earlier request


class _ContextAccount(msgspec.Struct, frozen=True):
    id: int
    name: str | None
    phone: str | None
    locale: str
    locale_chosen: bool
    allows_write_to_pm: bool


class _BookingContext(msgspec.Struct, frozen=True):
    account: _ContextAccount | None
    consent_ok: bool = False
    replay_id: int | None = None
    day: date | None = None
    availability: Availability | None = None


_decode_booking_context = msgspec.json.Decoder(_BookingContext).decode
_BOOKING_CONTEXT = "SELECT pz_booking_context($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)::text"
_BOOKING_INSERT = "SELECT pz_booking_insert($1::jsonb)::text"
_REPLAY = text(
    "SELECT b.id, b.status, lower(b.period) AS start, upper(b.period) AS end, b.staff_id, "
    "b.service_id, z.timezone FROM bookings b JOIN businesses z ON z.id = b.business_id "
    "WHERE b.account_id = :account AND (b.id = :id OR b.idempotency_key = :key)"
)


class _Statements(Protocol):
    """Where the booking's statements run: the hot-path pool (each statement its own
    transaction) or the connection of a transaction already open."""

    async def fetchval(self, sql: str, *args: Any) -> Any: ...
    async def earlier(self, account_id: int, booking_id: int | None, key: str | None) -> Any: ...
    async def account_of(self, init: Any) -> None: ...


def _held_day_key(
    reader: AvailabilityReader, slug: str, service_id: int, staff_id: int | None, start: datetime
) -> Key | None:
    """The reader's key for the local day of ``start``, when the reader knows the business's
    time zone as of the version it holds for that day (so the day is right if it still holds)."""
    hint = reader.zone_hint(slug)
    if hint is None:
        return None
    version, zone = hint
    day = start.astimezone(ZoneInfo(zone)).date()
    key = (slug, service_id, staff_id, day, day)
    return key if reader.held(key)[0] == version else None


async def _earlier(
    session: AsyncSession, account_id: int, booking_id: int | None, key: str | None
) -> Any:
    """The booking an earlier request of this account made (by its id or its key), or None."""
    return (
        await session.execute(_REPLAY, {"account": account_id, "id": booking_id, "key": key})
    ).first()


async def _replay(
    run: _Statements, account_id: int, *, booking_id: int | None = None, key: str | None = None
) -> BookingMade | None:
    row = await run.earlier(account_id, booking_id, key)
    if row is None:
        return None
    zone = ZoneInfo(row.timezone)
    return BookingMade(
        id=row.id, status=row.status, start=row.start.astimezone(zone),
        end=row.end.astimezone(zone), staff_id=row.staff_id, service_id=row.service_id,
        created=False,
    )  # fmt: skip


async def _book(
    run: _Statements,
    reader: AvailabilityReader,
    slug: str,
    wanted: BookingRequest,
    *,
    client: Client | None,
    actor: Actor,
    now: datetime,
    event: str,
    consent_needed: bool,
) -> BookingMade:
    """The booking, in two statements: ``pz_booking_context`` (who, consent, replay, the day's
    schedule: only its fresh part when ``reader`` holds the rest), the slot engine's check
    here, then ``pz_booking_insert`` (client card, cap, booking, next free master, outbox,
    audit entry)."""
    check_request(wanted)
    key = _held_day_key(reader, slug, wanted.service_id, wanted.staff_id, wanted.start)
    copy = reader.entry(key) if key else None  # kept: it may be evicted while we ask
    version, staff = sent(copy)
    telegram = client.init if isinstance(client, ByTelegram) else None
    args = (
        slug, telegram.user.id if telegram else None,
        client.account_id if isinstance(client, ByAccount) else None,
        wanted.service_id, wanted.staff_id, wanted.start, wanted.idempotency_key, policy_today(now),
        sorted(REQUIRED_PURPOSES), version, staff,
    )  # fmt: skip
    known = _decode_booking_context(await run.fetchval(_BOOKING_CONTEXT, *args))
    if known.account is None and telegram is not None:
        await run.account_of(telegram)  # first sight of this Telegram user: create the account
        known = _decode_booking_context(await run.fetchval(_BOOKING_CONTEXT, *args))
    if known.account is None and client is not None:
        raise Unauthorized()
    account = known.account
    update: dict[str, Any] = {}
    locale = account.locale if account else ""
    if telegram is not None and account is not None:
        update = telegram_changes(
            telegram, allows_write_to_pm=account.allows_write_to_pm, locale=account.locale,
            locale_chosen=account.locale_chosen,
        )  # fmt: skip
        locale = update.get("locale", account.locale)
        if account.locale_chosen or telegram.user.language_code:
            set_locale(locale)  # the saved choice, else Telegram's language, beats headers
    if account is not None and wanted.client_name and not account.name:
        update["name"] = wanted.client_name  # the name the client gave, kept when they had none
    if account is not None and known.replay_id is not None:
        replayed = await _replay(run, account.id, booking_id=known.replay_id)
        if replayed is None:
            raise NotFound()
        return replayed
    if known.availability is None or known.day is None:
        raise NotFound()
    if account is not None and consent_needed and not known.consent_ok:
        raise ConsentRequired()
    day_key = (slug, wanted.service_id, wanted.staff_id, known.day, known.day)
    if known.availability.context is None and key != day_key:
        # the copy held still holds, but the database dates the start on another day than
        # this worker's zone data does: read the day the database means
        found = await reader.read(run, *day_key)
        if found is None:
            raise NotFound()
        context = found
    else:
        context = reader.absorb(day_key, known.availability, copy)
    if context.service is None or context.schedule is None:
        raise NotFound()
    offers = context.offer_map()
    candidates = candidates_for(offers, wanted.staff_id)
    query = build_query(
        context.business, context.service, offers, context.schedule, candidates, known.day,
        known.day, now,
    )  # fmt: skip
    plan = plan_booking(
        context.business, context.service, offers, query, candidates, wanted,
        person=Person(account.id, locale, account.name, account.phone) if account else None,
        actor=replace(actor, account_id=account.id) if account and actor.kind == "client" else actor,
        now=now, event=event,
        account_update=update or None,
    )  # fmt: skip
    try:
        row = await run.fetchval(_BOOKING_INSERT, msgspec.json.encode(plan.payload).decode())
    except Exception as exc:
        if account is not None and wanted.idempotency_key and sqlstate_of(exc) is not None:
            # a concurrent retry with the same key may have won: answer with its booking
            replayed = await _replay(run, account.id, key=wanted.idempotency_key)
            if replayed is not None:
                return replayed
        refusal = refusal_of(exc)
        if refusal is not None:
            raise refusal from exc
        raise
    made = msgspec.json.decode(row)
    held = plan.candidates[made["staff_id"]]
    zone = ZoneInfo(context.business.timezone)
    return BookingMade(
        id=made["id"], status=plan.status, start=held.start.astimezone(zone),
        end=held.end.astimezone(zone), staff_id=held.staff_id, service_id=wanted.service_id,
        created=True,
    )  # fmt: skip


class _Pool:
    """Statements on the hot-path pool; a new Telegram user's account in its own transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.db.fetchval(sql, *args)

    async def earlier(self, account_id: int, booking_id: int | None, key: str | None) -> Any:
        async with self.db.transaction(account_id=account_id) as session:
            return await _earlier(session, account_id, booking_id, key)

    async def account_of(self, init: Any) -> None:
        async with self.db.transaction() as session:
            await account_from_telegram(session, init)


class _InTransaction:
    """Statements on the connection of an open transaction (a move, the demo)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _driver(self) -> Any:
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        return raw.driver_connection

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await (await self._driver()).fetchval(sql, *args)

    async def earlier(self, account_id: int, booking_id: int | None, key: str | None) -> Any:
        return await _earlier(self.session, account_id, booking_id, key)

    async def account_of(self, init: Any) -> None:
        await account_from_telegram(self.session, init)


async def create_booking(
    db: Database,
    slug: str,
    wanted: BookingRequest,
    *,
    client: Client,
    actor: Actor,
    now: datetime | None = None,
) -> BookingMade:
    """Book a time: the one way the API, the Mini App and the dashboard create a booking.

    Two statements on the hot-path pool, each its own transaction; the database's exclusion
    constraint decides a race (``SlotTaken``). A retried ``Idempotency-Key`` answers with the
    booking the first request made (``created`` False)."""
    return await _book(
        _Pool(db), availability_reader(db), slug, wanted, client=client, actor=actor,
        now=now or datetime.now(UTC), event="booking.created", consent_needed=True,
    )  # fmt: skip


async def create_booking_in(
    session: AsyncSession,
    business: Business,
    request: BookingRequest,
    *,
    account: Account | None,
    actor: Actor,
    now: datetime | None = None,
    event: str = "booking.created",
) -> tuple[Booking, bool]:
    """The same booking inside a transaction already open (a move holds the new time before it
    releases the old one; the demo and fixtures load data): same statements, same rules, but
    consent is the caller's to check. ``account`` None: a walk-in the business books. Returns
    (booking, created)."""
    made = await _book(
        _InTransaction(session), AvailabilityReader(), business.slug, request,
        client=ByAccount(account.id) if account is not None else None, actor=actor, now=now or datetime.now(UTC), event=event,
        consent_needed=False,
    )  # fmt: skip
    booking = await session.get(Booking, made.id, populate_existing=True)
    assert booking is not None
    return booking, made.created


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

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(ZoneInfo(self.timezone))

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(ZoneInfo(self.timezone))


async def bookings_of_account(
    session: AsyncSession, account_id: int, limit: int = 200
) -> list[AccountBooking]:
    """Newest first; needs ``app.account_id`` set (the client_own policy crosses businesses)."""
    rows = await session.execute(_ACCOUNT_BOOKINGS, {"a": account_id, "limit": limit})
    return [AccountBooking(**row._mapping) for row in rows]


def cancel_deadline(booking: Booking, business: Business) -> datetime:
    """Until when the client may cancel online (the business's cancel deadline)."""
    assert booking.period.lower is not None
    return booking.period.lower - timedelta(minutes=business.cancel_deadline_min)


def reschedule_deadline(booking: Booking, business: Business) -> datetime:
    """Until when the client may move the booking online (the business's own reschedule
    deadline, set apart from the cancel deadline)."""
    assert booking.period.lower is not None
    return booking.period.lower - timedelta(minutes=business.reschedule_deadline_min)


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


# the business's transaction cannot read its client's account (row-level security): the one
# thing it needs of it, the language, comes through this SECURITY DEFINER function
_CLIENT_LOCALE = text("SELECT pz_client_locale(:booking_id)")


async def _client_locale(session: AsyncSession, booking: Booking, business: Business) -> str:
    if booking.account_id is None:
        return business.default_locale
    locale = await session.scalar(_CLIENT_LOCALE, {"booking_id": booking.id})
    return locale or business.default_locale


async def cancel_booking_in(
    session: AsyncSession,
    business: Business,
    booking: Booking,
    *,
    by: str,
    actor: Actor,
    reason: str | None = None,
    now: datetime | None = None,
    event: str = "booking.cancelled",
) -> Booking:
    """Cancel: a client until the business's deadline, the business at any time (with reason),
    the system when a booking waited past its time to confirm (``event`` booking.expired)."""
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
        event=event, extra={"by": by}, locale=locale,
    )  # fmt: skip


async def confirm_booking_in(
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


async def mark_attendance_in(
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


async def reschedule_booking_in(
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
    if by == "client" and now > reschedule_deadline(booking, business):
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
            keeps_confirmation=by == "business" and before["status"] == "confirmed",
        )
        new_booking, _created = await create_booking_in(
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


# --- entry points: each owns its transaction ---------------------------------------------------
#
# Routes (API, Mini App, dashboard) and workers change a booking only through these. ``by`` is
# who asks: the client whose booking it is (``ByAccount``), or a member of its business
# (``Member``, from the dashboard's guard). The transaction acts for that person and tenant.


def client_may_cancel(booking: Booking, business: Business, now: datetime) -> bool:
    """A client may cancel a live booking online until the business's cancel deadline."""
    return booking.status in LIVE_STATUSES and now <= cancel_deadline(booking, business)


def client_may_move(booking: Booking, business: Business, now: datetime) -> bool:
    """A client may move a live booking online until the business's reschedule deadline."""
    return booking.status in LIVE_STATUSES and now <= reschedule_deadline(booking, business)


def client_may_change(booking: Booking, business: Business, now: datetime) -> bool:
    """A client may still cancel or move a live booking online (either deadline not passed)."""
    return client_may_cancel(booking, business, now) or client_may_move(booking, business, now)


def _made(booking: Booking, business: Business, *, created: bool = True) -> BookingMade:
    zone = ZoneInfo(business.timezone)
    assert booking.period.lower is not None and booking.period.upper is not None
    return BookingMade(
        id=booking.id, status=booking.status, start=booking.period.lower.astimezone(zone),
        end=booking.period.upper.astimezone(zone), staff_id=booking.staff_id,
        service_id=booking.service_id, created=created,
    )  # fmt: skip


def _who(by: Client | Member) -> str:
    return "business" if isinstance(by, Member) else "client"


def _within_reach(by: Client | Member, booking: Booking) -> None:
    """A master acts only on the bookings in their own column (owners and admins on all of
    their business's); anyone else's is ``NotFound``, as for another business."""
    if isinstance(by, Member) and not by.at_least("admin") and booking.staff_id != by.staff_id:
        raise NotFound()


def _acting(actor: Actor, by: Client | Member, booking: Booking) -> Actor:
    """The audit's actor: a client known only by their Telegram signature is the booking's."""
    if actor.account_id is None and not isinstance(by, Member):
        return replace(actor, account_id=booking.account_id)
    return actor


async def get_booking_for(db: Database, booking_id: int, *, by: Client | Member) -> BookingMade:
    """One booking as its client or its business sees it."""
    async with booking_for(db, booking_id, by) as (_session, booking, business):
        return _made(booking, business)


async def cancel_booking(
    db: Database,
    booking_id: int,
    *,
    by: Client | Member,
    actor: Actor,
    reason: str | None = None,
    now: datetime | None = None,
) -> BookingMade:
    """Cancel: the client until the business's deadline, the business at any time (a master
    only their own bookings)."""
    async with booking_for(db, booking_id, by) as (session, booking, business):
        _within_reach(by, booking)
        await session.refresh(booking, with_for_update=True)
        await cancel_booking_in(
            session, business, booking, by=_who(by), actor=_acting(actor, by, booking),
            reason=reason, now=now,
        )  # fmt: skip
        return _made(booking, business)


async def reschedule_booking(
    db: Database,
    booking_id: int,
    *,
    by: Client | Member,
    new_start: datetime,
    new_staff_id: int | None,
    actor: Actor,
    now: datetime | None = None,
) -> BookingMade:
    """Move to a free time: the new one is held before the old one is released."""
    async with booking_for(db, booking_id, by) as (session, booking, business):
        # the new booking needs only the client's account id; a member of the business may not
        # read the account itself (row-level security), so it is not loaded
        _within_reach(by, booking)
        if (
            isinstance(by, Member)
            and not by.at_least("admin")
            and new_staff_id
            not in (
                None,
                booking.staff_id,
            )
        ):  # a master moves their own booking within their own column
            raise ValidationFailed(fields={"staff_id": gettext(N_("Choose a master."))})
        account = Account(id=booking.account_id) if booking.account_id else None
        moved = await reschedule_booking_in(
            session, business, booking, new_start=new_start, new_staff_id=new_staff_id,
            by=_who(by), actor=_acting(actor, by, booking), account=account, now=now,
        )  # fmt: skip
        return _made(moved, business)


async def confirm_booking(
    db: Database, booking_id: int, *, by: Member, actor: Actor, now: datetime | None = None
) -> BookingMade:
    """The business confirms a booking that waits for it; the client is told. A master
    confirms only their own bookings."""
    async with booking_for(db, booking_id, by) as (session, booking, business):
        _within_reach(by, booking)
        # the expiry job may be cancelling it right now: take the row, then look at it
        await session.refresh(booking, with_for_update=True)
        await confirm_booking_in(session, business, booking, actor=actor, now=now)
        return _made(booking, business)


async def mark_attendance(
    db: Database,
    booking_id: int,
    *,
    by: Member,
    attended: bool,
    actor: Actor,
    now: datetime | None = None,
) -> BookingMade:
    """After the visit: completed (``attended``) or a no-show."""
    async with booking_for(db, booking_id, by) as (session, booking, business):
        _within_reach(by, booking)
        await mark_attendance_in(
            session, business, booking, attended=attended, actor=actor, now=now
        )
        return _made(booking, business)


async def client_bookings(db: Database, by: Client) -> list[AccountBooking]:
    """A person's bookings in every business, newest first."""
    async with db.transaction() as session:
        return await bookings_of_account(session, await act_as_client(session, by))


@dataclass(frozen=True, slots=True)
class ClientBooking:
    """A client's own booking page: the booking, where and with whom, what they may still do."""

    booking: Booking
    business: Business
    master_name: str
    start: datetime  # in the business's zone
    deadline: datetime  # to cancel online, in the business's zone
    is_upcoming: bool
    can_change: bool  # may still cancel or move online
    messages: list[Message]
    move_deadline: datetime | None = None  # to move online, in the business's zone
    can_cancel: bool = False
    can_move: bool = False


async def client_booking(
    db: Database, booking_id: int, *, by: ByAccount, now: datetime | None = None
) -> ClientBooking:
    now = now or datetime.now(UTC)
    async with booking_for(db, booking_id, by) as (session, booking, business):
        master = await session.get(Staff, booking.staff_id)
        correspondence = await thread(session, booking)
    assert master is not None and booking.period.lower is not None
    zone = ZoneInfo(business.timezone)
    return ClientBooking(
        booking=booking, business=business, master_name=master.name,
        start=booking.period.lower.astimezone(zone),
        deadline=cancel_deadline(booking, business).astimezone(zone),
        is_upcoming=booking.status in LIVE_STATUSES and booking.period.lower > now,
        can_change=client_may_change(booking, business, now), messages=correspondence,
        move_deadline=reschedule_deadline(booking, business).astimezone(zone),
        can_cancel=client_may_cancel(booking, business, now),
        can_move=client_may_move(booking, business, now),
    )  # fmt: skip


# --- waiting for the business: the pending list and its expiry ---------------------------------

_PENDING = text(
    "SELECT b.id, lower(b.period) AS start, upper(b.period) AS end, b.pending_expires_at, "
    "b.service_name, b.price_tiyn, b.comment, b.staff_id, st.name AS staff_name, "
    "c.name AS client_name, c.phone AS client_phone FROM bookings b "
    "JOIN staff st ON st.id = b.staff_id LEFT JOIN clients c ON c.id = b.client_id "
    "WHERE b.business_id = :b AND b.status = 'pending' "
    "AND (CAST(:staff AS bigint) IS NULL OR b.staff_id = CAST(:staff AS bigint)) "
    "ORDER BY b.pending_expires_at, b.id LIMIT :limit"
)


@dataclass(frozen=True, slots=True)
class PendingBooking:
    """A booking that waits for the business's answer, as the dashboard lists it (times in
    the business's zone)."""

    id: int
    start: datetime
    end: datetime
    expires_at: datetime | None
    service_name: dict[str, str]
    price_tiyn: int
    comment: str | None
    staff_id: int
    staff_name: str
    client_name: str | None
    client_phone: str | None


async def pending_bookings(db: Database, by: Member, *, limit: int = 200) -> list[PendingBooking]:
    """The bookings waiting for confirmation, the soonest to expire first; a master sees only
    their own."""
    own = None if by.at_least("admin") else (by.staff_id or 0)
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        business = await session.get(Business, by.business_id)
        assert business is not None  # the member's business
        rows = await session.execute(_PENDING, {"b": by.business_id, "staff": own, "limit": limit})
        zone = ZoneInfo(business.timezone)
        return [_pending(r, zone) for r in rows]


def _pending(r: Any, zone: ZoneInfo) -> PendingBooking:
    return PendingBooking(
        id=r.id, start=r.start.astimezone(zone), end=r.end.astimezone(zone),
        expires_at=r.pending_expires_at.astimezone(zone) if r.pending_expires_at else None,
        service_name=r.service_name, price_tiyn=r.price_tiyn, comment=r.comment,
        staff_id=r.staff_id, staff_name=r.staff_name, client_name=r.client_name,
        client_phone=r.client_phone,
    )  # fmt: skip


EXPIRED_REASON = "expired"
# overdue pending bookings, each taken for this transaction; a second job running at the same
# moment skips the rows this one holds instead of waiting for them (and then finding them gone)
_OVERDUE = text(
    "SELECT id, business_id FROM bookings "
    "WHERE status = 'pending' AND pending_expires_at <= :now "
    "ORDER BY pending_expires_at, id LIMIT :limit FOR UPDATE SKIP LOCKED"
)


async def expire_pending(session: AsyncSession, *, now: datetime, limit: int = 100) -> list[int]:
    """Cancel, in the caller's transaction, the bookings the business left unconfirmed past
    their time to live (``cancelled_by`` system, reason ``expired``), through the one cancel
    path: reminders withdrawn, the client told (``booking.expired``), the business's people
    told (``staff.booking.expired``), an audit entry. Returns the ids cancelled.

    Runs as the worker role across businesses: each booking's business becomes the
    transaction's tenant before it is touched. Idempotent: a booking cancelled, confirmed or
    not yet due is not selected, and a row another job holds is skipped."""
    overdue = (await session.execute(_OVERDUE, {"now": now, "limit": limit})).all()
    done: list[int] = []
    for row in overdue:
        await set_context(session, business_id=row.business_id)
        booking = await session.get(Booking, row.id, populate_existing=True)
        business = await session.get(Business, row.business_id)
        assert booking is not None and business is not None  # locked above
        await cancel_booking_in(
            session, business, booking, by="system", actor=audit.SYSTEM,
            reason=EXPIRED_REASON, now=now, event="booking.expired",
        )  # fmt: skip
        done.append(booking.id)
    return done


# --- the dashboard's booking panel ---------------------------------------------------------------

_HISTORY = text(
    "SELECT a.at, a.action, a.actor_kind, (SELECT st.name FROM staff st "
    "WHERE st.business_id = a.business_id AND st.account_id = a.actor_account_id "
    "AND a.actor_kind = 'staff' ORDER BY st.id LIMIT 1) AS actor_name FROM audit_log a "
    "WHERE a.business_id = :b AND a.entity = 'booking' AND a.entity_id IN (:id, :moved_from) "
    "ORDER BY a.at, a.id LIMIT 200"
)
_CLIENT_OF = text("SELECT name, phone FROM clients WHERE business_id = :b AND id = :id")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime  # in the business's zone
    action: str  # the audit action, e.g. booking.confirmed
    actor_kind: str  # client, staff, operator, system
    actor_name: str | None  # the member's master name when known


@dataclass(frozen=True, slots=True)
class BookingPanel:
    """One booking as its business sees it (policy 5.1: of the client only name and phone)."""

    booking: Booking
    start: datetime  # in the business's zone
    end: datetime
    master_name: str
    client_name: str | None
    client_phone: str | None
    history: list[HistoryEntry]
    messages: list[Message]
    can_mark_attendance: bool
    timezone: str  # the business's, for the reschedule form
    masters: list[tuple[int, str]]  # who it may move to (a master: only themself)


async def booking_panel(
    db: Database, booking_id: int, *, by: Member, now: datetime | None = None
) -> BookingPanel:
    """The dashboard's panel of one booking: details, history (its audit entries) and the
    correspondence with the client. Another business's booking, or (for a master) another
    master's, is ``NotFound``."""
    now = now or datetime.now(UTC)
    async with booking_for(db, booking_id, by) as (session, booking, business):
        _within_reach(by, booking)
        master = await session.get(Staff, booking.staff_id)
        client = (
            await session.execute(_CLIENT_OF, {"b": business.id, "id": booking.client_id})
        ).first()
        # a moved booking is a new row: its history begins with the one it was moved from
        moved_from = booking.rescheduled_from_id or booking.id
        rows = await session.execute(
            _HISTORY, {"b": business.id, "id": booking.id, "moved_from": moved_from}
        )
        zone = ZoneInfo(business.timezone)
        history = [
            HistoryEntry(at=r.at.astimezone(zone), action=r.action, actor_kind=r.actor_kind,
                         actor_name=r.actor_name)
            for r in rows
        ]  # fmt: skip
        correspondence = await thread(session, booking)
        staff = await session.execute(
            select(Staff.id, Staff.name)
            .where(Staff.business_id == business.id, Staff.archived_at.is_(None))
            .order_by(Staff.sort_order, Staff.id)
        )
        masters = [(sid, name) for sid, name in staff if by.at_least("admin") or sid == by.staff_id]
    assert booking.period.lower is not None and booking.period.upper is not None
    return BookingPanel(
        booking=booking, start=booking.period.lower.astimezone(zone),
        end=booking.period.upper.astimezone(zone), master_name=master.name if master else "",
        client_name=client.name if client else None,
        client_phone=client.phone if client else None, history=history,
        messages=correspondence,
        can_mark_attendance=booking.status in LIVE_STATUSES and booking.period.lower <= now,
        timezone=business.timezone, masters=masters,
    )  # fmt: skip


async def reply_to_client(
    db: Database, booking_id: int, *, by: Member, body: str, now: datetime | None = None
) -> None:
    """The business writes to the client about their booking: the message joins the thread
    and goes to the client's channel through the outbox (event ``message.business``)."""
    now = now or datetime.now(UTC)
    async with booking_for(db, booking_id, by) as (session, booking, business):
        _within_reach(by, booking)
        message = Message(
            business_id=booking.business_id, client_id=booking.client_id,
            booking_id=booking.id, sender="business", author_account_id=by.account_id,
            body=clean_body(body), created_at=now,
        )  # fmt: skip
        session.add(message)
        await session.flush()
        if booking.account_id is not None:  # a walk-in has no channel of ours
            locale = await _client_locale(session, booking, business)
            await outbox.enqueue(session, [outbox.Outgoing(
                event="message.business", scheduled_at=now, account_id=booking.account_id,
                business_id=business.id, booking_id=booking.id, locale=locale,
                payload={"message_id": message.id, "code": booking.public_code},
            )])  # fmt: skip


NOTE_MAX = 1000
NOTES_MAX = 4000


async def add_staff_note(
    db: Database,
    booking_id: int,
    *,
    by: Member,
    note: str,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """A private note of the business about this booking. A booking has no column for one
    (its ``comment`` is the client's), so the note is appended to the client card's ``notes``
    with the booking's date; audited as a change of the client card."""
    now = now or datetime.now(UTC)
    text_ = " ".join((note or "").split())
    if not text_:
        raise ValidationFailed(fields={"note": gettext(N_("Write a note first."))})
    if len(text_) > NOTE_MAX:
        raise ValidationFailed(fields={"note": gettext(N_("At most 1000 characters."))})
    async with booking_for(db, booking_id, by) as (session, booking, business):
        _within_reach(by, booking)
        await plans.require_client_notes(session, business.id)
        client = await session.get(ClientCard, booking.client_id, with_for_update=True)
        if client is None or client.business_id != business.id:
            raise NotFound()
        assert booking.period.lower is not None
        day = booking.period.lower.astimezone(ZoneInfo(business.timezone)).date().isoformat()
        line = f"{day} #{booking.public_code}: {text_}"
        before = client.notes
        notes = f"{before}\n{line}" if before else line
        if len(notes) > NOTES_MAX:
            raise ValidationFailed(fields={"note": gettext(
                N_("The client's notes are full; shorten them on the client card first.")
            )})  # fmt: skip
        client.notes = notes
        await session.flush()
        await audit.record(
            session, actor=actor, action="client.note", entity="client", entity_id=client.id,
            business_id=business.id, before={"notes": before}, after={"notes": notes},
        )  # fmt: skip
