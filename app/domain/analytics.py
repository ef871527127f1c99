"""The business's analytics (issue 14 item 8): a period's bookings, revenue, average ticket,
cancellations, no-show rate, new and returning clients, occupancy and busiest hours, overall and
per master, beside the previous period of the same length.

The rules, stated once here and on the page:

- a *booking* is one that starts in the period (local days of the business, ``start`` to
  ``end`` inclusive) and was not cancelled; a booking moved to another time is counted once, at
  its new time (the cancelled original, reason ``rescheduled``, is left out everywhere);
- *revenue* is the sum of the price snapshots (``bookings.price_tiyn``) of completed bookings;
  *expected* is that of bookings still waiting or confirmed (not yet marked completed or
  no-show); the *average ticket* is revenue / completed bookings;
- *cancellations* are counted by who cancelled (the client, the business, or the system when a
  waiting booking expired); the *no-show rate* is no-shows / (completed + no-shows);
- a client is *new* when their first booking at this business (not cancelled) falls in the
  period, *returning* otherwise;
- *occupancy* is the booked minutes (the visits' own length, without buffers, of every booking
  that held its time: waiting, confirmed, completed, no-show) / the open minutes, which are the
  masters' working hours on the period's days as the slot engine reads them (``pz_schedule``
  through ``availability_reader.build_query``: weekly hours, dated overrides, closed days and
  public holidays); time off is not subtracted;
- *busiest hours* count bookings by weekday and hour of their start in the business's zone.

A master sees only their own numbers; owners and admins the whole business and each master.
The report is read with a fixed number of statements whatever the number of bookings: the
business, its masters, the figures (one ``GROUP BY`` with grouping sets over both periods),
the days, the hours, and the schedule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import text

from app.db.session import Database
from app.domain.availability_reader import Offer, Schedule, build_query
from app.domain.errors import MAX_ID, NotFound, ValidationFailed
from app.domain.members import Member
from app.i18n import N_, gettext
from app.models import Business

MAX_DAYS = 366
DEFAULT_PRESET = "last_30_days"
PRESETS = {
    "this_week": N_("This week"),
    "this_month": N_("This month"),
    "last_30_days": N_("Last 30 days"),
    "previous_month": N_("Previous month"),
}
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
# the hours the busiest-hours grid shows at least (widened to every booking's hour)
FIRST_HOUR, LAST_HOUR = 9, 18

# cancelled with reason "rescheduled": the booking lives on at its new time
_COUNTED = "NOT (b.status = 'cancelled' AND b.cancel_reason IS NOT DISTINCT FROM 'rescheduled')"
_SCOPE = "(CAST(:staff AS bigint) IS NULL OR b.staff_id = CAST(:staff AS bigint))"

_MASTERS = text(
    "SELECT id, name, archived_at IS NOT NULL AS archived FROM staff WHERE business_id = :b "
    "ORDER BY sort_order, id"
)
# both periods at once ([lo, mid) the previous one, [mid, hi) the chosen one), per master and
# in total (a client seen by two masters is one client of the business)
_FIGURES = text(
    "WITH scoped AS ("
    " SELECT b.staff_id, b.client_id, b.status, b.cancelled_by, b.price_tiyn,"
    " extract(epoch FROM upper(b.period) - lower(b.period)) / 60 AS minutes,"
    " b.starts_at >= :mid AS chosen FROM bookings b"
    f" WHERE b.business_id = :b AND b.starts_at >= :lo AND b.starts_at < :hi AND {_SCOPE}"
    f" AND {_COUNTED}"
    "), firsts AS ("
    " SELECT f.client_id, min(f.starts_at) AS first_at FROM bookings f"
    " WHERE f.business_id = :b AND f.status <> 'cancelled'"
    " AND f.client_id IN (SELECT client_id FROM scoped) GROUP BY f.client_id"
    ") SELECT s.chosen, s.staff_id, GROUPING(s.staff_id) = 1 AS total,"
    " count(*) FILTER (WHERE s.status <> 'cancelled') AS bookings,"
    " count(*) FILTER (WHERE s.status = 'completed') AS completed,"
    " count(*) FILTER (WHERE s.status = 'no_show') AS no_shows,"
    " count(*) FILTER (WHERE s.status = 'cancelled' AND s.cancelled_by = 'client')"
    " AS cancelled_by_client,"
    " count(*) FILTER (WHERE s.status = 'cancelled' AND s.cancelled_by = 'business')"
    " AS cancelled_by_business,"
    " count(*) FILTER (WHERE s.status = 'cancelled' AND s.cancelled_by IS DISTINCT FROM 'client'"
    " AND s.cancelled_by IS DISTINCT FROM 'business') AS cancelled_other,"
    " coalesce(sum(s.price_tiyn) FILTER (WHERE s.status = 'completed'), 0) AS revenue,"
    " coalesce(sum(s.price_tiyn) FILTER (WHERE s.status IN ('pending', 'confirmed')), 0)"
    " AS expected,"
    " coalesce(sum(s.minutes) FILTER (WHERE s.status <> 'cancelled'), 0) AS booked_min,"
    " count(DISTINCT s.client_id) FILTER (WHERE s.status <> 'cancelled') AS clients,"
    " count(DISTINCT s.client_id) FILTER (WHERE s.status <> 'cancelled'"
    " AND f.first_at >= CASE WHEN s.chosen THEN :mid ELSE :lo END) AS new_clients"
    " FROM scoped s LEFT JOIN firsts f ON f.client_id = s.client_id"
    " GROUP BY GROUPING SETS ((s.chosen, s.staff_id), (s.chosen))"
)
_DAYS = text(
    "SELECT CAST(timezone(:tz, b.starts_at) AS date) AS day,"
    " count(*) FILTER (WHERE b.status <> 'cancelled') AS bookings,"
    " coalesce(sum(b.price_tiyn) FILTER (WHERE b.status = 'completed'), 0) AS revenue"
    f" FROM bookings b WHERE b.business_id = :b AND b.starts_at >= :mid AND b.starts_at < :hi"
    f" AND {_SCOPE} AND {_COUNTED} GROUP BY 1"
)
_HOURS = text(
    "SELECT CAST(extract(isodow FROM timezone(:tz, b.starts_at)) AS int) - 1 AS weekday,"
    " CAST(extract(hour FROM timezone(:tz, b.starts_at)) AS int) AS hour, count(*) AS bookings"
    " FROM bookings b WHERE b.business_id = :b AND b.starts_at >= :mid AND b.starts_at < :hi"
    f" AND b.status <> 'cancelled' AND {_SCOPE} GROUP BY 1, 2"
)
_SCHEDULE = text("SELECT CAST(pz_schedule(:b, :staff, :d1, :d2, :tz) AS text)")


@dataclass(frozen=True, slots=True)
class _Timing:
    """What ``build_query`` asks of a service; the hours read here do not depend on it."""

    duration_min: int = 15
    buffer_before_min: int = 0
    buffer_after_min: int = 0


@dataclass(frozen=True, slots=True)
class Asked:
    """What the page is asked for (already checked): a preset, or both dates; a master."""

    preset: str | None = DEFAULT_PRESET
    start: date | None = None
    end: date | None = None
    staff_id: int | None = None


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


@dataclass(frozen=True, slots=True)
class Figures:
    """One period's numbers (the whole business's, or one master's)."""

    bookings: int = 0
    completed: int = 0
    no_shows: int = 0
    cancelled_by_client: int = 0
    cancelled_by_business: int = 0
    cancelled_other: int = 0
    revenue_tiyn: int = 0
    expected_tiyn: int = 0
    booked_min: int = 0
    open_min: int = 0
    clients: int = 0
    new_clients: int = 0

    @property
    def cancellations(self) -> int:
        return self.cancelled_by_client + self.cancelled_by_business + self.cancelled_other

    @property
    def returning_clients(self) -> int:
        return self.clients - self.new_clients

    @property
    def average_ticket_tiyn(self) -> int | None:
        return round(self.revenue_tiyn / self.completed) if self.completed else None

    @property
    def no_show_rate(self) -> float | None:
        due = self.completed + self.no_shows
        return self.no_shows / due if due else None

    @property
    def occupancy(self) -> float | None:
        return self.booked_min / self.open_min if self.open_min else None


