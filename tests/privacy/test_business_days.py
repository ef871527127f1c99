"""Kazakhstan business days: the 10-day deadline for answering requests (policy 8.6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.business_days import KZ_DECREES, DayKind, add_business_days, is_business_day
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


def test_transfers_by_decree_that_the_holidays_package_knows() -> None:
    # decree for 2025: Fri 3 Jan is a day off, Sun 5 Jan a working day in exchange
    assert not is_business_day(date(2025, 1, 3))
    assert is_business_day(date(2025, 1, 5))
    # from Tue 31 Dec 2024: 1, 2, 3 Jan off; Sun 5 Jan works; 7 Jan is Orthodox Christmas
    assert add_business_days(date(2024, 12, 31), 1) == date(2025, 1, 5)
    assert add_business_days(date(2024, 12, 31), 10) == date(2025, 1, 17)


def test_a_decree_table_entry_overrides_the_calendar() -> None:
    # a synthetic decree: Saturday 5 Dec 2026 works, Monday 7 Dec is off in exchange
    decrees: dict[date, DayKind] = {date(2026, 12, 5): "work", date(2026, 12, 7): "off"}
    assert is_business_day(date(2026, 12, 5), decrees=decrees)
    assert not is_business_day(date(2026, 12, 7), decrees=decrees)
    # Fri 4 Dec + 1: Saturday now works
    assert add_business_days(date(2026, 12, 4), 1, decrees=decrees) == date(2026, 12, 5)
    assert add_business_days(date(2026, 12, 4), 2, decrees=decrees) == date(2026, 12, 8)
    assert add_business_days(date(2026, 12, 4), 2) == date(2026, 12, 8)  # Mon 7 + Tue 8
    assert add_business_days(date(2026, 12, 4), 1) == date(2026, 12, 7)


# Entered the way a newly published decree would be (synthetic: no such decree exists).
SYNTHETIC_DECREE: dict[date, DayKind] = {date(2027, 11, 6): "work", date(2027, 11, 8): "off"}


def test_the_module_decree_table_holds_only_transfers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every entry of ``KZ_DECREES`` (those shipped, and one entered as a new decree would be)
    moves a day against the calendar of the ``holidays`` package, and the default calendar
    follows the table."""
    for day, kind in SYNTHETIC_DECREE.items():
        monkeypatch.setitem(KZ_DECREES, day, kind)
    assert len(KZ_DECREES) >= len(SYNTHETIC_DECREE)
    for day, kind in KZ_DECREES.items():
        assert kind in ("work", "off"), day
        package = holidays.country_holidays("KZ", years=day.year)
        assert package.is_working_day(day) == (kind == "off"), f"{day}: {kind} changes nothing"
        assert is_business_day(day) == (kind == "work"), day
    # Fri 5 Nov 2027 + 1: the Saturday now works; + 2 skips Sunday and the Monday given off
    assert add_business_days(date(2027, 11, 5), 1) == date(2027, 11, 6)
    assert add_business_days(date(2027, 11, 5), 2) == date(2027, 11, 9)


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
