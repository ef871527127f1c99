"""Kazakhstan business days: the clock for answering data-subject requests (policy 8.6).

A business day is a day that is neither a weekend nor a public holiday. Public holidays, the
days off they move to when they fall on a weekend, and the government's transfers of days off
(a Saturday or Sunday declared a working day in exchange for a bridge day off) come from the
``holidays`` package (country "KZ"), which follows the Labour Code and the decrees published on
adilet.zan.kz.

A decree published after the installed ``holidays`` release is entered in ``KZ_DECREES`` until
the package catches up: ``"work"`` makes a date a working day (a transferred working Saturday),
``"off"`` makes it a day off (the bridge day it was exchanged for). Enter only decrees that were
actually published, with the decree's reference in a comment; the table wins over the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from functools import cache
from typing import Literal

import holidays

DayKind = Literal["work", "off"]

# Government decrees on moving days off that the installed ``holidays`` release does not know
# yet, e.g. ``date(2026, 1, 3): "work"`` with the decree's number. Empty: the package (0.109)
# already carries every transfer decree through 2025, and no later one is entered here.
KZ_DECREES: dict[date, DayKind] = {}

# A request answered within 10 business days (policy 8.6), or at most this many calendar days
# searched for them: guards against a decree table that declared every day off.
_MAX_CALENDAR_DAYS = 3660


@cache
def _calendar(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("KZ", years=year)


def is_business_day(day: date, *, decrees: Mapping[date, DayKind] | None = None) -> bool:
    """True when ``day`` is a working day in Kazakhstan."""
    table = KZ_DECREES if decrees is None else decrees
    kind = table.get(day)
    if kind is not None:
        return kind == "work"
    return bool(_calendar(day.year).is_working_day(day))


def add_business_days(
    start: date, n: int, *, decrees: Mapping[date, DayKind] | None = None
) -> date:
    """The ``n``-th business day after ``start`` (``start`` itself is not counted).

    A request received on a Friday with ``n=1`` is due on Monday, or later if Monday is a
    holiday; ``n=0`` gives ``start``.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    day = start
    remaining = n
    for _ in range(_MAX_CALENDAR_DAYS):
        if remaining == 0:
            return day
        day += timedelta(days=1)
        if is_business_day(day, decrees=decrees):
            remaining -= 1
    raise ValueError("no business days found: check the decree table")
