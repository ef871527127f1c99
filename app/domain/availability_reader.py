"""Load what the slot engine needs from the database, for one business and a date range."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.availability import Slot, SlotQuery, StaffSchedule, find_slots
from app.domain.business_days import booking_days
from app.domain.errors import NotFound
from app.i18n import N_, gettext
from app.models import Business, Service, Staff, StaffService


@dataclass(frozen=True, slots=True)
class Offer:
    """A service as one master performs it (own duration and price where set)."""

    staff_id: int
    duration_min: int
    price_tiyn: int


@dataclass(frozen=True, slots=True)
class ServiceOffers:
    service: Service
    offers: dict[int, Offer]  # staff_id -> offer, only active masters


async def business_by_slug(session: AsyncSession, slug: str) -> Business:
    business = (
        await session.execute(
            select(Business).where(Business.slug == slug, Business.archived_at.is_(None))
        )
    ).scalar_one_or_none()
    if business is None:
        raise NotFound()
    return business


async def service_offers(session: AsyncSession, business_id: int, service_id: int) -> ServiceOffers:
    rows = (
        await session.execute(
            select(
                Service, StaffService.staff_id, StaffService.duration_min, StaffService.price_tiyn
            )
            .outerjoin(
                StaffService,
                (StaffService.service_id == Service.id)
                & (StaffService.business_id == Service.business_id),
            )
            .outerjoin(
                Staff,
                (Staff.id == StaffService.staff_id) & (Staff.business_id == Service.business_id),
            )
            .where(
                Service.id == service_id,
                Service.business_id == business_id,
                Service.archived_at.is_(None),
                Staff.archived_at.is_(None),
            )
            .order_by(Staff.sort_order, Staff.id)
        )
    ).all()
    if not rows:
        raise NotFound()
    service = rows[0][0]
    offers = {
        staff_id: Offer(staff_id, duration or service.duration_min, price or service.price_tiyn)
        for _service, staff_id, duration, price in rows
        if staff_id is not None
    }
    return ServiceOffers(service=service, offers=offers)


class BusinessRules(msgspec.Struct, frozen=True):
    """A business's booking rules, as ``pz_business_json`` gives them."""

    id: int
    timezone: str
    currency: str
    default_locale: str
    auto_confirm: bool
    pending_ttl_min: int
    max_active_bookings_per_client: int
    slot_step_min: int
    min_notice_min: int
    horizon_days: int
    observe_public_holidays: bool
    reminder_offsets_min: list[int]


class ServiceInfo(msgspec.Struct, frozen=True):
    id: int
    name: dict[str, str]
    duration_min: int
    price_tiyn: int
    buffer_before_min: int
    buffer_after_min: int


class Schedule(msgspec.Struct, array_like=True, frozen=True):
    """``pz_schedule``'s document; times of day in seconds since midnight, instants in epoch
    seconds."""

    hours: list[tuple[int, int, int, int]]  # staff, weekday, start, end
    overrides: list[tuple[int | None, date, str, int | None, int | None]]
    blocked: list[tuple[int, int, int]]  # staff, from, to
    closed: list[date]


class SlotContext(msgspec.Struct, frozen=True):
    """``pz_slot_context``'s document: everything availability needs, from one statement."""

    business: BusinessRules
    service: ServiceInfo | None
    offers: list[tuple[int, int, int]]  # staff, duration, price; live masters in display order
    schedule: Schedule | None

    def offer_map(self) -> dict[int, Offer]:
        return {staff: Offer(staff, duration, price) for staff, duration, price in self.offers}


_decode_schedule = msgspec.json.Decoder(Schedule).decode


class _Rules(Protocol):
    @property
    def timezone(self) -> str: ...
    @property
    def slot_step_min(self) -> int: ...
    @property
    def min_notice_min(self) -> int: ...
    @property
    def horizon_days(self) -> int: ...
    @property
    def observe_public_holidays(self) -> bool: ...


class _Timing(Protocol):
    @property
    def duration_min(self) -> int: ...
    @property
    def buffer_before_min(self) -> int: ...
    @property
    def buffer_after_min(self) -> int: ...


@lru_cache(maxsize=2048)
def _clock(seconds: int) -> time:
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60)


def public_holidays(year: int) -> frozenset[date]:
    """The days of one year a business observing Kazakhstan's public holidays is closed:
    holidays, their observed days and days off moved by decree (cached per year)."""
    return booking_days(year).closed


