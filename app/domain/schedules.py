"""When a business works, as the business manages it: weekly hours per master (several intervals
a day: a lunch break is the gap between two), a different schedule for one date (for one master,
or the whole business), time off, days the whole business is closed, and whether it observes
Kazakhstan's public holidays (:mod:`app.domain.business_days`).

Every entry point takes the acting ``Member`` and owns one transaction for that member's
business; an admin or owner changes anyone's schedule, a master only sees their own. Rows are
looked up with the member's ``business_id`` as well as their id, so another business's id
answers exactly as one that does not exist (404). Every change is audited, and the Mini App
sees it on its next request: working hours, overrides, closed days and the business's own row
move ``schedule_version`` (triggers), and time off is read fresh by every availability query.

Form input arrives as the strings a browser sends (times ``HH:MM``, dates ``YYYY-MM-DD``) and is
checked here, field by field, so a refusal names what is wrong beside its field, in the user's
language, and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import audit
from app.domain.audit import Actor
from app.domain.business_days import PublicDay, public_days
from app.domain.errors import MAX_ID, NotFound, ValidationFailed
from app.domain.members import Member
from app.i18n import N_, gettext
from app.models import Business, Holiday, ScheduleOverride, Staff, TimeOff, WorkingHours

WEEKDAYS = tuple(range(7))  # 0 = Monday
WORKDAYS = (1, 2, 3, 4)  # where "copy Monday" copies to: Tuesday to Friday
INTERVALS_A_DAY = 4  # rows the forms offer; a day with more breaks than three is rare
GRID_MIN = 5  # times on a 5-minute grid
NOTE_MAX = 200
TIME_OFF_MAX_DAYS = 366
AHEAD_DAYS = 365  # closed days and public holidays listed this far ahead
PAST_DAYS = 7  # and this far back (what just happened is still worth seeing)

_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::00)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Interval = tuple[time, time]


# --- what the dashboard shows ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Week:
    """A master's weekly hours: ``days[weekday]`` is that day's intervals, in order."""

    staff_id: int
    name: str
    days: tuple[tuple[Interval, ...], ...]

    def values(self) -> dict[str, str]:
        """The hours form's fields as they stand (``w{weekday}-{i}-start``/``-end``)."""
        found: dict[str, str] = {}
        for weekday, intervals in enumerate(self.days):
            for i, (start, end) in enumerate(intervals):
                found[f"w{weekday}-{i}-start"] = _clock(start)
                found[f"w{weekday}-{i}-end"] = _clock(end)
        return found

    @property
    def working_days(self) -> int:
        return sum(1 for intervals in self.days if intervals)


@dataclass(frozen=True, slots=True)
class DateHours:
    """A different schedule for one date: ``intervals`` empty means a day off."""

    id: int  # the first row of the date's group: what deleting the whole group takes
    staff_id: int | None  # None: the whole business
    on_date: date
    intervals: tuple[Interval, ...]
    note: str | None


@dataclass(frozen=True, slots=True)
class Absence:
    """Time off, as whole local dates [first, last]."""

    id: int
    first: date
    last: date
    reason: str | None


@dataclass(frozen=True, slots=True)
class MasterSchedule:
    week: Week
    dates: tuple[DateHours, ...]
    time_off: tuple[Absence, ...]
    today: date
    team_size: int  # live masters of the business: "for every master" needs two


@dataclass(frozen=True, slots=True)
class ClosedDay:
    id: int
    on_date: date
    name: str | None


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """The closed-days page: the business's own closed days and special dates, and the
    national calendar it may observe."""

    observe_public_holidays: bool
    closed: tuple[ClosedDay, ...]
    dates: tuple[DateHours, ...]  # the whole business's special hours
    public: tuple[PublicDay, ...]
    today: date


# --- reading -----------------------------------------------------------------------------------


def _check_id(value: int) -> int:
    if not 0 < value <= MAX_ID:
        raise NotFound()
    return value


async def _business(session: AsyncSession, member: Member) -> Business:
    business = await session.get(Business, member.business_id)
    if business is None:
        raise NotFound()
    return business


def _today(business: Business) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(business.timezone)).date()


