"""Micro-benchmark of the slot engine: a salon of 10 masters searched over 30 days, and a clinic
of 50 masters over 60 days (issue 17).

Each master works 10:00-14:00 and 15:00-20:00, Monday to Saturday, with about five bookings a
day; the service takes 60 minutes plus a 10-minute buffer after, on a 15-minute grid.
The targets: a median well under 5 ms per ``find_slots`` call for the salon, under 10 ms for
the clinic.
"""

from __future__ import annotations

import random
import statistics
import time as clock
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domain.availability import SlotQuery, StaffSchedule, blocked_period, find_slots

ZONE = "Asia/Almaty"
MASTERS = 10
DAYS = 30
BOOKINGS_PER_DAY = 5
DURATION_MIN = 60
BUFFER_AFTER_MIN = 10
STEP_MIN = 15
HOURS = [(time(10), time(14)), (time(15), time(20))]


SALON = (MASTERS, DAYS)
CLINIC = (50, 60)


def build_query(seed: int = 2026, masters: int = MASTERS, days: int = DAYS) -> SlotQuery:
    """``masters`` x ``days`` (10 x 30 by default), deterministic for a given seed."""
    rng = random.Random(seed)
    zone = ZoneInfo(ZONE)
    first_day = date(2026, 12, 1)
    now = datetime.combine(first_day - timedelta(days=1), time(18), tzinfo=zone)
    weekly = {weekday: list(HOURS) for weekday in range(6)}
    staff = []
    for staff_id in range(1, masters + 1):
        busy: list[tuple[int, int]] = []
        for offset in range(days):
            day = first_day + timedelta(days=offset)
            if day.weekday() == 6:
                continue
            candidates = [
                datetime.combine(day, opens, tzinfo=zone) + timedelta(minutes=minute)
                for opens, closes in HOURS
                for minute in range(
                    0,
                    (closes.hour - opens.hour) * 60 - DURATION_MIN + 1,
                    STEP_MIN,
                )
            ]
            rng.shuffle(candidates)
            taken: list[tuple[datetime, datetime]] = []
            for start in candidates:
                period = blocked_period(start, DURATION_MIN, 0, BUFFER_AFTER_MIN)
                if all(period[1] <= other[0] or other[1] <= period[0] for other in taken):
                    taken.append(period)
                if len(taken) == BOOKINGS_PER_DAY:
                    break
            busy.extend((int(begin.timestamp()), int(end.timestamp())) for begin, end in taken)
        rng.shuffle(busy)  # the engine must not rely on the caller's order
        # as the database loader (app.domain.availability_reader) gives them: epoch seconds
        staff.append(
            StaffSchedule(
                staff_id=staff_id,
                weekly_hours=weekly,
                overrides={},
                time_off=[],
                busy=[],
                busy_epoch=tuple(busy),
            )
        )
    return SlotQuery(
        tz=ZONE,
        date_from=first_day,
        date_to=first_day + timedelta(days=days - 1),
        now=now,
        duration_min=DURATION_MIN,
        buffer_after_min=BUFFER_AFTER_MIN,
        step_min=STEP_MIN,
        staff=tuple(staff),
    )


def run(repeats: int = 200, shape: tuple[int, int] = SALON) -> dict[str, float | int]:
    """Time ``find_slots`` on the ``(masters, days)`` scenario; milliseconds per call."""
    query = build_query(masters=shape[0], days=shape[1])
    for _ in range(5):  # warm caches (zoneinfo, allocator) before measuring
        slots = find_slots(query)
    timings = []
    for _ in range(repeats):
        started = clock.perf_counter()
        slots = find_slots(query)
        timings.append((clock.perf_counter() - started) * 1000)
    timings.sort()
    p99 = timings[min(len(timings) - 1, max(0, -(-len(timings) * 99 // 100) - 1))]
    return {
        "median_ms": round(statistics.median(timings), 3),
        "p99_ms": round(p99, 3),
        "slots": len(slots),
    }


if __name__ == "__main__":
    print("salon 10 x 30:", run())
    print("clinic 50 x 60:", run(50, CLINIC))
