"""When a data-subject request is due (policy 8.6): 10 Kazakhstan business days after the day
it arrived, one rule for every path, the count a setting that may only be lowered.

Each date below was counted by hand on the calendar, not computed by the code under test."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.domain import data_requests
from app.domain.privacy import reply_due
from app.settings import SettingsError, get_settings, load_settings

pytestmark = pytest.mark.policy("8.6")


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Wed 18 March 2026; Nauryz is Sat 21 – Mon 23 March, and 21 and 22 fall on a weekend,
        # so Tue 24 and Wed 25 are off too: Thu 19, Fri 20, Thu 26, Fri 27, Mon 30, Tue 31,
        # Wed 1, Thu 2, Fri 3, Mon 6 April.
        (date(2026, 3, 18), date(2026, 4, 6)),
        # Tue 28 April 2026: 1 May (Fri), 7 May (Thu) and Victory Day on Sat 9 May, observed
        # Mon 11 May, are off: Wed 29, Thu 30, Mon 4, Tue 5, Wed 6, Fri 8, Tue 12, Wed 13,
        # Thu 14, Fri 15 May.
        (date(2026, 4, 28), date(2026, 5, 15)),
        # Wed 6 May 2026: Fri 8, Tue 12, Wed 13, Thu 14, Fri 15, Mon 18 … Fri 22 May.
        (date(2026, 5, 6), date(2026, 5, 22)),
        # Thu 2 May 2024, around the 2024 decree (KZ_TRANSFERS): Saturday 4 May worked and
        # Wednesday 8 May was off, between 7 May and Victory Day: Fri 3, Sat 4, Mon 6, Fri 10,
        # Mon 13, Tue 14, Wed 15, Thu 16, Fri 17, Mon 20 May.
        (date(2024, 5, 2), date(2024, 5, 20)),
        # Tue 31 December 2024, around the 2025 decree: 1 and 2 January are New Year, Fri 3
        # January was off, Sunday 5 January worked, 7 January is Orthodox Christmas: Sun 5,
        # Mon 6, Wed 8, Thu 9, Fri 10, Mon 13, Tue 14, Wed 15, Thu 16, Fri 17 January.
        (date(2024, 12, 31), date(2025, 1, 17)),
    ],
)
def test_due_dates_around_kazakhstan_holidays(received: date, due: date) -> None:
    assert data_requests.due_on(received) == due


def test_every_path_uses_the_one_rule_from_the_day_in_kazakhstan() -> None:
    # 19:30 UTC on 17 March is 00:30 on 18 March in Almaty: the request arrived on the 18th
    late = datetime(2026, 3, 17, 19, 30, tzinfo=UTC)
    assert data_requests.due_on(late) == date(2026, 4, 6)
    assert reply_due(late) == date(2026, 4, 6)  # the self-service paths' deadline


def test_the_count_is_a_setting_that_may_be_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({}).data_request_due_days == 10
    # a shorter deadline of the Law: 5 business days from Wed 18 March 2026 are Thu 19, Fri 20,
    # Thu 26, Fri 27, Mon 30 March
    assert data_requests.due_on(date(2026, 3, 18), days=5) == date(2026, 3, 30)
    monkeypatch.setenv("DATA_REQUEST_DUE_DAYS", "5")
    get_settings.cache_clear()
    try:
        assert data_requests.due_on(date(2026, 3, 18)) == date(2026, 3, 30)
    finally:
        monkeypatch.delenv("DATA_REQUEST_DUE_DAYS")
        get_settings.cache_clear()
    assert data_requests.due_on(date(2026, 3, 18)) == date(2026, 4, 6)


def test_a_count_beyond_the_policys_promise_is_refused() -> None:
    with pytest.raises(SettingsError, match="10 business days"):
        load_settings({"DATA_REQUEST_DUE_DAYS": "15"})
    with pytest.raises(SettingsError):
        load_settings({"DATA_REQUEST_DUE_DAYS": "0"})
