"""Kazakhstan's calendar: public holidays and the government's transfers of days off.

Two rules read it: the clock for answering data-subject requests (policy 8.6: a business day is
neither a weekend nor a day off) and bookings at a business that observes public holidays
(``businesses.observe_public_holidays``: closed on a day off; a weekend day declared a working
day works with the hours of the weekday whose day off was moved, see :func:`booking_days`).

Two sources, each for one thing:

* The Labour Code's public holidays and their "observed" days (a holiday that falls on a
  Saturday or Sunday moves to the next working day; Orthodox Christmas and Kurban Ait do not)
  come from the ``holidays`` package (country "KZ").
* The government's decrees that move a day off (a Saturday or Sunday becomes a working day, a
  bridge weekday a day off in exchange) come from ``KZ_TRANSFERS`` below, and only from it: the
  package carries some decrees too, but they are left out (``_LabourCode``), so a decree is
  entered, read and tested in one place. Enter each decree when it is published on
  adilet.zan.kz, with its reference in a comment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

from holidays.countries.kazakhstan import Kazakhstan

from app.i18n import N_, gettext


@dataclass(frozen=True, slots=True)
class Transfer:
    """One decree's move: ``working`` (a Saturday or Sunday) becomes a working day and
    ``day_off`` (a weekday) a day off in exchange; that weekday's work moves to ``working``."""

    working: date
    day_off: date


KZ_TRANSFERS: tuple[Transfer, ...] = (
    # 2024: Government decree No. 109 of 2024 on moving a day off (adilet.zan.kz G24G0000109):
    # Saturday 4 May works, Wednesday 8 May is off (a bridge between 7 and 9 May).
    Transfer(working=date(2024, 5, 4), day_off=date(2024, 5, 8)),
    # 2025: Government decree No. 436 of 2024 on moving days off in 2025 (adilet.zan.kz
    # G24G0000436): Sunday 5 January works, Friday 3 January is off (after 1 and 2 January).
    Transfer(working=date(2025, 1, 5), day_off=date(2025, 1, 3)),
    # 2026: no transfer decree. Holidays on a weekend move by the Labour Code (art. 85), which
    # the package applies: Mon 9 March, Tue 24 and Wed 25 March, Mon 11 May, Mon 26 October.
)

# A request answered within 10 business days (policy 8.6), or at most this many calendar days
# searched for them: guards against a transfer table that declared every day off.
_MAX_CALENDAR_DAYS = 3660

DayKind = Literal["holiday", "observed", "day_off", "working"]

# The package names Kazakhstan's holidays in Kazakh and English (not Russian); its English
# names are marked here so the catalogs carry them in every language the dashboard speaks.
HOLIDAY_NAMES = {
    "New Year's Day": N_("New Year's Day"),
    "Orthodox Christmas": N_("Orthodox Christmas"),
    "International Women's Day": N_("International Women's Day"),
    "Nowruz Holiday": N_("Nauryz"),
    "Kazakhstan's People Solidarity Holiday": N_("Kazakhstan People's Unity Day"),
    "Defender of the Fatherland Day": N_("Defender of the Fatherland Day"),
    "Victory Day": N_("Victory Day"),
    "Capital Day": N_("Capital Day"),
    "Constitution Day": N_("Constitution Day"),
    "Republic Day": N_("Republic Day"),
    "Republic of Kazakhstan Day": N_("Republic Day"),
    "Independence Day": N_("Independence Day"),
    "Eid al-Adha": N_("Kurban Ait"),
    "First President Day": N_("First President Day"),
}
_OBSERVED = " (observed)"
_ESTIMATED = " (estimated)"


class _LabourCode(Kazakhstan):
    """The package's Kazakhstan without its decree transfers (its only "special" holidays):
    ``KZ_TRANSFERS`` is their one source."""

    def _add_special_holidays(self, mapping_names, *, observed=False):
        return None


@lru_cache(maxsize=32)
def _statutory(year: int) -> dict[date, str]:
    """The Labour Code's days off of one year (holidays and observed days), by their English
    names as the package gives them (building them costs milliseconds: cached)."""
    return dict(_LabourCode(years=year, language="en_US"))


@dataclass(frozen=True, slots=True)
class BookingDays:
    """One year as a business that observes public holidays books it: the dates it is closed
    and the weekend dates that work as a weekday (0 = Monday)."""

    closed: frozenset[date]
    works_as: dict[date, int]


@lru_cache(maxsize=64)
def _booking_days(year: int, transfers: tuple[Transfer, ...]) -> BookingDays:
    closed = set(_statutory(year))
    works_as: dict[date, int] = {}
    for transfer in transfers:
        if transfer.day_off.year == year:
            closed.add(transfer.day_off)
        if transfer.working.year == year:
            closed.discard(transfer.working)
            works_as[transfer.working] = transfer.day_off.weekday()
    return BookingDays(frozenset(closed), works_as)


def booking_days(year: int, transfers: Sequence[Transfer] | None = None) -> BookingDays:
    """Days off and transferred working days of one year (cached per year and table)."""
    table = KZ_TRANSFERS if transfers is None else tuple(transfers)
    return _booking_days(year, table)


def is_business_day(day: date, *, transfers: Sequence[Transfer] | None = None) -> bool:
    """True when ``day`` is a working day in Kazakhstan."""
    days = booking_days(day.year, transfers)
    if day in days.works_as:
        return True
    return day.weekday() < 5 and day not in days.closed


def add_business_days(start: date, n: int, *, transfers: Sequence[Transfer] | None = None) -> date:
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
        if is_business_day(day, transfers=transfers):
            remaining -= 1
    raise ValueError("no business days found: check the transfer table")


@dataclass(frozen=True, slots=True)
class PublicDay:
    """A day the national calendar changes, named in the current language."""

    on_date: date
    kind: DayKind
    name: str
    other: date | None = None  # a transfer's other date


def holiday_name(english: str) -> str:
    """A holiday's name in the current language (the package's English name otherwise)."""
    observed = english.endswith(_OBSERVED)
    base = english.removesuffix(_OBSERVED).removesuffix(_ESTIMATED)
    name = gettext(HOLIDAY_NAMES[base]) if base in HOLIDAY_NAMES else base
    return gettext(N_("%(name)s (day off moved)")) % {"name": name} if observed else name


def public_days(
    date_from: date, date_to: date, *, transfers: Sequence[Transfer] | None = None
) -> list[PublicDay]:
    """Public holidays, observed days and transfers over [date_from, date_to], in date order,
    named in the current language."""
    table = KZ_TRANSFERS if transfers is None else tuple(transfers)
    found: list[PublicDay] = []
    for year in range(date_from.year, date_to.year + 1):
        for day, english in _statutory(year).items():
            if date_from <= day <= date_to:
                kind: DayKind = "observed" if english.endswith(_OBSERVED) else "holiday"
                found.append(PublicDay(day, kind, holiday_name(english)))
    for transfer in table:
        if date_from <= transfer.day_off <= date_to:
            name = gettext(N_("Day off (moved from a weekend)"))
            found.append(PublicDay(transfer.day_off, "day_off", name, transfer.working))
        if date_from <= transfer.working <= date_to:
            name = gettext(N_("Working day (a day off moved away)"))
            found.append(PublicDay(transfer.working, "working", name, transfer.day_off))
    found.sort(key=lambda d: d.on_date)
    return found
