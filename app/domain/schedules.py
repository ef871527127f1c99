"""Load what the slot engine needs from the database, for one business and a date range."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays as public_holidays
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.availability import SlotQuery, StaffSchedule
from app.domain.errors import NotFound
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


def _day_window(tz: ZoneInfo, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    start = datetime.combine(date_from, time(0), tzinfo=tz) - timedelta(hours=12)
    end = datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=tz) + timedelta(hours=12)
    return start.astimezone(UTC), end.astimezone(UTC)


# Everything the slot engine needs in one round trip: weekly hours, single-date overrides,
# what blocks time (live bookings with their buffers, time off) and the business's closed days.
_SCHEDULE = text(
    "SELECT "
    "(SELECT coalesce(json_agg(json_build_array(staff_id, weekday, start_time, end_time) "
    "  ORDER BY staff_id, weekday, start_time), '[]') FROM working_hours "
    "  WHERE business_id = :b AND staff_id = ANY(:staff)) AS hours, "
    "(SELECT coalesce(json_agg(json_build_array(staff_id, on_date, kind, start_time, end_time) "
    "  ORDER BY on_date, start_time), '[]') FROM schedule_overrides "
    "  WHERE business_id = :b AND on_date BETWEEN :d1 AND :d2 "
    "  AND (staff_id IS NULL OR staff_id = ANY(:staff))) AS overrides, "
    "(SELECT coalesce(json_agg(json_build_array(staff_id, extract(epoch FROM s), "
    "  extract(epoch FROM e))), '[]') FROM ("
    "  SELECT staff_id, lower(blocked_period) AS s, upper(blocked_period) AS e FROM bookings "
    "  WHERE business_id = :b AND staff_id = ANY(:staff) AND status IN ('pending', 'confirmed') "
    "  AND blocked_period && tstzrange(:w1, :w2) "
    "  UNION ALL SELECT staff_id, coalesce(lower(period), :w1), coalesce(upper(period), :w2) "
    "  FROM time_off WHERE business_id = :b AND staff_id = ANY(:staff) "
    "  AND period && tstzrange(:w1, :w2)) AS blocking) AS blocked, "
    "(SELECT coalesce(json_agg(on_date), '[]') FROM holidays "
    "  WHERE business_id = :b AND on_date BETWEEN :d1 AND :d2) AS closed"
)


def _json(value: Any) -> Any:
    """json columns arrive decoded or as text, depending on the driver's codecs."""
    return json.loads(value) if isinstance(value, str) else value


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
    tz = ZoneInfo(business.timezone)
    w1, w2 = _day_window(tz, date_from, date_to)
    params = {
        "b": business.id,
        "staff": staff_ids,
        "d1": date_from,
        "d2": date_to,
        "w1": w1,
        "w2": w2,
    }
    row = (await session.execute(_SCHEDULE, params)).one()

    weekly: dict[int, dict[int, list[tuple[time, time]]]] = {s: {} for s in staff_ids}
    for staff_id, weekday, start, end in _json(row.hours):
        weekly[staff_id].setdefault(weekday, []).append(
            (time.fromisoformat(start), time.fromisoformat(end))
        )

    business_overrides: dict[date, list[tuple[time, time]]] = {}
    staff_overrides: dict[int, dict[date, list[tuple[time, time]]]] = {s: {} for s in staff_ids}
    for staff_id, on_date, kind, start, end in _json(row.overrides):
        target = business_overrides if staff_id is None else staff_overrides[staff_id]
        intervals = target.setdefault(date.fromisoformat(on_date), [])
        if kind == "hours":
            intervals.append((time.fromisoformat(start), time.fromisoformat(end)))

    # the engine is fastest with busy ranges in UTC
    blocked: dict[int, list[tuple[datetime, datetime]]] = {s: [] for s in staff_ids}
    for staff_id, start_epoch, end_epoch in _json(row.blocked):
        blocked[staff_id].append(
            (
                datetime.fromtimestamp(float(start_epoch), UTC),
                datetime.fromtimestamp(float(end_epoch), UTC),
            )
        )

    closed = {date.fromisoformat(d) for d in _json(row.closed)}
    if business.observe_public_holidays:
        years = range(date_from.year, date_to.year + 1)
        closed |= {
            d
            for d in public_holidays.country_holidays("KZ", years=years)
            if date_from <= d <= date_to
        }

    schedules = []
    for staff_id in staff_ids:
        offer = offers.offers[staff_id]
        overrides = {**business_overrides, **staff_overrides[staff_id]}
        schedules.append(
            StaffSchedule(
                staff_id=staff_id,
                weekly_hours=weekly[staff_id],
                overrides=overrides,
                time_off=[],
                busy=blocked[staff_id],
                duration_min=offer.duration_min,
            )
        )
    service = offers.service
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
    )