def build_query(
    business: _Rules,
    service: _Timing,
    offers: dict[int, Offer],
    schedule: Schedule,
    staff_ids: list[int],
    date_from: date,
    date_to: date,
    now: datetime,
) -> SlotQuery:
    """The slot engine's input for ``staff_ids`` over local dates [date_from, date_to]."""
    weekly: dict[int, dict[int, list[tuple[time, time]]]] = {s: {} for s in staff_ids}
    for staff_id, weekday, start, end in schedule.hours:
        if staff_id in weekly:  # the document may hold more masters than asked about
            weekly[staff_id].setdefault(weekday, []).append((_clock(start), _clock(end)))

    business_overrides: dict[date, list[tuple[time, time]]] = {}
    staff_overrides: dict[int, dict[date, list[tuple[time, time]]]] = {s: {} for s in staff_ids}
    for owner, on_date, kind, start_s, end_s in schedule.overrides:
        if owner is not None and owner not in staff_overrides:
            continue
        target = business_overrides if owner is None else staff_overrides[owner]
        intervals = target.setdefault(on_date, [])
        if kind == "hours" and start_s is not None and end_s is not None:
            intervals.append((_clock(start_s), _clock(end_s)))

    blocked: dict[int, list[tuple[int, int]]] = {s: [] for s in staff_ids}
    for staff_id, start_epoch, end_epoch in schedule.blocked:
        if staff_id in blocked:
            blocked[staff_id].append((start_epoch, end_epoch))

    closed = set(schedule.closed)
    works_as: dict[date, int] = {}
    if business.observe_public_holidays:
        for year in range(date_from.year, date_to.year + 1):
            national = booking_days(year)
            closed |= {d for d in national.closed if date_from <= d <= date_to}
            for day, weekday in national.works_as.items():
                if date_from <= day <= date_to:
                    works_as[day] = weekday

    schedules = []
    for staff_id in staff_ids:
        overrides = {**business_overrides, **staff_overrides[staff_id]}
        schedules.append(
            StaffSchedule(
                staff_id=staff_id,
                weekly_hours=weekly[staff_id],
                overrides=overrides,
                time_off=[],
                busy=[],
                duration_min=offers[staff_id].duration_min,
                busy_epoch=tuple(blocked[staff_id]),
            )
        )
    return SlotQuery(
        tz=business.timezone,
        date_from=date_from,
        date_to=date_to,
        now=now,
        duration_min=service.duration_min,
        buffer_before_min=service.buffer_before_min,
        buffer_after_min=service.buffer_after_min,
        step_min=business.slot_step_min,
        min_notice_min=business.min_notice_min,
        horizon_days=business.horizon_days,
        holidays=frozenset(closed),
        staff=tuple(schedules),
        works_as=works_as,
    )


_SCHEDULE = text("SELECT CAST(pz_schedule(:b, :staff, :d1, :d2, :tz) AS text)")


async def load_query(
    session: AsyncSession,
    business: Business,
    offers: ServiceOffers,
    staff_ids: list[int],
    date_from: date,
    date_to: date,
    now: datetime,
) -> SlotQuery:
    """Build the slot engine's input for ``staff_ids`` over local dates [date_from, date_to]."""
    raw = await session.scalar(
        _SCHEDULE,
        {"b": business.id, "staff": staff_ids, "d1": date_from, "d2": date_to,
         "tz": business.timezone},
    )  # fmt: skip
    schedule = _decode_schedule(raw)
    return build_query(
        business, offers.service, offers.offers, schedule, staff_ids, date_from, date_to, now
    )


class Availability(msgspec.Struct, frozen=True):
    """``pz_availability``'s answer: the whole document, or only what blocks time when the
    caller's copy of the rest is still current."""

    version: int
    blocked: list[tuple[int, int, int]] | None = None
    context: SlotContext | None = None


_decode_availability = msgspec.json.Decoder(Availability).decode
# a copy the reader holds: the schedule version it is of, the document, the masters asked for
Entry = tuple[int, SlotContext, list[int]]


def sent(held: Entry | None) -> tuple[int, list[int] | None]:
    """What a question sends of the copy it holds: its version and masters; (-1, None) for
    none, which the database answers with the whole document."""
    return (held[0], held[2]) if held else (-1, None)


_AVAILABILITY = "SELECT pz_availability($1, $2, $3, $4, $5, $6, $7)::text"
Key = tuple[str, int, int | None, date, date]