@dataclass(frozen=True, slots=True)
class Change:
    """How a figure moved against the previous period: ``direction`` up, down or same (none
    when there is nothing to compare); ``percent`` for amounts, ``points`` for rates."""

    direction: str
    percent: int | None = None
    points: int | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    key: str  # bookings, revenue, average_ticket, cancellations, no_show_rate, new_clients, …
    kind: str  # count, money, rate
    value: float | int | None
    previous: float | int | None
    change: Change


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    bookings: int
    revenue_tiyn: int


@dataclass(frozen=True, slots=True)
class MasterFigures:
    staff_id: int
    name: str
    figures: Figures
    previous: Figures

    @property
    def change(self) -> Change:
        """The master's bookings against their previous period."""
        return change(self.figures.bookings, self.previous.bookings, "count")


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the analytics page shows, computed."""

    preset: str | None
    period: Period
    previous_period: Period
    staff_id: int | None  # the master the report is narrowed to
    own_only: bool  # a master's report: their own numbers only
    masters: list[tuple[int, str]]  # the choice of masters (owners and admins)
    figures: Figures
    previous: Figures
    metrics: list[Metric]
    days: list[Day]
    hours: list[int]  # the hours of day the busiest-hours grid shows
    heat: list[list[int]]  # [weekday][index in hours] bookings
    per_master: list[MasterFigures]
    timezone: str

    @property
    def day_max(self) -> int:
        return max((d.bookings for d in self.days), default=0)

    @property
    def revenue_max(self) -> int:
        return max((d.revenue_tiyn for d in self.days), default=0)

    @property
    def heat_max(self) -> int:
        return max((n for row in self.heat for n in row), default=0)

    @property
    def master_max(self) -> int:
        return max((m.figures.bookings for m in self.per_master), default=0)


def _date(value: str | None, field: str, errors: dict[str, str]) -> date | None:
    raw = (value or "").strip()
    if not raw:
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        errors[field] = gettext(N_("Enter a date as YYYY-MM-DD."))
        return None


def parse_query(query: Mapping[str, str]) -> Asked:
    """The page's query: ``preset`` (this_week, this_month, last_30_days, previous_month) or
    ``from`` and ``to`` (ISO dates, ``to`` not before ``from``, at most 366 days), and an
    optional ``staff``; anything else is ``ValidationFailed`` naming the field."""
    errors: dict[str, str] = {}
    start = _date(query.get("from"), "from", errors)
    end = _date(query.get("to"), "to", errors)
    preset = (query.get("preset") or "").strip() or None
    if preset is not None and preset not in PRESETS:
        errors["preset"] = gettext(N_("Choose a period from the list."))
    if start is not None and end is None and "to" not in errors:
        errors["to"] = gettext(N_("Choose the last day."))
    if end is not None and start is None and "from" not in errors:
        errors["from"] = gettext(N_("Choose the first day."))
    if start is not None and end is not None:
        if end < start:
            errors["to"] = gettext(N_("The last day cannot be before the first."))
        elif (end - start).days + 1 > MAX_DAYS:
            errors["to"] = gettext(N_("Choose a period of at most 366 days."))
    staff_id: int | None = None
    if raw := (query.get("staff") or "").strip():
        if raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_ID:
            staff_id = int(raw)
        else:
            errors["staff"] = gettext(N_("Choose a master from the list."))
    if errors:
        raise ValidationFailed(fields=errors)
    # dates chosen by hand win over a preset
    preset = None if start is not None and end is not None else preset or DEFAULT_PRESET
    return Asked(preset=preset, start=start, end=end, staff_id=staff_id)


def resolve_period(asked: Asked, today: date) -> Period:
    """The dates a preset means on the business's ``today`` (or the chosen dates)."""
    if asked.start is not None and asked.end is not None:
        return Period(asked.start, asked.end)
    first_of_month = today.replace(day=1)
    next_month = (first_of_month + timedelta(days=32)).replace(day=1)
    match asked.preset:
        case "this_week":
            monday = today - timedelta(days=today.weekday())
            return Period(monday, monday + timedelta(days=6))
        case "this_month":
            return Period(first_of_month, next_month - timedelta(days=1))
        case "previous_month":
            last = first_of_month - timedelta(days=1)
            return Period(last.replace(day=1), last)
        case _:
            return Period(today - timedelta(days=29), today)


