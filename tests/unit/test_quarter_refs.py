"""The calendar's cached formatting of an empty quarter hour (app.routes.dashboard.calendar)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from jinja2.filters import do_urlencode

from app.routes.dashboard.calendar import quarter_refs


def test_refs_are_the_times_own_wall_clock_and_its_query_value() -> None:
    start = datetime(2026, 12, 8, 10, 15, tzinfo=ZoneInfo("Asia/Almaty"))
    assert quarter_refs(start) == (
        "202612081015",
        do_urlencode(start.isoformat()),
        "2026-12-08 10:15",
    )


def test_one_instant_in_two_zones_is_formatted_for_each_zone() -> None:
    """Equal datetimes in two zones are one cache key unless the zone is part of it."""
    almaty = datetime(2026, 12, 8, 10, 15, tzinfo=ZoneInfo("Asia/Almaty"))
    berlin = almaty.astimezone(ZoneInfo("Europe/Berlin"))
    assert almaty == berlin and almaty == almaty.astimezone(UTC)
    assert quarter_refs(almaty)[0] == "202612081015"
    assert quarter_refs(berlin)[0] == "202612080615"
    assert quarter_refs(berlin)[1] == do_urlencode("2026-12-08T06:15:00+01:00")
