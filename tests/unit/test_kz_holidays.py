"""Kazakhstan's public holidays and decree transfers in the slot engine's input (pure: the
document ``pz_schedule`` gives, built into a query by ``build_query``), with written-out dates.

The business is closed on weekends and works 10:00–14:00 and 15:00–20:00 on weekdays, except
Wednesday (11:00–13:00) and Friday (12:00–16:00), so a transferred working day shows whose hours
it borrowed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from app.domain import business_days
from app.domain.availability import find_slots
from app.domain.availability_reader import Offer, Schedule, build_query
from app.domain.business_days import Transfer, public_days
from app.i18n import use_locale

ZONE = ZoneInfo("Asia/Almaty")
STAFF = 7
NOW = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)  # before every date asked about (horizon: years)


@dataclass(frozen=True)
class Rules:
    timezone: str = "Asia/Almaty"
    slot_step_min: int = 60
    min_notice_min: int = 0
    horizon_days: int = 3000
    observe_public_holidays: bool = True


@dataclass(frozen=True)
class Timing:
    duration_min: int = 60
    buffer_before_min: int = 0
    buffer_after_min: int = 0


def _seconds(hour: int, minute: int = 0) -> int:
    return hour * 3600 + minute * 60


HOURS: list[tuple[int, int, int, int]] = []
for _weekday in (0, 1, 3):
    HOURS += [(STAFF, _weekday, _seconds(10), _seconds(14)),
              (STAFF, _weekday, _seconds(15), _seconds(20))]  # fmt: skip
HOURS.append((STAFF, 2, _seconds(11), _seconds(13)))  # Wednesday
HOURS.append((STAFF, 4, _seconds(12), _seconds(16)))  # Friday
SCHEDULE = Schedule(hours=HOURS, overrides=[], blocked=[], closed=[])


def starts(day: date, *, observe: bool = True, schedule: Schedule = SCHEDULE) -> list[time]:
    query = build_query(
        Rules(observe_public_holidays=observe), Timing(), {STAFF: Offer(STAFF, 60, 0)},
        schedule, [STAFF], day, day, NOW,
    )  # fmt: skip
    return [slot.start.astimezone(ZONE).time() for slot in find_slots(query)]


WEDNESDAY = [time(11), time(12)]
FRIDAY = [time(12), time(13), time(14), time(15)]
USUAL = [time(h) for h in (10, 11, 12, 13, 15, 16, 17, 18, 19)]


def test_a_transferred_working_saturday_works_with_the_moved_weekdays_hours() -> None:
    # 2024: the day off of Wednesday 8 May moved to Saturday 4 May
    assert date(2024, 5, 4).weekday() == 5
    assert starts(date(2024, 5, 4)) == WEDNESDAY
    assert starts(date(2024, 5, 8)) == []  # the Wednesday given off
    # 2025: the day off of Friday 3 January moved to Sunday 5 January
    assert date(2025, 1, 5).weekday() == 6
    assert starts(date(2025, 1, 5)) == FRIDAY
    assert starts(date(2025, 1, 3)) == []
    # an ordinary weekend stays closed
    assert starts(date(2024, 5, 11)) == [] and starts(date(2025, 1, 12)) == []


def test_public_holidays_and_observed_days_are_closed() -> None:
    assert starts(date(2025, 3, 21)) == []  # Nauryz, a Friday
    assert starts(date(2026, 12, 16)) == []  # Independence Day, a Wednesday
    assert starts(date(2026, 3, 24)) == []  # Nauryz on a weekend, observed on Tuesday
    assert starts(date(2026, 3, 9)) == []  # Women's Day on Sunday 8 March, observed Monday
    assert starts(date(2026, 3, 26)) == USUAL  # the Thursday after: an ordinary day


def test_a_business_that_does_not_observe_them_is_unaffected() -> None:
    assert starts(date(2024, 5, 4), observe=False) == []  # an ordinary Saturday
    assert starts(date(2025, 1, 5), observe=False) == []
    assert starts(date(2024, 5, 8), observe=False) == WEDNESDAY
    assert starts(date(2025, 1, 3), observe=False) == FRIDAY
    assert starts(date(2025, 3, 21), observe=False) == FRIDAY
    assert starts(date(2026, 12, 16), observe=False) == WEDNESDAY
    assert starts(date(2026, 3, 24), observe=False) == USUAL


def test_the_business_own_rules_beat_the_national_calendar() -> None:
    # closed on the transferred working Saturday: closed
    closed = Schedule(hours=HOURS, overrides=[], blocked=[], closed=[date(2024, 5, 4)])
    assert starts(date(2024, 5, 4), schedule=closed) == []
    # its own hours for that date: those hours, not Wednesday's
    override = Schedule(hours=HOURS, blocked=[], closed=[],
                        overrides=[(None, date(2024, 5, 4), "hours", _seconds(9), _seconds(11))])  # fmt: skip
    assert starts(date(2024, 5, 4), schedule=override) == [time(9), time(10)]


def test_a_range_across_a_transfer_and_a_new_year() -> None:
    query = build_query(
        Rules(), Timing(), {STAFF: Offer(STAFF, 60, 0)}, SCHEDULE, [STAFF], date(2024, 12, 30),
        date(2025, 1, 6), NOW,
    )  # fmt: skip
    days = sorted({s.start.astimezone(ZONE).date() for s in find_slots(query)})
    # Mon 30, Tue 31 Dec work; 1–3 Jan off; Sat 4 closed; Sun 5 works; Mon 6 works
    assert days == [date(2024, 12, 30), date(2024, 12, 31), date(2025, 1, 5), date(2025, 1, 6)]


def test_a_new_decree_entered_in_the_table_reaches_bookings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # synthetic: Saturday 6 Nov 2027 works for Monday 8 Nov
    decree = Transfer(working=date(2027, 11, 6), day_off=date(2027, 11, 8))
    assert starts(date(2027, 11, 6)) == [] and starts(date(2027, 11, 8)) == USUAL
    monkeypatch.setattr(business_days, "KZ_TRANSFERS", (*business_days.KZ_TRANSFERS, decree))
    assert starts(date(2027, 11, 6)) == USUAL
    assert starts(date(2027, 11, 8)) == []


def test_names_in_each_language() -> None:
    with use_locale("en"):
        days = {d.on_date: d for d in public_days(date(2024, 5, 1), date(2024, 5, 10))}
    assert days[date(2024, 5, 4)].kind == "working"
    assert days[date(2024, 5, 4)].other == date(2024, 5, 8)
    assert days[date(2024, 5, 8)].kind == "day_off"
    assert days[date(2024, 5, 9)].name == "Victory Day"
    with use_locale("ru"):
        nauryz = public_days(date(2026, 3, 21), date(2026, 3, 25))
    assert [d.kind for d in nauryz] == ["holiday", "holiday", "holiday", "observed", "observed"]
    assert nauryz[0].name == "Наурыз мейрамы"
    with use_locale("kk"):
        independence = public_days(date(2026, 12, 16), date(2026, 12, 16))
    assert independence[0].name == "Тәуелсіздік күні"