def change(current: float | int | None, previous: float | int | None, kind: str) -> Change:
    """``current`` against ``previous``: for rates the difference in percentage points, for
    counts and money the relative change in per cent (none when the previous was nothing)."""
    if current is None or previous is None:
        return Change("none")
    if kind == "rate":
        points = round((current - previous) * 100)
        return Change("up" if points > 0 else "down" if points < 0 else "same", points=points)
    if previous == 0:
        return Change("same", percent=0) if current == 0 else Change("none")
    percent = round((current - previous) / previous * 100)
    return Change("up" if percent > 0 else "down" if percent < 0 else "same", percent=percent)


def _metrics(now: Figures, before: Figures) -> list[Metric]:
    pairs: list[tuple[str, str, float | int | None, float | int | None]] = [
        ("bookings", "count", now.bookings, before.bookings),
        ("revenue", "money", now.revenue_tiyn, before.revenue_tiyn),
        ("average_ticket", "money", now.average_ticket_tiyn, before.average_ticket_tiyn),
        ("expected", "money", now.expected_tiyn, before.expected_tiyn),
        ("cancellations", "count", now.cancellations, before.cancellations),
        ("no_show_rate", "rate", now.no_show_rate, before.no_show_rate),
        ("new_clients", "count", now.new_clients, before.new_clients),
        ("returning_clients", "count", now.returning_clients, before.returning_clients),
        ("occupancy", "rate", now.occupancy, before.occupancy),
    ]
    return [Metric(key, kind, a, b, change(a, b, kind)) for key, kind, a, b in pairs]


