"""The slot engine against hand-worked examples and against a brute-force reference.

The reference below shares no code with ``app.domain.availability``: it finds where a wall-clock
time falls in real time by scanning every minute of the day with ``astimezone``, walks each
working interval's grid candidate by candidate in UTC datetimes, and checks every busy range.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.availability import (
    Slot,
    SlotQuery,
    StaffSchedule,
    blocked_period,
    find_day_slots,
    find_slots,
    is_slot_available,
)

ALMATY = ZoneInfo("Asia/Almaty")
BERLIN = ZoneInfo("Europe/Berlin")
MIDNIGHT = time(0)
PROPERTY_SETTINGS = settings(deadline=None, max_examples=200)

# 2026-12-01 is a Tuesday; 2026-12-05 a Saturday, 2026-12-06 a Sunday.
TUESDAY = date(2026, 12, 1)
SATURDAY = date(2026, 12, 5)
DAY_HOURS = [(time(10), time(14)), (time(15), time(20))]
WEEKDAYS = {weekday: DAY_HOURS for weekday in range(5)}


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = ALMATY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def master(
    staff_id: int = 1,
    weekly: dict[int, list[tuple[time, time]]] | None = None,
    overrides: dict[date, list[tuple[time, time]]] | None = None,
    time_off: list[tuple[datetime, datetime]] | None = None,
    busy: list[tuple[datetime, datetime]] | None = None,
    duration_min: int | None = None,
) -> StaffSchedule:
    return StaffSchedule(
        staff_id=staff_id,
        weekly_hours=WEEKDAYS if weekly is None else weekly,
        overrides=overrides or {},
        time_off=time_off or [],
        busy=busy or [],
        duration_min=duration_min,
    )


def query(*staff: StaffSchedule, day: date = TUESDAY, **options: object) -> SlotQuery:
    fields: dict[str, object] = {
        "tz": "Asia/Almaty",
        "date_from": day,
        "date_to": day,
        "now": at(day - timedelta(days=1), 12),
        "duration_min": 60,
        "step_min": 60,
        "staff": staff or (master(),),
    }
    fields.update(options)
    return SlotQuery(**fields)  # type: ignore[arg-type]


def local_starts(slots: list[Slot]) -> list[str]:
    return [slot.start.strftime("%H:%M") for slot in slots]


# --- time zones -------------------------------------------------------------------------------


def test_almaty_is_utc_plus_five_without_dst_since_march_2024() -> None:
    slots = find_slots(query(master(weekly={1: [(time(10), time(11))]})))
    assert [slot.start.isoformat() for slot in slots] == ["2026-12-01T10:00:00+05:00"]
    assert slots[0].start.astimezone(UTC) == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert slots[0].end.isoformat() == "2026-12-01T11:00:00+05:00"
    assert at(date(2026, 7, 1), 10).utcoffset() == timedelta(hours=5)  # no summer time
    assert at(date(2024, 2, 1), 10).utcoffset() == timedelta(
        hours=6
    )  # before tzdata 2024a's change


def berlin_day(day: date, hours: list[tuple[time, time]], **options: object) -> list[Slot]:
    staff = master(weekly={day.weekday(): hours})
    return find_slots(
        query(
            staff,
            day=day,
            tz="Europe/Berlin",
            now=at(day - timedelta(days=2), 12, 0, BERLIN),
            **options,
        )
    )


def test_berlin_spring_forward_has_no_slots_at_missing_times_and_a_shorter_interval() -> None:
    slots = berlin_day(date(2026, 3, 29), [(time(0), time(6))])
    # 00:00-06:00 on the wall is five real hours: 02:00-03:00 does not exist.
    assert [slot.start.isoformat() for slot in slots] == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
        "2026-03-29T05:00:00+02:00",
    ]
    # The slot before the gap lasts one real hour, so it ends at 03:00 summer time.
    assert slots[1].end.isoformat() == "2026-03-29T03:00:00+02:00"


def test_berlin_spring_forward_fine_grid_skips_the_gap_without_losing_instants() -> None:
    slots = berlin_day(date(2026, 3, 29), [(time(1), time(4))], duration_min=15, step_min=15)
    instants = [utc(slot.start) for slot in slots]
    assert len(instants) == 8  # two real hours, four starts each
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(instants))
    assert not any(slot.start.hour == 2 for slot in slots)


def test_berlin_interval_starting_inside_the_gap_opens_when_the_clock_resumes() -> None:
    slots = berlin_day(date(2026, 3, 29), [(time(2, 30), time(5))])
    assert [slot.start.isoformat() for slot in slots] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_berlin_fall_back_interval_is_an_hour_longer_without_duplicate_instants() -> None:
    slots = berlin_day(date(2026, 10, 25), [(time(0), time(6))])
    assert [slot.start.isoformat() for slot in slots] == [
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
        "2026-10-25T05:00:00+01:00",
    ]
    instants = [utc(slot.start) for slot in slots]
    assert len(set(instants)) == len(instants)
    assert slots[2].end.isoformat() == "2026-10-25T02:00:00+01:00"  # one real hour later


def test_berlin_ordinary_hours_on_dst_days_are_unaffected() -> None:
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        slots = berlin_day(day, [(time(10), time(13))])
        assert local_starts(slots) == ["10:00", "11:00", "12:00"]


def test_blocked_period_uses_real_time_across_a_dst_change() -> None:
    start = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    begin, end = blocked_period(start, 60, 15, 10)
    assert begin.isoformat() == "2026-03-29T01:15:00+01:00"
    assert end.isoformat() == "2026-03-29T03:40:00+02:00"
    assert utc(end) - utc(start) == timedelta(minutes=70)
    begin, _ = blocked_period(datetime(2026, 3, 29, 3, 10, tzinfo=BERLIN), 60, 15, 0)
    assert begin.isoformat() == "2026-03-29T01:55:00+01:00"


# --- working hours ----------------------------------------------------------------------------


def test_breaks_split_the_day_and_a_slot_cannot_span_one() -> None:
    slots = find_slots(query())
    assert local_starts(slots) == ["10:00", "11:00", "12:00", "13:00"] + [
        f"{hour}:00" for hour in range(15, 20)
    ]
    assert all(length(slot) == timedelta(minutes=60) for slot in slots)


def test_weekly_day_without_hours_has_no_slots() -> None:
    assert find_slots(query(day=SATURDAY)) == []


def test_override_day_off_closes_a_working_day() -> None:
    staff = master(overrides={TUESDAY: []})
    assert find_slots(query(staff)) == []


def test_override_opens_an_extra_working_saturday() -> None:
    staff = master(overrides={SATURDAY: [(time(9), time(11))]})
    assert local_starts(find_slots(query(staff, day=SATURDAY))) == ["09:00", "10:00"]


def test_override_replaces_the_weekday_hours_instead_of_adding_to_them() -> None:
    staff = master(overrides={TUESDAY: [(time(18), time(21))]})
    assert local_starts(find_slots(query(staff))) == ["18:00", "19:00", "20:00"]


def test_masters_with_the_same_weekly_hours_keep_their_own_overrides() -> None:
    """Masters sharing their hours share the engine's working intervals; a day off or extra
    hours of one of them must stay theirs."""
    usual = master(staff_id=1)
    off = master(staff_id=2, overrides={TUESDAY: []})
    late = master(staff_id=3, overrides={TUESDAY: [(time(18), time(21))]})
    slots = find_slots(query(usual, off, late))
    by_master = {
        staff_id: [
            s.start.astimezone(ALMATY).strftime("%H:%M") for s in slots if s.staff_id == staff_id
        ]
        for staff_id in (1, 2, 3)
    }
    assert by_master[1] == local_starts(find_slots(query(master(staff_id=1))))
    assert by_master[1][:2] == ["10:00", "11:00"]
    assert by_master[2] == []
    assert by_master[3] == ["18:00", "19:00", "20:00"]


def test_holiday_closes_the_day_even_for_an_override() -> None:
    staff = master(overrides={TUESDAY: [(time(9), time(12))]})
    assert find_slots(query(staff, holidays=frozenset({TUESDAY}))) == []
    other_day = TUESDAY + timedelta(days=1)
    both = query(staff, date_from=TUESDAY, date_to=other_day, holidays=frozenset({TUESDAY}))
    assert {slot.start.date() for slot in find_slots(both)} == {other_day}


def test_midnight_end_means_the_end_of_the_day() -> None:
    staff = master(weekly={1: [(time(22), MIDNIGHT)]})
    slots = find_slots(query(staff))
    assert [slot.end.isoformat() for slot in slots] == [
        "2026-12-01T23:00:00+05:00",
        "2026-12-02T00:00:00+05:00",
    ]


def test_inverted_interval_is_ignored() -> None:
    staff = master(weekly={1: [(time(14), time(10)), (time(16), time(17))]})
    assert local_starts(find_slots(query(staff))) == ["16:00"]


def test_time_off_blocks_the_slots_it_overlaps_and_touching_is_fine() -> None:
    staff = master(time_off=[(at(TUESDAY, 11), at(TUESDAY, 16))])
    assert local_starts(find_slots(query(staff))) == ["10:00", "16:00", "17:00", "18:00", "19:00"]


def test_step_grid_counts_from_the_start_of_each_interval() -> None:
    staff = master(weekly={1: [(time(10, 10), time(12)), (time(13, 5), time(14))]})
    slots = find_slots(query(staff, duration_min=20, step_min=30))
    assert local_starts(slots) == ["10:10", "10:40", "11:10", "11:40", "13:05", "13:35"]


# --- the clock --------------------------------------------------------------------------------


def test_min_notice_hides_early_starts_and_keeps_the_grid() -> None:
    now = at(TUESDAY, 9, 20)
    slots = find_slots(query(now=now, min_notice_min=60, step_min=15, duration_min=60))
    assert local_starts(slots)[:3] == ["10:30", "10:45", "11:00"]  # 10:20 is not on the grid
    exact = find_slots(query(now=at(TUESDAY, 9, 30), min_notice_min=60, step_min=15))
    assert local_starts(exact)[0] == "10:30"  # start == now + notice is allowed


def test_min_notice_with_seconds_in_now_rounds_up() -> None:
    now = at(TUESDAY, 9, 0) + timedelta(microseconds=1)
    slots = find_slots(query(now=now, min_notice_min=60, step_min=60))
    assert local_starts(slots)[0] == "11:00"


def test_horizon_excludes_starts_at_or_after_now_plus_horizon() -> None:
    now = at(TUESDAY - timedelta(days=1), 12)
    slots = find_slots(query(now=now, horizon_days=1, min_notice_min=0))
    assert local_starts(slots) == ["10:00", "11:00"]  # 12:00 is exactly the horizon


def test_horizon_stops_long_ranges() -> None:
    now = at(TUESDAY, 0)
    far = query(now=now, date_from=TUESDAY, date_to=TUESDAY + timedelta(days=400), horizon_days=7)
    days = {slot.start.date() for slot in find_slots(far)}
    assert max(days) < TUESDAY + timedelta(days=7)


# --- durations and buffers --------------------------------------------------------------------


def test_per_staff_duration_overrides_the_service_duration() -> None:
    staff = master(weekly={1: [(time(10), time(13))]}, duration_min=90)
    slots = find_slots(query(staff, step_min=30))
    assert local_starts(slots) == ["10:00", "10:30", "11:00", "11:30"]
    assert all(length(slot) == timedelta(minutes=90) for slot in slots)


def test_a_bookings_buffer_blocks_adjacent_slots_and_touching_ranges_are_fine() -> None:
    booked = blocked_period(at(TUESDAY, 12), 60, 0, 10)  # 12:00-13:10
    staff = master(weekly={1: [(time(10), time(15))]}, busy=[booked])
    slots = find_slots(query(staff, step_min=10, buffer_after_min=10))
    starts = local_starts(slots)
    assert "10:50" in starts  # 10:50-11:50, buffer to 12:00 touches the booking
    assert "11:00" not in starts  # its buffer would run to 12:10
    assert "13:00" not in starts  # inside the booking's own buffer
    assert "13:10" in starts  # starts where the booking's buffer ends
    assert starts == ["10:00", "10:10", "10:20", "10:30", "10:40", "10:50"] + [
        f"{hour}:{minute:02}" for hour, minute in [(13, 10), (13, 20), (13, 30), (13, 40), (13, 50)]
    ] + ["14:00"]


def test_a_slot_that_exactly_fills_the_gap_between_two_bookings_is_offered() -> None:
    first = blocked_period(at(TUESDAY, 10), 60, 5, 10)  # 09:55-11:10
    second = blocked_period(at(TUESDAY, 12, 30), 60, 5, 10)  # 12:25-13:40
    staff = master(weekly={1: [(time(10), time(15))]}, busy=[second, first])
    slots = find_slots(query(staff, step_min=5, buffer_before_min=5, buffer_after_min=10))
    # 11:15-12:15 blocks 11:10-12:25 with its buffers: it touches both bookings.
    assert local_starts(slots) == ["11:15", "13:45", "13:50", "13:55", "14:00"]


def test_an_empty_busy_range_blocks_nothing() -> None:
    staff = master(weekly={1: [(time(10), time(12))]}, busy=[(at(TUESDAY, 10, 30),) * 2])
    assert local_starts(find_slots(query(staff))) == ["10:00", "11:00"]


def test_buffer_before_reaches_back_from_the_start() -> None:
    staff = master(weekly={1: [(time(10), time(14))]}, busy=[(at(TUESDAY, 10), at(TUESDAY, 11))])
    slots = find_slots(query(staff, step_min=15, buffer_before_min=15))
    assert local_starts(slots)[0] == "11:15"


def test_buffers_may_reach_outside_working_hours() -> None:
    staff = master(weekly={1: [(time(10), time(12))]})
    slots = find_slots(query(staff, buffer_before_min=30, buffer_after_min=30))
    assert local_starts(slots) == ["10:00", "11:00"]


def test_blocked_period_is_start_minus_before_to_end_plus_after() -> None:
    begin, end = blocked_period(at(TUESDAY, 12), 60, 5, 10)
    assert (begin, end) == (at(TUESDAY, 11, 55), at(TUESDAY, 13, 10))


# --- several masters --------------------------------------------------------------------------


def test_any_master_lists_one_item_per_start_and_master_sorted_by_start_then_staff() -> None:
    late = master(staff_id=7, weekly={1: [(time(10), time(12))]})
    early = master(staff_id=3, weekly={1: [(time(9), time(11))]})
    slots = find_slots(query(late, early))
    assert [(slot.start.strftime("%H:%M"), slot.staff_id) for slot in slots] == [
        ("09:00", 3),
        ("10:00", 3),
        ("10:00", 7),
        ("11:00", 7),
    ]


def test_any_master_uses_each_masters_own_duration() -> None:
    quick = master(staff_id=1, weekly={1: [(time(10), time(11))]}, duration_min=30)
    slow = master(staff_id=2, weekly={1: [(time(10), time(11))]})
    slots = find_slots(query(quick, slow, step_min=30))
    assert [(slot.staff_id, length(slot)) for slot in slots] == [
        (1, timedelta(minutes=30)),
        (2, timedelta(minutes=60)),
        (1, timedelta(minutes=30)),
    ]


def test_a_master_listed_twice_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        find_slots(query(master(staff_id=4), master(staff_id=4)))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        find_slots(query(now=datetime(2026, 11, 30, 12)))
    naive_busy = master(busy=[(datetime(2026, 12, 1, 10), datetime(2026, 12, 1, 11))])
    with pytest.raises(ValueError, match="aware"):
        find_slots(query(naive_busy))


def test_is_slot_available_examples() -> None:
    booked = blocked_period(at(TUESDAY, 12), 60, 0, 0)
    search = query(master(staff_id=5, busy=[booked]))
    assert is_slot_available(search, 5, datetime(2026, 12, 1, 6, tzinfo=UTC))  # 11:00 local
    assert not is_slot_available(search, 5, at(TUESDAY, 12))  # booked
    assert not is_slot_available(search, 5, at(TUESDAY, 11, 30))  # off the grid
    assert not is_slot_available(search, 5, at(TUESDAY, 11) + timedelta(microseconds=1))
    assert not is_slot_available(search, 6, at(TUESDAY, 11))  # no such master
    assert not is_slot_available(search, 5, at(TUESDAY + timedelta(days=1), 11))  # outside range


# --- brute-force reference --------------------------------------------------------------------


@functools.cache
def _minute_table(tz: str, day: date) -> list[tuple[datetime, datetime]]:
    """(UTC instant, local wall clock) for every minute from well before to well after ``day``."""
    zone = ZoneInfo(tz)
    first = datetime.combine(day, MIDNIGHT, tzinfo=UTC) - timedelta(hours=15)
    table = []
    for minute in range(54 * 60):
        instant = first + timedelta(minutes=minute)
        table.append((instant, instant.astimezone(zone).replace(tzinfo=None)))
    return table


@functools.cache
def reference_boundary(tz: str, day: date, wall: time, *, last: bool) -> datetime:
    """First (or last) instant the clock shows ``wall`` on ``day``; when the clock skips it,
    the minute it resumes."""
    target = datetime.combine(day, wall)
    table = _minute_table(tz, day)
    if not last:
        return next(instant for instant, shown in table if shown >= target)
    instant, shown = [(instant, shown) for instant, shown in table if shown <= target][-1]
    return instant if shown == target else instant + timedelta(minutes=1)


def reference_intervals(
    query: SlotQuery, staff: StaffSchedule, day: date
) -> list[tuple[datetime, datetime]]:
    if day in query.holidays:
        return []
    hours = (
        staff.overrides[day]
        if day in staff.overrides
        else staff.weekly_hours.get(day.weekday(), [])
    )
    intervals = []
    for opens, closes in hours:
        begin = reference_boundary(query.tz, day, opens, last=False)
        if closes == MIDNIGHT:
            end = reference_boundary(query.tz, day + timedelta(days=1), MIDNIGHT, last=True)
        else:
            end = reference_boundary(query.tz, day, closes, last=True)
        if begin < end:
            intervals.append((begin, end))
    return intervals


def utc(moment: datetime) -> datetime:
    """Compare and add in UTC: Python compares and subtracts datetimes of one zone by wall
    clock, ignoring ``fold`` and DST."""
    return moment.astimezone(UTC)


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    """Half-open ranges share an instant (an empty range shares none)."""
    return max(utc(a[0]), utc(b[0])) < min(utc(a[1]), utc(b[1]))


def length(slot: Slot) -> timedelta:
    return utc(slot.end) - utc(slot.start)


def duration_of(query: SlotQuery, staff: StaffSchedule) -> timedelta:
    minutes = query.duration_min if staff.duration_min is None else staff.duration_min
    return timedelta(minutes=minutes)


def reference_slots(query: SlotQuery) -> list[tuple[datetime, datetime, int]]:
    """Every grid candidate of every interval, checked one by one; UTC (start, end, staff)."""
    found = set()
    earliest = utc(query.now) + timedelta(minutes=query.min_notice_min)
    horizon = utc(query.now) + timedelta(days=query.horizon_days)
    before = timedelta(minutes=query.buffer_before_min)
    after = timedelta(minutes=query.buffer_after_min)
    step = timedelta(minutes=query.step_min)
    for staff in query.staff:
        duration = duration_of(query, staff)
        taken = [(utc(begin), utc(end)) for begin, end in staff.busy + staff.time_off]
        day = query.date_from
        while day <= query.date_to:
            for begin, end in reference_intervals(query, staff, day):
                start = begin
                while start + duration <= end:
                    blocked = (start - before, start + duration + after)
                    if earliest <= start < horizon and not any(
                        overlaps(blocked, busy) for busy in taken
                    ):
                        found.add((start, start + duration, staff.staff_id))
                    start += step
            day += timedelta(days=1)
    return sorted(found, key=lambda slot: (slot[0], slot[2]))


def as_utc(slots: list[Slot]) -> list[tuple[datetime, datetime, int]]:
    return [(utc(slot.start), utc(slot.end), slot.staff_id) for slot in slots]


# --- generated schedules ----------------------------------------------------------------------

ZONES = ["Asia/Almaty", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe"]
# Offset changes in 2026: Berlin's two, Santiago's (at midnight), Lord Howe's (half an hour).
ANCHOR_DAYS = [
    date(2026, 3, 29),
    date(2026, 10, 25),
    date(2026, 4, 4),
    date(2026, 9, 6),
    date(2026, 4, 5),
    date(2026, 10, 4),
    date(2026, 12, 1),
]


@st.composite
def wall_intervals(draw: st.DrawFn) -> list[tuple[time, time]]:
    intervals = []
    for _ in range(draw(st.sampled_from([2, 1, 3, 0]))):
        opens = draw(st.integers(0, 287)) * 5 + draw(st.sampled_from([0, 0, 0, 2]))
        length = draw(st.integers(1, 144)) * 5
        closes = opens + length
        closing = MIDNIGHT if closes >= 24 * 60 else time(closes // 60, closes % 60)
        intervals.append((time(opens // 60, opens % 60), closing))
    return intervals


@st.composite
def ranges(draw: st.DrawFn, zone: ZoneInfo, window_start: datetime) -> tuple[datetime, datetime]:
    begin = window_start + timedelta(minutes=draw(st.integers(0, 5 * 24 * 12)) * 5)
    begin += timedelta(seconds=draw(st.sampled_from([0, 0, 0, 30])))
    end = begin + timedelta(minutes=draw(st.integers(0, 60)) * 5)
    end += timedelta(microseconds=draw(st.sampled_from([0, 0, 0, 1])))
    shown_in = draw(st.sampled_from([UTC, zone]))
    return begin.astimezone(shown_in), end.astimezone(shown_in)


@st.composite
def slot_queries(draw: st.DrawFn) -> SlotQuery:
    tz = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(tz)
    date_from = draw(st.sampled_from(ANCHOR_DAYS)) + timedelta(days=draw(st.integers(-2, 1)))
    date_to = date_from + timedelta(days=draw(st.integers(0, 2)))
    days = [date_from + timedelta(days=offset) for offset in range((date_to - date_from).days + 1)]
    window_start = datetime.combine(date_from, MIDNIGHT, tzinfo=UTC) - timedelta(days=1)
    staff_ids = draw(st.lists(st.integers(1, 40), min_size=1, max_size=3, unique=True))
    staff = []
    for staff_id in staff_ids:
        weekly = {weekday: draw(wall_intervals()) for weekday in range(7)}
        overrides = {day: draw(wall_intervals()) for day in draw(st.sets(st.sampled_from(days)))}
        staff.append(
            StaffSchedule(
                staff_id=staff_id,
                weekly_hours=weekly,
                overrides=overrides,
                time_off=draw(st.lists(ranges(zone, window_start), max_size=2)),
                busy=draw(st.lists(ranges(zone, window_start), max_size=6)),
                duration_min=draw(st.none() | st.integers(1, 24).map(lambda n: n * 5)),
            )
        )
    now = window_start + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    now += timedelta(microseconds=draw(st.sampled_from([0, 0, 500_000])))
    return SlotQuery(
        tz=tz,
        date_from=date_from,
        date_to=date_to,
        now=now.astimezone(draw(st.sampled_from([UTC, zone]))),
        duration_min=draw(st.sampled_from([30, 60, 5, 45, 90, 180, 25])),
        buffer_before_min=draw(st.sampled_from([0, 0, 5, 10, 30])),
        buffer_after_min=draw(st.sampled_from([0, 0, 5, 10, 15])),
        step_min=draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60])),
        min_notice_min=draw(st.sampled_from([0, 30, 60, 180])),
        horizon_days=draw(st.sampled_from([60, 1, 2, 3])),
        holidays=frozenset(draw(st.sets(st.sampled_from(days), max_size=1))),
        staff=tuple(staff),
    )


@PROPERTY_SETTINGS
@given(slot_queries())
def test_matches_the_brute_force_reference(search: SlotQuery) -> None:
    slots = find_slots(search)
    assert as_utc(slots) == reference_slots(search)
    zone = ZoneInfo(search.tz)
    for slot in slots:  # shown in the business zone, with the offset right for that instant
        for moment in (slot.start, slot.end):
            assert moment.tzinfo is zone
            assert moment.utcoffset() == utc(moment).astimezone(zone).utcoffset()


@PROPERTY_SETTINGS
@given(slot_queries(), st.data())
def test_day_slots_count_each_dates_times_and_give_the_chosen_dates_slots(
    search: SlotQuery, data: st.DataObject
) -> None:
    every = find_slots(search)
    zone = ZoneInfo(search.tz)
    starts: dict[date, set[datetime]] = {}  # distinct instants (a fall-back hour shows twice)
    for slot in every:
        starts.setdefault(slot.start.astimezone(zone).date(), set()).add(utc(slot.start))
    asked = data.draw(st.one_of(st.none(), st.dates(search.date_from - timedelta(days=2),
                                                    search.date_to + timedelta(days=2))))  # fmt: skip
    found = find_day_slots(search, asked)
    assert found.counts == {day: len(times) for day, times in starts.items()}
    if asked is not None and search.date_from <= asked <= search.date_to:
        assert found.day == asked
    else:
        assert found.day == (min(starts) if starts else search.date_from)
    assert found.slots == [s for s in every if s.start.astimezone(zone).date() == found.day]


@given(slot_queries())
def test_no_blocked_period_overlaps_busy_or_time_off(search: SlotQuery) -> None:
    by_id = {staff.staff_id: staff for staff in search.staff}
    for slot in find_slots(search):
        staff = by_id[slot.staff_id]
        blocked = blocked_period(
            slot.start,
            int(length(slot).total_seconds()) // 60,
            search.buffer_before_min,
            search.buffer_after_min,
        )
        for busy in staff.busy + staff.time_off:
            assert not overlaps(blocked, busy)


@PROPERTY_SETTINGS
@given(slot_queries())
def test_every_slot_lies_on_the_grid_of_a_working_interval_of_its_local_date(
    search: SlotQuery,
) -> None:
    zone = ZoneInfo(search.tz)
    by_id = {staff.staff_id: staff for staff in search.staff}
    step = timedelta(minutes=search.step_min)
    for slot in find_slots(search):
        staff = by_id[slot.staff_id]
        start, end = utc(slot.start), utc(slot.end)
        assert end - start == duration_of(search, staff)
        local_day = slot.start.astimezone(zone).date()
        assert search.date_from <= local_day <= search.date_to
        assert utc(search.now) + timedelta(minutes=search.min_notice_min) <= start
        assert start < utc(search.now) + timedelta(days=search.horizon_days)
        assert any(
            opens <= start and end <= closes and (start - opens) % step == timedelta(0)
            for opens, closes in reference_intervals(search, staff, local_day)
        )


@PROPERTY_SETTINGS
@given(slot_queries())
def test_results_are_sorted_and_unique(search: SlotQuery) -> None:
    keys = [(utc(slot.start), slot.staff_id) for slot in find_slots(search)]
    assert all(a < b for a, b in pairwise(keys))


@PROPERTY_SETTINGS
@given(slot_queries(), st.data())
def test_booking_a_slot_removes_it_and_its_overlaps_for_that_master_only(
    search: SlotQuery, data: st.DataObject
) -> None:
    before = find_slots(search)
    if not before:
        return
    chosen = data.draw(st.sampled_from(before))
    by_id = {staff.staff_id: staff for staff in search.staff}

    def blocked(slot: Slot) -> tuple[datetime, datetime]:
        duration = duration_of(search, by_id[slot.staff_id])
        return (
            utc(slot.start) - timedelta(minutes=search.buffer_before_min),
            utc(slot.start) + duration + timedelta(minutes=search.buffer_after_min),
        )

    new_booking = blocked_period(
        chosen.start,
        int(duration_of(search, by_id[chosen.staff_id]).total_seconds()) // 60,
        search.buffer_before_min,
        search.buffer_after_min,
    )
    assert (utc(new_booking[0]), utc(new_booking[1])) == blocked(chosen)
    staff = tuple(
        replace(member, busy=[*member.busy, new_booking])
        if member.staff_id == chosen.staff_id
        else member
        for member in search.staff
    )
    after = as_utc(find_slots(replace(search, staff=staff)))
    assert (utc(chosen.start), utc(chosen.end), chosen.staff_id) not in after
    expected = [
        slot
        for slot in before
        if slot.staff_id != chosen.staff_id or not overlaps(blocked(slot), blocked(chosen))
    ]
    assert after == as_utc(expected)


@PROPERTY_SETTINGS
@given(slot_queries(), st.data())
def test_is_slot_available_agrees_with_find_slots(search: SlotQuery, data: st.DataObject) -> None:
    slots = find_slots(search)
    offered = {(utc(slot.start), slot.staff_id) for slot in slots}
    for slot in slots:
        assert is_slot_available(search, slot.staff_id, slot.start)
    staff_ids = [staff.staff_id for staff in search.staff] + [999]
    base = datetime.combine(search.date_from, MIDNIGHT, tzinfo=UTC) - timedelta(hours=14)
    for _ in range(20):
        candidate = base + timedelta(minutes=data.draw(st.integers(0, 5 * 24 * 12)) * 5)
        candidate = candidate.astimezone(data.draw(st.sampled_from([UTC, ZoneInfo(search.tz)])))
        staff_id = data.draw(st.sampled_from(staff_ids))
        expected = (utc(candidate), staff_id) in offered
        assert is_slot_available(search, staff_id, candidate) == expected
