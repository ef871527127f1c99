"""Kazakhstan business days: the 10-day deadline for answering requests (policy 8.6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import business_days
from app.domain.business_days import (
    KZ_TRANSFERS,
    Transfer,
    add_business_days,
    booking_days,
    is_business_day,
)
from app.domain.privacy import reply_due

pytestmark = pytest.mark.policy("8.6")


def test_ten_business_days_skip_a_weekend_and_a_public_holiday() -> None:
    # Thu 10 Dec 2026 → Wed 16 Dec is Independence Day; two weekends in between
    assert date(2026, 12, 16) not in {
        d for d in _walk(date(2026, 12, 10), 15) if is_business_day(d)
    }
    assert add_business_days(date(2026, 12, 10), 10) == date(2026, 12, 25)


def test_holiday_that_falls_on_a_weekend_moves_to_monday() -> None:
    # 8 March 2026 is a Sunday: Monday 9 March is the day off instead
    assert not is_business_day(date(2026, 3, 9))
    assert add_business_days(date(2026, 3, 6), 1) == date(2026, 3, 10)


def test_transfers_by_decree_come_from_the_table() -> None:
    # decree for 2025: Fri 3 Jan is a day off, Sun 5 Jan a working day in exchange
    assert not is_business_day(date(2025, 1, 3))
    assert is_business_day(date(2025, 1, 5))
    # from Tue 31 Dec 2024: 1, 2, 3 Jan off; Sun 5 Jan works; 7 Jan is Orthodox Christmas
    assert add_business_days(date(2024, 12, 31), 1) == date(2025, 1, 5)
    assert add_business_days(date(2024, 12, 31), 10) == date(2025, 1, 17)
    # decree for 2024: Sat 4 May works, Wed 8 May is off
    assert is_business_day(date(2024, 5, 4))
    assert not is_business_day(date(2024, 5, 8))
    # the table is the one source: without it, the package's own copy of these decrees is
    # not used (the days are an ordinary weekend day and an ordinary Wednesday)
    assert not is_business_day(date(2025, 1, 5), transfers=())
    assert is_business_day(date(2025, 1, 3), transfers=())
    assert not is_business_day(date(2024, 5, 4), transfers=())
    assert is_business_day(date(2024, 5, 8), transfers=())
    assert add_business_days(date(2024, 12, 31), 1, transfers=()) == date(2025, 1, 3)


def test_2026_has_no_decree_and_the_labour_code_moves_weekend_holidays() -> None:
    assert all(t.working.year != 2026 and t.day_off.year != 2026 for t in KZ_TRANSFERS)
    for day in (date(2026, 3, 9), date(2026, 3, 24), date(2026, 3, 25), date(2026, 5, 11),
                date(2026, 10, 26)):  # fmt: skip
        assert day.weekday() < 5 and not is_business_day(day), day
    assert booking_days(2026).works_as == {}


def test_a_table_entry_overrides_the_calendar() -> None:
    # a synthetic decree: Saturday 5 Dec 2026 works, Monday 7 Dec is off in exchange
    transfers = [Transfer(working=date(2026, 12, 5), day_off=date(2026, 12, 7))]
    assert is_business_day(date(2026, 12, 5), transfers=transfers)
    assert not is_business_day(date(2026, 12, 7), transfers=transfers)
    # Fri 4 Dec + 1: Saturday now works
    assert add_business_days(date(2026, 12, 4), 1, transfers=transfers) == date(2026, 12, 5)
    assert add_business_days(date(2026, 12, 4), 2, transfers=transfers) == date(2026, 12, 8)
    assert add_business_days(date(2026, 12, 4), 2) == date(2026, 12, 8)  # Mon 7 + Tue 8
    assert add_business_days(date(2026, 12, 4), 1) == date(2026, 12, 7)


# Entered the way a newly published decree would be (synthetic: no such decree exists).
SYNTHETIC_DECREE = Transfer(working=date(2027, 11, 6), day_off=date(2027, 11, 8))


def test_the_table_holds_only_transfers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every entry of ``KZ_TRANSFERS`` (those shipped, and one entered as a new decree would
    be) makes a weekend day a working day and an ordinary working weekday a day off, and the
    default calendar follows the table."""
    monkeypatch.setattr(business_days, "KZ_TRANSFERS", (*KZ_TRANSFERS, SYNTHETIC_DECREE))
    assert len(business_days.KZ_TRANSFERS) >= 3
    for transfer in business_days.KZ_TRANSFERS:
        assert transfer.working.weekday() >= 5, transfer
        assert is_business_day(transfer.day_off, transfers=()), f"{transfer}: changes nothing"
        assert is_business_day(transfer.working)
        assert not is_business_day(transfer.day_off)
        assert abs((transfer.working - transfer.day_off).days) < 366
    # Fri 5 Nov 2027 + 1: the Saturday now works; + 2 skips Sunday and the Monday given off
    assert add_business_days(date(2027, 11, 5), 1) == date(2027, 11, 6)
    assert add_business_days(date(2027, 11, 5), 2) == date(2027, 11, 9)


def test_the_same_table_drives_bookings() -> None:
    """The days bookings close on and the privacy clock's days off are one calendar."""
    for year in (2024, 2025, 2026):
        days = booking_days(year)
        day = date(year, 1, 1)
        while day.year == year:
            if day in days.works_as:
                assert is_business_day(day)
            elif day in days.closed:
                assert not is_business_day(day), day
            day += timedelta(days=1)
    assert booking_days(2024).works_as == {date(2024, 5, 4): 2}  # Wednesday's hours
    assert booking_days(2025).works_as == {date(2025, 1, 5): 4}  # Friday's hours
    assert date(2024, 5, 8) in booking_days(2024).closed
    assert date(2025, 1, 3) in booking_days(2025).closed


def test_zero_and_negative() -> None:
    assert add_business_days(date(2026, 12, 12), 0) == date(2026, 12, 12)
    with pytest.raises(ValueError, match="negative"):
        add_business_days(date(2026, 12, 12), -1)


def test_reply_due_counts_from_the_day_in_kazakhstan() -> None:
    # 10:00 in Almaty on Thu 10 Dec
    assert reply_due(datetime(2026, 12, 10, 5, 0, tzinfo=UTC)) == date(2026, 12, 25)
    # 20:00 UTC on 10 Dec is already Fri 11 Dec in Almaty (UTC+5)
    assert reply_due(datetime(2026, 12, 10, 20, 0, tzinfo=UTC)) == date(2026, 12, 28)


@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 1)), st.integers(0, 30))
def test_result_is_a_business_day_with_exactly_n_before_it(start: date, n: int) -> None:
    due = add_business_days(start, n)
    between = [
        d for d in _walk(start + timedelta(days=1), (due - start).days) if is_business_day(d)
    ]
    assert len(between) == n
    if n:
        assert is_business_day(due)
        assert (due - start).days >= n


def _walk(start: date, days: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(days)]