async def _staff(session: AsyncSession, member: Member, staff_id: int) -> Staff:
    """A live master of the member's business; a master may reach only their own."""
    _check_id(staff_id)
    staff = (
        await session.execute(
            select(Staff).where(
                Staff.id == staff_id,
                Staff.business_id == member.business_id,
                Staff.archived_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if staff is None or (not member.at_least("admin") and member.staff_id != staff.id):
        raise NotFound()
    return staff


async def _weeks(session: AsyncSession, business_id: int, staff: list[Staff]) -> list[Week]:
    ids = [s.id for s in staff]
    rows = (
        await session.execute(
            select(WorkingHours.staff_id, WorkingHours.weekday, WorkingHours.start_time,
                   WorkingHours.end_time)
            .where(WorkingHours.business_id == business_id, WorkingHours.staff_id.in_(ids))
            .order_by(WorkingHours.start_time)
        )
    ).all()  # fmt: skip
    days: dict[int, list[list[Interval]]] = {s.id: [[] for _ in WEEKDAYS] for s in staff}
    for staff_id, weekday, start, end in rows:
        days[staff_id][weekday].append((start, end))
    return [Week(s.id, s.name, tuple(tuple(d) for d in days[s.id])) for s in staff]


async def weeks(db: Database, member: Member) -> list[Week]:
    """The weekly hours of every live master (a master: their own only), in display order."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        query = select(Staff).where(
            Staff.business_id == member.business_id, Staff.archived_at.is_(None)
        )
        if not member.at_least("admin"):
            if member.staff_id is None:
                return []
            query = query.where(Staff.id == member.staff_id)
        staff = list((await s.execute(query.order_by(Staff.sort_order, Staff.id))).scalars())
        return await _weeks(s, member.business_id, staff)


async def _dates(
    session: AsyncSession, business_id: int, staff_id: int | None, since: date
) -> tuple[DateHours, ...]:
    owner = (
        ScheduleOverride.staff_id.is_(None)
        if staff_id is None
        else ScheduleOverride.staff_id == staff_id
    )
    rows = (
        await session.execute(
            select(ScheduleOverride)
            .where(ScheduleOverride.business_id == business_id, owner,
                   ScheduleOverride.on_date >= since)
            .order_by(ScheduleOverride.on_date, ScheduleOverride.start_time.nulls_first(),
                      ScheduleOverride.id)
        )
    ).scalars()  # fmt: skip
    grouped: dict[date, list[ScheduleOverride]] = {}
    for row in rows:
        grouped.setdefault(row.on_date, []).append(row)
    found = []
    for on_date, group in grouped.items():
        intervals = tuple(
            (r.start_time, r.end_time)
            for r in group
            if r.kind == "hours" and r.start_time is not None and r.end_time is not None
        )
        note = next((r.note for r in group if r.note), None)
        found.append(DateHours(group[0].id, staff_id, on_date, intervals, note))
    return tuple(found)


async def master_schedule(db: Database, member: Member, staff_id: int) -> MasterSchedule:
    """One master's weekly hours, special dates and time off from today on."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        business = await _business(s, member)
        staff = await _staff(s, member, staff_id)
        today = _today(business)
        week = (await _weeks(s, member.business_id, [staff]))[0]
        dates = await _dates(s, member.business_id, staff.id, today)
        zone = ZoneInfo(business.timezone)
        rows = (
            await s.execute(
                select(TimeOff)
                .where(
                    TimeOff.business_id == member.business_id,
                    TimeOff.staff_id == staff.id,
                    or_(
                        func.upper(TimeOff.period).is_(None),
                        func.upper(TimeOff.period) > datetime.now(UTC),
                    ),
                )
                .order_by(TimeOff.period)
            )
        ).scalars()
        absences = []
        for row in rows:
            first, last = _local_dates(row.period, zone)
            if last >= today:
                absences.append(Absence(row.id, first, last, row.reason))
        team = await s.scalar(
            select(func.count())
            .select_from(Staff)
            .where(Staff.business_id == member.business_id, Staff.archived_at.is_(None))
        )
        return MasterSchedule(week, dates, tuple(absences), today, int(team or 0))


def _local_dates(period: Range[datetime], zone: ZoneInfo) -> tuple[date, date]:
    """A time-off period as the local dates it touches (an open end: the far past/future)."""
    first = period.lower.astimezone(zone).date() if period.lower else date.min
    if period.upper is None:
        return first, date.max
    last = (period.upper - timedelta(microseconds=1)).astimezone(zone).date()
    return first, max(first, last)


async def business_calendar(db: Database, member: Member) -> BusinessCalendar:
    """The business's closed days and special dates, and the public holidays ahead."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        business = await _business(s, member)
        today = _today(business)
        since = today - timedelta(days=PAST_DAYS)
        rows = (
            await s.execute(
                select(Holiday)
                .where(Holiday.business_id == member.business_id, Holiday.on_date >= since)
                .order_by(Holiday.on_date)
            )
        ).scalars()
        closed = tuple(ClosedDay(r.id, r.on_date, r.name) for r in rows)
        dates = await _dates(s, member.business_id, None, since)
        observe = business.observe_public_holidays
    public = public_days(since, today + timedelta(days=AHEAD_DAYS))
    return BusinessCalendar(observe, closed, dates, tuple(public), today)


# --- parsing -------------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, gettext(message))

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationFailed(fields=self.fields)


def parse_time(raw: str) -> time:
    """``HH:MM`` on the 5-minute grid; ValueError with the message to show otherwise."""
    found = _TIME.match(raw.strip())
    if not found:
        raise ValueError(N_("Enter a time like 09:30."))
    hour, minute = int(found.group(1)), int(found.group(2))
    if hour > 23 or minute > 59:
        raise ValueError(N_("Enter a time like 09:30."))
    if minute % GRID_MIN:
        raise ValueError(N_("Times go in steps of 5 minutes."))
    return time(hour, minute)


def parse_intervals(
    form: Mapping[str, str], prefix: str, errors: _Errors, error_key: str
) -> list[Interval]:
    """The filled rows ``{prefix}{i}-start`` / ``{prefix}{i}-end`` of one day, in order:
    each start before its end, none overlapping another."""
    intervals: list[Interval] = []
    for i in range(INTERVALS_A_DAY):
        raw_start = form.get(f"{prefix}{i}-start", "").strip()
        raw_end = form.get(f"{prefix}{i}-end", "").strip()
        if not raw_start and not raw_end:
            continue
        if not raw_start or not raw_end:
            errors.add(error_key, N_("Give both the start and the end."))
            continue
        try:
            start, end = parse_time(raw_start), parse_time(raw_end)
        except ValueError as refused:
            errors.add(error_key, str(refused))
            continue
        if start >= end:
            errors.add(error_key, N_("The end must be after the start."))
            continue
        intervals.append((start, end))
    intervals.sort()
    for (_start, end), (next_start, _end) in pairwise(intervals):
        if next_start < end:
            errors.add(error_key, N_("The intervals of one day must not overlap."))
            break
    return intervals


def parse_week(form: Mapping[str, str], *, copy_monday: bool = False) -> list[list[Interval]]:
    """A week from the hours form: fields ``w{weekday}-{i}-start``/``-end`` (errors under
    ``w{weekday}``); ``copy_monday`` gives Tuesday to Friday Monday's hours."""
    errors = _Errors()
    # the days Monday's hours replace are not read: what they held is going away
    days = [
        [] if copy_monday and d in WORKDAYS else parse_intervals(form, f"w{d}-", errors, f"w{d}")
        for d in WEEKDAYS
    ]
    errors.raise_if_any()
    if copy_monday:
        for weekday in WORKDAYS:
            days[weekday] = list(days[0])
    return days


def parse_date(raw: str) -> date:
    text = raw.strip()
    if not _DATE.match(text):
        raise ValueError(N_("Enter a date like 2026-12-31."))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(N_("Enter a date like 2026-12-31.")) from None


def _date(form: Mapping[str, str], name: str, errors: _Errors, today: date) -> date | None:
    try:
        day = parse_date(form.get(name, ""))
    except ValueError as refused:
        errors.add(name, str(refused))
        return None
    if day < today:
        errors.add(name, N_("This date has passed."))
        return None
    if day > today + timedelta(days=2 * AHEAD_DAYS):
        errors.add(name, N_("At most two years ahead."))
        return None
    return day


def _note(form: Mapping[str, str], name: str, errors: _Errors) -> str | None:
    text = " ".join(form.get(name, "").split())
    if len(text) > NOTE_MAX:
        errors.add(name, N_("At most 200 characters."))
    return text or None


def _clock(value: time) -> str:
    return value.strftime("%H:%M")


def _intervals_audit(intervals: Any) -> list[list[str]]:
    return [[_clock(start), _clock(end)] for start, end in intervals]


# --- changing ----------------------------------------------------------------------------------


def _tx(db: Database, member: Member) -> Any:
    return db.transaction(business_id=member.business_id, account_id=member.account_id)


async def set_week(
    db: Database,
    member: Member,
    staff_id: int,
    form: Mapping[str, str],
    *,
    actor: Actor,
    copy_monday: bool = False,
    everyone: bool = False,
) -> None:
    """Replace a master's weekly hours with the form's (an empty day: not working); with
    ``everyone``, every live master's (a salon where the whole team keeps the same hours)."""
    days = parse_week(form, copy_monday=copy_monday)
    async with _tx(db, member) as s:
        staff = [await _staff(s, member, staff_id)]
        if everyone:
            staff = list(
                (
                    await s.execute(
                        select(Staff)
                        .where(Staff.business_id == member.business_id,
                               Staff.archived_at.is_(None))
                        .order_by(Staff.sort_order, Staff.id)
                    )
                ).scalars()
            )  # fmt: skip
        before = await _weeks(s, member.business_id, staff)
        await s.execute(
            delete(WorkingHours).where(
                WorkingHours.business_id == member.business_id,
                WorkingHours.staff_id.in_([m.id for m in staff]),
            )
        )
        for master in staff:
            for weekday, intervals in enumerate(days):
                for start, end in intervals:
                    s.add(WorkingHours(business_id=member.business_id, staff_id=master.id,
                                       weekday=weekday, start_time=start, end_time=end))  # fmt: skip
        await s.flush()
        for week in before:
            await audit.record(
                s, actor=actor, action="schedule.week_set", entity="staff",
                entity_id=week.staff_id, business_id=member.business_id,
                before={"week": [_intervals_audit(d) for d in week.days]},
                after={"week": [_intervals_audit(d) for d in days]},
            )  # fmt: skip


async def set_date(
    db: Database,
    member: Member,
    staff_id: int | None,
    form: Mapping[str, str],
    *,
    actor: Actor,
) -> date:
    """A different schedule for one date (``kind`` ``day_off``, or ``hours`` with intervals
    ``h{i}-start``/``-end``), for one master or (``staff_id`` None) the whole business;
    replaces what that date had. Returns the date."""
    async with _tx(db, member) as s:
        business = await _business(s, member)
        owner = None if staff_id is None else (await _staff(s, member, staff_id)).id
        errors = _Errors()
        on_date = _date(form, "on_date", errors, _today(business))
        kind = form.get("kind", "")
        if kind not in ("day_off", "hours"):
            errors.add("kind", N_("Choose a day off or other hours."))
        intervals = parse_intervals(form, "h", errors, "hours") if kind == "hours" else []
        if kind == "hours" and not intervals and "hours" not in errors.fields:
            errors.add("hours", N_("Give at least one interval, or choose a day off."))
        note = _note(form, "note", errors)
        errors.raise_if_any()
        assert on_date is not None
        same = (
            ScheduleOverride.staff_id.is_(None) if owner is None
            else ScheduleOverride.staff_id == owner
        )  # fmt: skip
        await s.execute(
            delete(ScheduleOverride).where(
                ScheduleOverride.business_id == member.business_id, same,
                ScheduleOverride.on_date == on_date,
            )
        )  # fmt: skip
        if kind == "day_off":
            s.add(ScheduleOverride(business_id=member.business_id, staff_id=owner,
                                   on_date=on_date, kind="day_off", note=note))  # fmt: skip
        for start, end in intervals:
            s.add(ScheduleOverride(business_id=member.business_id, staff_id=owner,
                                   on_date=on_date, kind="hours", start_time=start,
                                   end_time=end, note=note))  # fmt: skip
        await s.flush()
        await audit.record(
            s, actor=actor, action="schedule.date_set", entity="schedule_override",
            entity_id=owner, business_id=member.business_id,
            after={"staff_id": owner, "date": on_date.isoformat(), "kind": kind,
                   "hours": _intervals_audit(intervals), "note": note},
        )  # fmt: skip
        return on_date


async def remove_date(
    db: Database, member: Member, override_id: int, *, actor: Actor
) -> int | None:
    """Back to the weekly hours on the date of override ``override_id`` (every interval of
    that date for the same master, or the whole business). Returns that master's id."""
    _check_id(override_id)
    async with _tx(db, member) as s:
        row = (
            await s.execute(
                select(ScheduleOverride).where(
                    ScheduleOverride.id == override_id,
                    ScheduleOverride.business_id == member.business_id,
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound()
        if row.staff_id is not None:
            await _staff(s, member, row.staff_id)
        same = (
            ScheduleOverride.staff_id.is_(None) if row.staff_id is None
            else ScheduleOverride.staff_id == row.staff_id
        )  # fmt: skip
        await s.execute(
            delete(ScheduleOverride).where(
                ScheduleOverride.business_id == member.business_id, same,
                ScheduleOverride.on_date == row.on_date,
            )
        )  # fmt: skip
        await audit.record(
            s, actor=actor, action="schedule.date_removed", entity="schedule_override",
            entity_id=row.id, business_id=member.business_id,
            before={"staff_id": row.staff_id, "date": row.on_date.isoformat()},
        )  # fmt: skip
        return row.staff_id


async def add_time_off(
    db: Database, member: Member, staff_id: int, form: Mapping[str, str], *, actor: Actor
) -> int:
    """Time off for a master over whole local dates [``date_from``, ``date_to``] (a vacation,
    sick days). Bookings already made stay: the business moves or cancels them."""
    async with _tx(db, member) as s:
        business = await _business(s, member)
        staff = await _staff(s, member, staff_id)
        errors = _Errors()
        today = _today(business)
        first = _date(form, "date_from", errors, today)
        last = _date(form, "date_to", errors, today) if form.get("date_to", "").strip() else first
        reason = _note(form, "reason", errors)
        if first is not None and last is not None:
            if last < first:
                errors.add("date_to", N_("The last day must not be before the first."))
            elif (last - first).days >= TIME_OFF_MAX_DAYS:
                errors.add("date_to", N_("At most a year at a time."))
        errors.raise_if_any()
        assert first is not None and last is not None
        zone = ZoneInfo(business.timezone)
        begin = datetime.combine(first, time(0), tzinfo=zone)
        end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
        row = TimeOff(business_id=member.business_id, staff_id=staff.id,
                      period=Range(begin, end, bounds="[)"), reason=reason)  # fmt: skip
        s.add(row)
        await s.flush()
        await audit.record(
            s, actor=actor, action="schedule.time_off_added", entity="time_off",
            entity_id=row.id, business_id=member.business_id,
            after={"staff_id": staff.id, "from": first.isoformat(), "to": last.isoformat(),
                   "reason": reason},
        )  # fmt: skip
        return row.id


async def remove_time_off(db: Database, member: Member, time_off_id: int, *, actor: Actor) -> int:
    """Cancel time off; returns the master's id."""
    _check_id(time_off_id)
    async with _tx(db, member) as s:
        row = (
            await s.execute(
                select(TimeOff).where(
                    TimeOff.id == time_off_id, TimeOff.business_id == member.business_id
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound()
        await _staff(s, member, row.staff_id)
        staff_id = row.staff_id
        period = row.period
        await s.delete(row)
        await audit.record(
            s, actor=actor, action="schedule.time_off_removed", entity="time_off",
            entity_id=time_off_id, business_id=member.business_id,
            before={"staff_id": staff_id,
                    "from": period.lower.isoformat() if period.lower else None,
                    "to": period.upper.isoformat() if period.upper else None},
        )  # fmt: skip
        return staff_id


async def add_closed_day(
    db: Database, member: Member, form: Mapping[str, str], *, actor: Actor
) -> date:
    """Close the whole business on one date (besides public holidays it observes)."""
    async with _tx(db, member) as s:
        business = await _business(s, member)
        errors = _Errors()
        on_date = _date(form, "on_date", errors, _today(business))
        name = _note(form, "name", errors)
        if on_date is not None:
            taken = await s.scalar(
                select(Holiday.id).where(
                    Holiday.business_id == member.business_id, Holiday.on_date == on_date
                )
            )
            if taken is not None:
                errors.add("on_date", N_("The business is already closed on this day."))
        errors.raise_if_any()
        assert on_date is not None
        row = Holiday(business_id=member.business_id, on_date=on_date, name=name)
        s.add(row)
        await s.flush()
        await audit.record(
            s, actor=actor, action="schedule.closed_day_added", entity="holiday",
            entity_id=row.id, business_id=member.business_id,
            after={"date": on_date.isoformat(), "name": name},
        )  # fmt: skip
        return on_date


async def remove_closed_day(db: Database, member: Member, holiday_id: int, *, actor: Actor) -> None:
    _check_id(holiday_id)
    async with _tx(db, member) as s:
        row = (
            await s.execute(
                select(Holiday).where(
                    Holiday.id == holiday_id, Holiday.business_id == member.business_id
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound()
        before = {"date": row.on_date.isoformat(), "name": row.name}
        await s.delete(row)
        await audit.record(
            s, actor=actor, action="schedule.closed_day_removed", entity="holiday",
            entity_id=holiday_id, business_id=member.business_id, before=before,
        )  # fmt: skip


async def observe_public_holidays(db: Database, member: Member, on: bool, *, actor: Actor) -> None:
    """Switch closing on Kazakhstan's public holidays (and working on transferred working
    days) on or off; the column is the one truth, the settings page may show it too."""
    async with _tx(db, member) as s:
        business = await _business(s, member)
        before = business.observe_public_holidays
        if before == on:
            return
        business.observe_public_holidays = on
        await s.flush()
        await audit.record(
            s, actor=actor, action="business.public_holidays_set", entity="business",
            entity_id=business.id, business_id=business.id,
            before={"observe_public_holidays": before}, after={"observe_public_holidays": on},
        )  # fmt: skip