class AvailabilityReader:
    """Availability documents in one statement, keeping the slow-changing part per worker.

    Business rules, offers, weekly hours, overrides and closed days change rarely; bookings and
    time off change all the time. Each read sends the version of the copy it holds: the
    database answers with only the fresh blocked ranges while the business's
    ``schedule_version`` is unchanged, and with the whole document otherwise. So a change is
    seen by the very next request, in every worker, and nothing is ever served from memory
    without asking the database whether it still holds.

    ``read`` does the round trip itself; a statement that embeds ``pz_availability`` (the
    booking's ``pz_booking_context``) sends the version of ``entry(key)`` and hands the answer
    to ``absorb`` with that same entry: other requests of the worker run while the statement
    is out, and may evict the copy or replace it with a newer one meanwhile.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._zones: dict[str, tuple[int, str]] = {}  # slug: (version, time zone) last seen

    def entry(self, key: Key) -> Entry | None:
        """The copy held for ``key`` (version, context, masters), or None."""
        return self._entries.get(key)

    def held(self, key: Key) -> tuple[int, list[int] | None]:
        """The version and masters of the copy held for ``key``; (-1, None) when none is."""
        return sent(self._entries.get(key))

    def zone_hint(self, slug: str) -> tuple[int, str] | None:
        """The time zone of the business as of the newest version seen, to guess a key's
        local date before asking; a copy of that version proves the guess right."""
        return self._zones.get(slug)

    def absorb(self, key: Key, answer: Availability, held: Entry | None) -> SlotContext:
        """The document ``answer`` completes: its whole context (now held for ``key``), or
        ``held`` — the copy whose version the question sent — with the fresh blocked ranges."""
        if answer.context is not None:
            context = answer.context
            slug, _service_id, staff_id, _from, _to = key
            offers = [s for s, _duration, _price in context.offers]
            asked = [staff_id] if staff_id is not None else offers
            self._entries[key] = (answer.version, context, asked if context.schedule else [])
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            seen = self._zones.get(slug)
            if seen is None or seen[0] <= answer.version:
                self._zones[slug] = (answer.version, context.business.timezone)
            return context
        # the database answers "unchanged" only to the version it was sent
        assert held is not None and held[0] == answer.version
        if key not in self._entries:  # evicted while the question was out: still good
            self._entries[key] = held
        context = held[1]
        if context.schedule is None:
            return context
        schedule = msgspec.structs.replace(context.schedule, blocked=answer.blocked or [])
        return msgspec.structs.replace(context, schedule=schedule)

    def forget(self, key: Key) -> None:
        self._entries.pop(key, None)

    async def read(
        self,
        db: Any,
        slug: str,
        service_id: int,
        staff_id: int | None,
        date_from: date,
        date_to: date,
    ) -> SlotContext | None:
        """The document for one request; None when no live business has this slug."""
        key = (slug, service_id, staff_id, date_from, date_to)
        held = self.entry(key)
        version, staff = sent(held)
        raw = await db.fetchval(
            _AVAILABILITY, slug, service_id, staff_id, date_from, date_to, version, staff
        )
        if raw is None:
            self.forget(key)
            return None
        return self.absorb(key, _decode_availability(raw), held)


_readers: WeakKeyDictionary[Any, AvailabilityReader] = WeakKeyDictionary()


def availability_reader(db: Any) -> AvailabilityReader:
    """The reader of one ``Database`` (one per worker process, as the pool is)."""
    reader = _readers.get(db)
    if reader is None:
        reader = _readers[db] = AvailabilityReader()
    return reader


async def available_slots(
    db: Any,
    slug: str,
    service_id: int,
    staff_id: int | None,
    date_from: date,
    date_to: date,
    now: datetime,
) -> list[Slot]:
    """Free times for a service (with one master, or any), over local dates [from, to]: one
    statement, with this worker's copy of the slow-changing part (``AvailabilityReader``)."""
    context = await availability_reader(db).read(db, slug, service_id, staff_id, date_from, date_to)
    if context is None or context.service is None:
        raise NotFound()
    offers = context.offer_map()
    if staff_id is not None and staff_id not in offers:
        raise NotFound(gettext(N_("This master does not perform this service.")))
    if context.schedule is None:
        return []
    staff_ids = [staff_id] if staff_id is not None else list(offers)
    query = build_query(
        context.business, context.service, offers, context.schedule, staff_ids, date_from,
        date_to, now,
    )  # fmt: skip
    return find_slots(query)
