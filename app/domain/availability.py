"""The slot engine: which start times a client can book, for one master or any of several.

Pure and fast. The rules, all checked by ``tests/unit/test_availability.py``:

* A slot's visible period ``[start, start + duration)`` lies inside one working interval of its
  local date. A single-date override replaces that weekday's hours (``[]`` = day off); a
  business holiday closes the date even when an override would open it. A date in
  ``works_as`` works with another weekday's hours (a Saturday a decree made a working day).
* Its blocked period ``[start - buffer_before, start + duration + buffer_after)`` overlaps no
  busy range and no time off. All ranges are half-open, so touching is fine. Buffers may reach
  outside working hours (preparing before opening, tidying after closing).
* Starts lie on the step grid counted in real time from the working interval's start, with
  ``now + min_notice <= start < now + horizon``.

Wall-clock hours become real instants with zoneinfo. An interval covers every real instant
from the first moment the wall clock shows its start to the last moment it shows its end: on a
spring-forward day an interval spanning the gap is shorter (a start or end inside the gap
becomes the transition instant, so no slot starts at a local time that does not exist); on a
fall-back day it is longer. An end of ``time(0)`` means midnight at the end of the date (24:00).

Internally everything is integer epoch seconds: busy ranges become forbidden *start* ranges,
these are subtracted from each working interval, and the grid points of what is left are
produced with ``range``. Aware datetimes are built only for the output, once per instant.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DaySlots",
    "Slot",
    "SlotQuery",
    "StaffSchedule",
    "blocked_period",
    "find_day_slots",
    "find_slots",
    "is_slot_available",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_DAY = timedelta(days=1)
_MIDNIGHT = time(0)
_SECONDS_PER_DAY = 86_400
_MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class StaffSchedule:
    """One master's hours and commitments, as the slot engine needs them."""

    staff_id: int
    # weekday 0=Mon..6 -> working intervals (local wall clock); several a day = breaks between
    weekly_hours: dict[int, list[tuple[time, time]]]
    # a single date's intervals replace that weekday's hours; [] = day off
    overrides: dict[date, list[tuple[time, time]]]
    time_off: list[tuple[datetime, datetime]]  # aware, half-open
    # blocked periods of live bookings (buffers included), aware, half-open
    busy: list[tuple[datetime, datetime]]
    duration_min: int | None = None  # this master's own duration for the service
    # more busy ranges, as integer epoch seconds (what the database loader gives: no datetimes)
    busy_epoch: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class SlotQuery:
    """What to search: the business's zone and rules, the dates, and the masters."""

    tz: str  # IANA zone of the business, e.g. "Asia/Almaty"
    date_from: date  # inclusive, business-local
    date_to: date  # inclusive
    now: datetime  # aware; a parameter so tests control the clock
    duration_min: int
    buffer_before_min: int = 0
    buffer_after_min: int = 0
    step_min: int = 15
    min_notice_min: int = 60
    horizon_days: int = 60
    holidays: frozenset[date] = frozenset()
    staff: tuple[StaffSchedule, ...] = ()
    # dates that work with another weekday's hours (0 = Monday): a transferred working day
    works_as: Mapping[date, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # aware, in the business zone
    end: datetime  # start + duration in real time; excludes buffers
    staff_id: int


def blocked_period(
    start: datetime, duration_min: int, buffer_before_min: int, buffer_after_min: int
) -> tuple[datetime, datetime]:
    """The range a booking keeps its master busy: ``[start - before, start + duration + after)``.

    Computed in real time (not wall-clock arithmetic, which is wrong across a DST change) and
    returned in ``start``'s zone. This is what the database's exclusion constraint guards.
    """
    _require_aware(start, "start")
    instant = start.astimezone(UTC)
    begin = instant - timedelta(minutes=buffer_before_min)
    end = instant + timedelta(minutes=duration_min + buffer_after_min)
    return begin.astimezone(start.tzinfo), end.astimezone(start.tzinfo)


@dataclass(frozen=True, slots=True)
class DaySlots:
    """A day strip and one day's times: how many distinct free start times each local date of
    the query has, the chosen date, and that date's slots (as ``find_slots`` gives them)."""

    counts: dict[date, int]
    day: date
    slots: list[Slot]


def find_slots(query: SlotQuery) -> list[Slot]:
    """Every bookable (start, master) pair, sorted by (start, staff_id), without duplicates."""
    return _Found(query).slots(None)


def find_day_slots(query: SlotQuery, day: date | None) -> DaySlots:
    """The free start times counted per local date over the whole query, and the slots of
    ``day`` only: ``day`` itself when the query covers it, else the first date with a free
    time (``date_from`` when there is none). What a day picker needs, without building an
    object for every slot of a long horizon."""
    found = _Found(query)
    dates = []
    current = query.date_from
    while current <= query.date_to:
        dates.append(current)
        current += _DAY
    # the first instant of each date, and of the day after the last: the dates' boundaries
    bounds = [_wall_to_epoch(found.zone, datetime.combine(d, _MIDNIGHT), last=False)
              for d in [*dates, query.date_to + _DAY]]  # fmt: skip
    union: set[int] = set()
    for starts in found.starts:
        union.update(starts)
    distinct = sorted(union)
    edges = [bisect_left(distinct, bound) for bound in bounds]
    counts = {
        when: edges[index + 1] - edges[index]
        for index, when in enumerate(dates)
        if edges[index + 1] > edges[index]
    }
    if day is None or not query.date_from <= day <= query.date_to:
        day = min(counts) if counts else query.date_from
    index = (day - query.date_from).days
    return DaySlots(counts, day, found.slots((bounds[index], bounds[index + 1])))


class _Found:
    """Every master's bookable starts (epoch seconds, ascending, without duplicates); aware
    datetimes are made only for the slots asked for."""

    __slots__ = ("durations", "staff_ids", "starts", "zone")

    def __init__(self, query: SlotQuery) -> None:
        plan = _Plan(query)
        masters = sorted(query.staff, key=_staff_key)
        self.starts: list[list[int]] = []
        self.durations: list[int] = []
        for rank, staff in enumerate(masters):
            if rank and masters[rank - 1].staff_id == staff.staff_id:
                raise ValueError(f"staff {staff.staff_id} appears twice in the query")
            duration = plan.duration_of(staff)
            self.durations.append(duration)
            starts = plan.starts_for(staff, duration)
            if plan.intervals_overlap(staff):  # then a start may come twice, or out of order
                starts = sorted(set(starts))
            self.starts.append(starts)
        self.staff_ids = [staff.staff_id for staff in masters]
        self.zone = plan.zone

    def slots(self, within: tuple[int, int] | None) -> list[Slot]:
        """The slots starting in ``[begin, end)`` (all when None), sorted by (start, staff_id):
        one datetime object per instant, shared across masters."""
        count = len(self.starts)
        keys: list[int] = []  # one sortable integer per (start, master): start-major
        for rank, starts in enumerate(self.starts):
            if within is not None:
                starts = starts[bisect_left(starts, within[0]) : bisect_left(starts, within[1])]
            keys.extend([start * count + rank for start in starts])
        keys.sort()
        fromtimestamp = datetime.fromtimestamp
        zone = self.zone
        durations = self.durations
        staff_ids = self.staff_ids
        moments: dict[int, datetime] = {}
        moment = moments.get
        slots: list[Slot] = []
        append = slots.append
        for key in keys:
            start, rank = divmod(key, count)
            end = start + durations[rank]
            start_at = moment(start)
            if start_at is None:
                start_at = moments[start] = fromtimestamp(start, zone)
            end_at = moment(end)
            if end_at is None:
                end_at = moments[end] = fromtimestamp(end, zone)
            append(Slot(start_at, end_at, staff_ids[rank]))
        return slots


def is_slot_available(query: SlotQuery, staff_id: int, start: datetime) -> bool:
    """Whether ``find_slots(query)`` offers ``start`` (any zone, compared as an instant) with
    this master; cheap, because it looks only at the dates around ``start``."""
    _require_aware(start, "start")
    delta = start - _EPOCH
    if delta.microseconds:
        return False
    instant = delta.days * _SECONDS_PER_DAY + delta.seconds
    matches = [staff for staff in query.staff if staff.staff_id == staff_id]
    if not matches:
        return False
    if len(matches) > 1:
        raise ValueError(f"staff {staff_id} appears twice in the query")
    plan = _Plan(query, around=instant)
    staff = matches[0]
    return instant in plan.starts_for(staff, plan.duration_of(staff))


def _staff_key(staff: StaffSchedule) -> int:
    return staff.staff_id


def _require_aware(moment: datetime, name: str) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _seconds_of(delta: timedelta) -> int:
    return delta.days * _SECONDS_PER_DAY + delta.seconds


class _Plan:
    """One query's arithmetic: integer bounds, the dates worth looking at, cached conversions."""

    __slots__ = (
        "_bounds",
        "_days",
        "_hours",
        "after",
        "before",
        "duration",
        "earliest",
        "latest",
        "step",
        "zone",
    )

    def __init__(self, query: SlotQuery, around: int | None = None) -> None:
        if query.step_min <= 0:
            raise ValueError("step_min must be positive")
        if query.duration_min <= 0:
            raise ValueError("duration_min must be positive")
        if query.buffer_before_min < 0 or query.buffer_after_min < 0:
            raise ValueError("buffers cannot be negative")
        _require_aware(query.now, "now")
        self.zone = ZoneInfo(query.tz)
        self.step = query.step_min * 60
        self.duration = query.duration_min * 60
        self.before = query.buffer_before_min * 60
        self.after = query.buffer_after_min * 60
        now = query.now - _EPOCH
        now_us = _seconds_of(now) * _MICROS + now.microseconds
        # start >= now + notice and start < now + horizon, for integer-second starts.
        self.earliest = -(-(now_us + query.min_notice_min * 60 * _MICROS) // _MICROS)
        self.latest = -(-(now_us + query.horizon_days * _SECONDS_PER_DAY * _MICROS) // _MICROS) - 1
        self._bounds: dict[tuple[date, time, time], tuple[int, int] | None] = {}
        # masters who share their hours (most of a salon's) share their working intervals
        # (intervals, whether any two overlap) by the hours they come from
        self._hours: dict[tuple[Any, ...], tuple[list[tuple[int, int]], bool]] = {}

        first, last = query.date_from, query.date_to
        if self.earliest <= self.latest:
            # An interval of date d lies within d's wall-clock day; one day of margin each side
            # covers any zone's offset changes.
            first = max(first, self._local_date(self.earliest) - _DAY)
            last = min(last, self._local_date(self.latest) + _DAY)
        else:
            last = first - _DAY
        if around is not None:
            day = self._local_date(around)
            first = max(first, day - _DAY)
            last = min(last, day + _DAY)
        days: list[tuple[date, int]] = []
        works_as = query.works_as
        day = first
        while day <= last:
            if day not in query.holidays:
                days.append((day, works_as.get(day, day.weekday()) if works_as else day.weekday()))
            day += _DAY
        self._days = days

    def duration_of(self, staff: StaffSchedule) -> int:
        if staff.duration_min is None:
            return self.duration
        if staff.duration_min <= 0:
            raise ValueError(f"duration_min of staff {staff.staff_id} must be positive")
        return staff.duration_min * 60

    def starts_for(self, staff: StaffSchedule, duration: int) -> list[int]:
        """Epoch seconds of every bookable start for one master (ascending unless that master's
        working intervals overlap; the caller sorts and removes duplicates)."""
        intervals = self._working_intervals(staff)
        if not intervals:
            return []
        forbidden = _forbidden_starts(staff, duration + self.after, self.before)
        count = len(forbidden)
        step = self.step
        earliest = self.earliest
        latest = self.latest
        starts: list[int] = []
        extend = starts.extend
        skip = 0
        for opens, closes in intervals:
            low = opens if opens > earliest else earliest
            high = closes - duration
            if high > latest:
                high = latest
            if low > high:
                continue
            # Forbidden ranges are open, disjoint and ascending; those ending at or before
            # `low` cannot matter for this interval or any later one (`low` never decreases).
            while skip < count and forbidden[skip][1] <= low:
                skip += 1
            free_from = low
            index = skip
            while index < count:
                left, right = forbidden[index]
                if left >= high:
                    break
                if left >= free_from:  # [free_from, left] is free: `left` itself is allowed
                    first = opens - (opens - free_from) // step * step
                    if first <= left:
                        extend(range(first, left + 1, step))
                if right > free_from:
                    free_from = right
                index += 1
            if free_from <= high:
                first = opens - (opens - free_from) // step * step
                extend(range(first, high + 1, step))
        return starts

    def _working_intervals(self, staff: StaffSchedule) -> list[tuple[int, int]]:
        """The master's working intervals over the plan's days, as epoch seconds, ascending."""
        return self._working(staff)[0]

    def intervals_overlap(self, staff: StaffSchedule) -> bool:
        """Whether two of the master's working intervals overlap: then ``starts_for`` may give
        a start twice, or out of order."""
        return self._working(staff)[1]

    def _working(self, staff: StaffSchedule) -> tuple[list[tuple[int, int]], bool]:
        """Intervals and overlap, computed once per distinct set of hours (masters who share
        their hours share them; the callers only read the list)."""
        weekly = staff.weekly_hours
        overrides = staff.overrides
        key = (
            tuple(sorted((weekday, tuple(hours)) for weekday, hours in weekly.items())),
            tuple(sorted((day, tuple(hours)) for day, hours in overrides.items())),
        )
        known = self._hours.get(key)
        if known is None:
            intervals = self._intervals_of(weekly, overrides)
            overlap = any(b[0] < a[1] for a, b in pairwise(intervals))
            known = self._hours[key] = (intervals, overlap)
        return known

    def _intervals_of(
        self,
        weekly: dict[int, list[tuple[time, time]]],
        overrides: dict[date, list[tuple[time, time]]],
    ) -> list[tuple[int, int]]:
        bounds = self._bounds
        intervals: list[tuple[int, int]] = []
        for day, weekday in self._days:
            hours = overrides.get(day)
            if hours is None:
                hours = weekly.get(weekday)
                if not hours:
                    continue
            for opens, closes in hours:
                key = (day, opens, closes)
                if key in bounds:
                    found = bounds[key]
                else:
                    found = bounds[key] = _interval_bounds(self.zone, day, opens, closes)
                if found is not None:
                    intervals.append(found)
        intervals.sort()
        return intervals

    def _local_date(self, instant: int) -> date:
        return datetime.fromtimestamp(instant, self.zone).date()


@lru_cache(maxsize=16_384)
def _interval_bounds(
    zone: ZoneInfo, day: date, opens: time, closes: time
) -> tuple[int, int] | None:
    """A working interval as epoch seconds ``(begin, end)``, or None when it is empty."""
    begin = _wall_to_epoch(zone, datetime.combine(day, opens), last=False)
    if closes == _MIDNIGHT:
        end = _wall_to_epoch(zone, datetime.combine(day + _DAY, _MIDNIGHT), last=True)
    else:
        end = _wall_to_epoch(zone, datetime.combine(day, closes), last=True)
    return (begin, end) if begin < end else None


def _wall_to_epoch(zone: ZoneInfo, wall: datetime, *, last: bool) -> int:
    """The first (or, with ``last``, the last) instant the wall clock shows ``wall``; the
    transition instant when the clock skips it."""
    naive = _seconds_of(wall - _NAIVE_EPOCH)
    earlier_offset = wall.replace(tzinfo=zone).utcoffset()
    later_offset = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert earlier_offset is not None and later_offset is not None  # zoneinfo always has one
    by_earlier = naive - _seconds_of(earlier_offset)
    by_later = naive - _seconds_of(later_offset)
    if by_earlier == by_later:
        return by_earlier
    if by_earlier < by_later:  # the clock shows this time twice (fall back)
        return by_later if last else by_earlier
    # The clock skips this time (spring forward). PEP 495 maps fold=0 with the offset from
    # before the change (an instant after it) and fold=1 with the one after (an instant
    # before it); the transition lies between: find it to the second.
    before_change, after_change = by_later, by_earlier
    old_offset = datetime.fromtimestamp(before_change, zone).utcoffset()
    while after_change - before_change > 1:
        middle = (before_change + after_change) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == old_offset:
            before_change = middle
        else:
            after_change = middle
    return after_change


def _forbidden_starts(
    staff: StaffSchedule, reach_after: int, reach_before: int
) -> list[tuple[int, int]]:
    """Open ranges ``(left, right)`` of start instants whose blocked period would overlap a busy
    range or time off, merged and ascending.

    A start s is blocked by ``[b, e)`` when ``s - before < e`` and ``s + duration + after > b``,
    i.e. ``b - duration - after < s < e + before``.
    """
    spans: list[tuple[int, int]] = []
    append = spans.append
    try:
        for ranges in (staff.busy, staff.time_off):
            for begin, end in ranges:
                low = begin - _EPOCH
                high = end - _EPOCH
                # Floor the start and ceil the end: exact for integer-second slot instants.
                low_s = low.days * _SECONDS_PER_DAY + low.seconds
                high_s = high.days * _SECONDS_PER_DAY + high.seconds + (high.microseconds > 0)
                if high_s > low_s:  # an empty range blocks nothing
                    append((low_s - reach_after, high_s + reach_before))
    except TypeError:
        raise ValueError(
            f"busy and time_off of staff {staff.staff_id} must be timezone-aware datetimes"
        ) from None
    for low_s, high_s in staff.busy_epoch:
        if high_s > low_s:
            append((low_s - reach_after, high_s + reach_before))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for left, right in spans:
        # Open ranges that merely touch leave their common point free, so keep them apart.
        if merged and left < merged[-1][1]:
            if right > merged[-1][1]:
                merged[-1] = (merged[-1][0], right)
        else:
            merged.append((left, right))
    return merged
