"""What a client chooses from while booking in the Mini App: the masters of a service, its free
times over the coming days, and the summary they confirm. Reads only; booking itself is
``app.domain.bookings.create_booking``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain.access import booking_for
from app.domain.accounts import ByAccount
from app.domain.availability import DaySlots, Slot, find_day_slots
from app.domain.availability_reader import Offer, business_by_slug, load_query, service_offers
from app.domain.catalog import active_staff
from app.domain.consent import require_consent
from app.domain.errors import NotFound
from app.i18n import N_, gettext
from app.models import Booking, Business, Service, Staff


@dataclass(frozen=True, slots=True)
class Choices:
    """A service's masters and free times from ``today`` for ``days`` days (local dates): the
    business's whole booking horizon, as a count of free times per date, and the slots of one
    chosen date (``day``)."""

    business: Business
    service: Service
    offers: dict[int, Offer]
    masters: list[Staff]
    counts: dict[date, int]
    day: date
    slots: list[Slot]  # of ``day``
    today: date
    days: int


def days_offered(business: Business) -> int:
    """How many local days, from today, a client chooses among: the business's horizon (its
    slots end ``horizon_days`` after now, so the last whole day is the day before that)."""
    return max(1, business.horizon_days)


async def _choices(
    session: AsyncSession,
    business: Business,
    service_id: int,
    staff_id: int | None,
    day: date | None,
) -> Choices:
    """``day``: the date whose times to give, when within the horizon; else the first date
    with a free time (today when there is none)."""
    days = days_offered(business)
    await set_context(session, business_id=business.id)
    offers = await service_offers(session, business.id, service_id)
    if staff_id is not None and staff_id not in offers.offers:
        raise NotFound(gettext(N_("This master does not perform this service.")))
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(business.timezone)).date()
    staff_ids = [staff_id] if staff_id is not None else list(offers.offers)
    found = DaySlots({}, day if day is not None and 0 <= (day - today).days < days else today, [])
    if staff_ids:
        query = await load_query(
            session, business, offers, staff_ids, today, today + timedelta(days=days - 1), now
        )
        found = find_day_slots(query, day)
    masters = [m for m in await active_staff(session, business.id) if m.id in offers.offers]
    return Choices(business, offers.service, offers.offers, masters, found.counts, found.day,
                   found.slots, today, days)  # fmt: skip


async def service_choices(
    db: Database, slug: str, service_id: int, staff_id: int | None, day: date | None = None
) -> Choices:
    async with db.transaction() as session:
        business = await business_by_slug(session, slug)
        return await _choices(session, business, service_id, staff_id, day)


async def move_choices(
    db: Database,
    booking_id: int,
    staff_id: int | None,
    day: date | None = None,
    *,
    by: ByAccount,
) -> tuple[Booking, Choices]:
    """Where the client's own booking may move: its service's free times."""
    async with booking_for(db, booking_id, by) as (session, booking, business):
        chosen = staff_id if staff_id is not None else booking.staff_id
        return booking, await _choices(session, business, booking.service_id, chosen, day)


@dataclass(frozen=True, slots=True)
class Summary:
    """What the client confirms: where, what, with whom (None: any free master), when."""

    business: Business
    service: Service
    offer: Offer
    master: Staff | None
    start: datetime  # in the business's zone


async def booking_summary(
    db: Database,
    slug: str,
    service_id: int,
    staff_id: int | None,
    start: datetime,
    *,
    by: ByAccount,
) -> Summary:
    """The confirmation's summary; ``ConsentRequired`` before the client has consented."""
    async with db.transaction(account_id=by.account_id) as session:
        await require_consent(session, by.account_id)
        business = await business_by_slug(session, slug)
        offers = await service_offers(session, business.id, service_id)
        if staff_id is not None and staff_id not in offers.offers:
            raise NotFound()
        offer = (
            offers.offers[staff_id]
            if staff_id is not None
            else next(iter(offers.offers.values()), None)
        )
        if offer is None:
            raise NotFound()
        master = await session.get(Staff, staff_id) if staff_id is not None else None
    return Summary(
        business, offers.service, offer, master, start.astimezone(ZoneInfo(business.timezone))
    )