def _open_minutes(
    schedule: Schedule, business: Business, staff_ids: list[int], period: Period, now: datetime
) -> dict[tuple[int, date], int]:
    """Each master's working minutes on each day, by the rules the slot engine applies."""
    if not staff_ids:
        return {}
    query = build_query(
        business, _Timing(), {i: Offer(i, 15, 0) for i in staff_ids}, schedule, staff_ids,
        period.start, period.end, now,
    )  # fmt: skip
    minutes: dict[tuple[int, date], int] = {}
    for staff in query.staff:
        for day in period.dates():
            if day in query.holidays:
                continue
            intervals = staff.overrides.get(day)
            if intervals is None:
                weekday = query.works_as.get(day, day.weekday())
                intervals = staff.weekly_hours.get(weekday, [])
            total = 0
            for opens, closes in intervals:
                end = 24 * 60 if closes == time(0) else closes.hour * 60 + closes.minute
                total += max(0, end - (opens.hour * 60 + opens.minute))
            minutes[(staff.staff_id, day)] = total
    return minutes


def _figures(row: object, open_min: int) -> Figures:
    return Figures(
        bookings=row.bookings, completed=row.completed, no_shows=row.no_shows,  # type: ignore[attr-defined]
        cancelled_by_client=row.cancelled_by_client,  # type: ignore[attr-defined]
        cancelled_by_business=row.cancelled_by_business,  # type: ignore[attr-defined]
        cancelled_other=row.cancelled_other, revenue_tiyn=int(row.revenue),  # type: ignore[attr-defined]
        expected_tiyn=int(row.expected), booked_min=round(row.booked_min),  # type: ignore[attr-defined]
        open_min=open_min, clients=row.clients, new_clients=row.new_clients,  # type: ignore[attr-defined]
    )  # fmt: skip


async def report(
    db: Database, member: Member, asked: Asked, *, now: datetime | None = None
) -> Report:
    """The analytics of the asked period against the previous period of the same length: the
    whole business's (or one master's) and each master's. A master gets their own numbers only;
    a master of another business, or another master for a master, is ``NotFound``."""
    now = now or datetime.now(UTC)
    own_only = not member.at_least("admin")
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        business = await s.get(Business, member.business_id)
        assert business is not None  # the member's business
        zone = ZoneInfo(business.timezone)
        period = resolve_period(asked, now.astimezone(zone).date())
        previous = Period(period.start - timedelta(days=period.days),
                          period.start - timedelta(days=1))  # fmt: skip
        staff_rows = (await s.execute(_MASTERS, {"b": business.id})).all()
        if own_only:
            staff_rows = [r for r in staff_rows if r.id == member.staff_id]
        known = {r.id: r for r in staff_rows}
        if asked.staff_id is not None and asked.staff_id not in known:
            raise NotFound(gettext(N_("There is no such master here.")))
        scope: int | None = asked.staff_id
        if own_only and scope is None:
            scope = member.staff_id or 0  # a member with no master's column has no numbers
        lo = datetime.combine(previous.start, time(0), tzinfo=zone)
        mid = datetime.combine(period.start, time(0), tzinfo=zone)
        hi = datetime.combine(period.end + timedelta(days=1), time(0), tzinfo=zone)
        args = {"b": business.id, "staff": scope, "lo": lo, "mid": mid, "hi": hi,
                "tz": business.timezone}  # fmt: skip
        figure_rows = (await s.execute(_FIGURES, args)).all()
        day_rows = (await s.execute(_DAYS, args)).all()
        hour_rows = (await s.execute(_HOURS, args)).all()
        working = [r.id for r in staff_rows if not r.archived and scope in (None, r.id)]
        raw = await s.scalar(_SCHEDULE, {"b": business.id, "staff": working, "d1": previous.start,
                                         "d2": period.end, "tz": business.timezone})  # fmt: skip
    schedule = msgspec.json.decode(raw, type=Schedule)
    both = Period(previous.start, period.end)
    open_by_day = _open_minutes(schedule, business, working, both, now)

    def open_min(staff_id: int | None, within: Period) -> int:
        return sum(
            n
            for (st, day), n in open_by_day.items()
            if (staff_id is None or st == staff_id) and within.start <= day <= within.end
        )

    totals: dict[bool, Figures] = {}
    by_master: dict[tuple[bool, int], Figures] = {}
    for row in figure_rows:
        within = period if row.chosen else previous
        if row.total:
            totals[row.chosen] = _figures(row, open_min(scope, within))
        else:
            by_master[(row.chosen, row.staff_id)] = _figures(row, open_min(row.staff_id, within))
    figures = totals.get(True) or Figures(open_min=open_min(scope, period))
    before = totals.get(False) or Figures(open_min=open_min(scope, previous))

    per_master: list[MasterFigures] = []
    for r in staff_rows:
        if scope is not None and r.id != scope:
            continue
        mine = by_master.get((True, r.id)) or Figures(open_min=open_min(r.id, period))
        theirs = by_master.get((False, r.id)) or Figures(open_min=open_min(r.id, previous))
        if r.archived and not (mine.bookings or mine.cancellations):
            continue  # a master who has left shows only while their bookings are in the period
        per_master.append(MasterFigures(r.id, r.name, mine, theirs))

    counted = {r.day: Day(r.day, r.bookings, int(r.revenue)) for r in day_rows}
    days = [counted.get(d) or Day(d, 0, 0) for d in period.dates()]

    first_hour = min([FIRST_HOUR, *(r.hour for r in hour_rows)])
    last_hour = max([LAST_HOUR - 1, *(r.hour for r in hour_rows)])
    hours = list(range(first_hour, last_hour + 1))
    heat = [[0] * len(hours) for _ in range(7)]
    for r in hour_rows:
        heat[r.weekday][r.hour - first_hour] = r.bookings

    return Report(
        preset=asked.preset, period=period, previous_period=previous, staff_id=asked.staff_id,
        own_only=own_only,
        masters=[(r.id, r.name) for r in staff_rows if not r.archived or r.id == asked.staff_id],
        figures=figures, previous=before, metrics=_metrics(figures, before), days=days,
        hours=hours, heat=heat, per_master=per_master, timezone=business.timezone,
    )  # fmt: skip
