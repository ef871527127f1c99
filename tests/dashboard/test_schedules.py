"""Dashboard schedules (issue 13, item 4, and the wizard's "hours" and "days off" steps):
weekly hours with breaks, special dates, time off, closed days, and Kazakhstan's public holidays
applied to bookings, with written-out dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import bookings
from app.domain.accounts import ByAccount
from app.domain.audit import Actor
from app.domain.availability_reader import available_slots
from app.domain.errors import SlotTaken
from app.settings import Settings
from tests.factories import BusinessFixture, new_business
from tests.support.dashboard import add_member, csrf_of, form, sign_in_as

# Every schedules route that takes an id (method, path template): another business's id → 404.
ID_ROUTES = [
    ("GET", "/dashboard/schedules/{staff_id}"),
    ("POST", "/dashboard/schedules/{staff_id}"),
    ("POST", "/dashboard/schedules/{staff_id}/dates"),
    ("POST", "/dashboard/schedules/dates/{override_id}/delete"),
    ("POST", "/dashboard/schedules/{staff_id}/time-off"),
    ("POST", "/dashboard/schedules/time-off/{time_off_id}/delete"),
    ("POST", "/dashboard/closed-days/{holiday_id}/delete"),
]
# ... and the ones only an admin or owner may use: a master gets 403.
ADMIN_ROUTES = [
    ("POST", "/dashboard/schedules/{staff_id}"),
    ("POST", "/dashboard/schedules/{staff_id}/dates"),
    ("POST", "/dashboard/schedules/dates/{override_id}/delete"),
    ("POST", "/dashboard/schedules/{staff_id}/time-off"),
    ("POST", "/dashboard/schedules/time-off/{time_off_id}/delete"),
    ("POST", "/dashboard/closed-days"),
    ("POST", "/dashboard/closed-days/{holiday_id}/delete"),
    ("POST", "/dashboard/closed-days/dates"),
    ("POST", "/dashboard/closed-days/public-holidays"),
]

ZONE = ZoneInfo("Asia/Almaty")
LUNCH_BREAK = {"start": "10:00", "end": "14:00", "start2": "15:00", "end2": "20:00"}


async def _owner(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, **kwargs: Any
) -> tuple[BusinessFixture, str]:
    business = await new_business(owner_session, **kwargs)
    assert business.owner_account_id is not None
    await owner_session.execute(  # the pages in English, so messages can be read here
        text("UPDATE accounts SET locale = 'en' WHERE id = :a"), {"a": business.owner_account_id}
    )
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    return business, csrf


def _week(days: dict[int, list[tuple[str, str]]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for weekday, intervals in days.items():
        for i, (start, end) in enumerate(intervals):
            fields[f"w{weekday}-{i}-start"] = start
            fields[f"w{weekday}-{i}-end"] = end
    return fields


async def _hours(owner_session: AsyncSession, staff_id: int) -> list[tuple[int, str, str]]:
    rows = await owner_session.execute(
        text("SELECT weekday, start_time, end_time FROM working_hours WHERE staff_id = :s "
             "ORDER BY weekday, start_time"), {"s": staff_id},
    )  # fmt: skip
    await owner_session.commit()
    return [(w, s.strftime("%H:%M"), e.strftime("%H:%M")) for w, s, e in rows]


async def _starts(
    db: Database, business: BusinessFixture, day: date, *, service: int | None = None,
    staff: int | None = None, now: datetime | None = None,
) -> list[str]:  # fmt: skip
    """Local start times offered on ``day`` (asked as of 10 days before it, unless ``now``)."""
    asked = now or datetime.combine(day - timedelta(days=10), time(12), tzinfo=UTC)
    slots = await available_slots(
        db, business.slug, service or business.service_id, staff, day, day, asked
    )
    return sorted({s.start.astimezone(ZONE).strftime("%H:%M") for s in slots})


async def _audit_actions(owner_session: AsyncSession, business_id: int) -> list[str]:
    rows = await owner_session.scalars(
        text("SELECT action FROM audit_log WHERE business_id = :b ORDER BY id"), {"b": business_id}
    )
    found = list(rows)
    await owner_session.commit()
    return found


# --- weekly hours ------------------------------------------------------------------------------


async def test_weekly_hours_with_a_lunch_break_offer_exactly_those_slots(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Database
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    first = business.staff_ids[0]
    listing = await client.get("/dashboard/schedules")
    assert listing.status_code == 200
    assert f"/dashboard/schedules/{first}" in listing.text
    assert (await client.get(f"/dashboard/schedules/{first}")).status_code == 200
    every_day = {d: [("10:00", "14:00"), ("15:00", "20:00")] for d in range(7)}
    saved = await client.post(
        f"/dashboard/schedules/{first}", data=form(csrf, **_week(every_day)),
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    assert saved.headers["location"] == "/dashboard/schedules"
    assert await _hours(owner_session, first) == [
        (d, s, e) for d in range(7) for s, e in (("10:00", "14:00"), ("15:00", "20:00"))
    ]
    # the 30-minute service (first master only, no buffers) on the 15-minute grid
    day = datetime.now(ZONE).date() + timedelta(days=5)
    starts = await _starts(db, business, day, service=business.short_service_id,
                           now=datetime.now(UTC))  # fmt: skip
    assert starts == [
        "10:00", "10:15", "10:30", "10:45", "11:00", "11:15", "11:30", "11:45", "12:00",
        "12:15", "12:30", "12:45", "13:00", "13:15", "13:30",
        "15:00", "15:15", "15:30", "15:45", "16:00", "16:15", "16:30", "16:45", "17:00",
        "17:15", "17:30", "17:45", "18:00", "18:15", "18:30", "18:45", "19:00", "19:15",
        "19:30",
    ]  # fmt: skip
    assert "schedule.week_set" in await _audit_actions(owner_session, business.id)


@pytest.mark.parametrize(
    ("intervals", "message"),
    [
        ([("10:00", "14:00"), ("13:00", "20:00")], "must not overlap"),
        ([("10:03", "14:00")], "steps of 5 minutes"),
        ([("14:00", "10:00")], "end must be after the start"),
        ([("10:00", "")], "both the start and the end"),
        ([("25:00", "26:00")], "like 09:30"),
    ],
)
async def test_bad_hours_are_refused_beside_the_day_and_nothing_is_written(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings,
    intervals: list[tuple[str, str]], message: str,
) -> None:  # fmt: skip
    business, csrf = await _owner(client, owner_session, settings)
    first = business.staff_ids[0]
    before = await _hours(owner_session, first)
    # Tuesday is fine, Wednesday is not
    week = {1: [("09:00", "12:00")], 2: intervals}
    refused = await client.post(f"/dashboard/schedules/{first}", data=form(csrf, **_week(week)))
    assert refused.status_code == 422
    assert 'id="e-w2"' in refused.text and message in refused.text
    assert 'id="e-w1"' not in refused.text
    # what was typed is shown again
    assert f'value="{intervals[0][0]}"' in refused.text or intervals[0][0] == ""
    assert await _hours(owner_session, first) == before


async def test_copy_monday_to_the_other_weekdays(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    first = business.staff_ids[0]
    # Thursday's hours (even a mistake in them) are replaced, not read
    week = {0: [("10:00", "14:00"), ("15:00", "19:00")], 3: [("08:00", "09:00"), ("08:30", "10:00")],
            5: [("11:00", "15:00")]}  # fmt: skip
    done = await client.post(
        f"/dashboard/schedules/{first}", data=form(csrf, copy_monday="1", **_week(week)),
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == f"/dashboard/schedules/{first}"
    monday = [("10:00", "14:00"), ("15:00", "19:00")]
    assert await _hours(owner_session, first) == [
        *[(d, s, e) for d in range(5) for s, e in monday],
        (5, "11:00", "15:00"),
    ]


async def test_the_wizard_flag_is_kept(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    first = business.staff_ids[0]
    hours = await client.get("/dashboard/schedules?setup=1")
    assert hours.status_code == 200
    assert f"/dashboard/schedules/{first}?setup=1" in hours.text
    done = await client.post(
        f"/dashboard/schedules/{first}?setup=1",
        data=form(csrf, **_week({0: [("10:00", "14:00")]})), follow_redirects=False,
    )  # fmt: skip
    assert done.headers["location"] == "/dashboard/schedules?setup=1"
    days = await client.get("/dashboard/closed-days?setup=1")
    assert days.status_code == 200
    closed = await client.post(
        "/dashboard/closed-days?setup=1",
        data=form(csrf, on_date=(datetime.now(ZONE).date() + timedelta(days=20)).isoformat()),
        follow_redirects=False,
    )  # fmt: skip
    assert closed.headers["location"] == "/dashboard/closed-days?setup=1"


# --- dates, time off, closed days ----------------------------------------------------------------


async def test_a_day_off_other_hours_and_time_off_change_the_slots(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Database
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    first, second = business.staff_ids
    day = datetime.now(ZONE).date() + timedelta(days=6)
    now = datetime.now(UTC)
    assert await _starts(db, business, day, staff=first, now=now)
    # a day off for the first master on that date
    done = await client.post(f"/dashboard/schedules/{first}/dates",
                             data=form(csrf, on_date=day.isoformat(), kind="day_off"))  # fmt: skip
    assert done.status_code == 200  # followed back to the master's page
    assert await _starts(db, business, day, staff=first, now=now) == []
    assert await _starts(db, business, day, staff=second, now=now)
    # the whole business works 11:00–13:00 that day: the second master too
    await client.post("/dashboard/closed-days/dates",
                      data=form(csrf, on_date=day.isoformat(), kind="hours",
                                **{"h0-start": "11:00", "h0-end": "13:00"}))  # fmt: skip
    assert await _starts(db, business, day, staff=second, now=now) == ["11:00", "11:15", "11:30",
                                                                        "11:45", "12:00"]  # fmt: skip
    # the master's own day off beats the business's hours
    assert await _starts(db, business, day, staff=first, now=now) == []
    assert await _starts(db, business, day, now=now) == ["11:00", "11:15", "11:30", "11:45",
                                                         "12:00"]  # fmt: skip
    # time off for the second master over that date: nobody left, on the very next request
    # for the same document (time off is read fresh, never from the cached part)
    await client.post(f"/dashboard/schedules/{second}/time-off",
                      data=form(csrf, date_from=day.isoformat(), date_to=day.isoformat(),
                                reason="Vacation"))  # fmt: skip
    assert await _starts(db, business, day, now=now) == []
    page = await client.get(f"/dashboard/schedules/{second}")
    assert "Vacation" in page.text
    actions = await _audit_actions(owner_session, business.id)
    assert {"schedule.date_set", "schedule.time_off_added"} <= set(actions)
    # removing them reopens the day
    ids = (
        await owner_session.execute(
            text("SELECT (SELECT min(id) FROM schedule_overrides WHERE staff_id = :f), "
                 "(SELECT min(id) FROM schedule_overrides WHERE business_id = :b AND staff_id IS NULL), "
                 "(SELECT min(id) FROM time_off WHERE staff_id = :s)"),
            {"f": first, "s": second, "b": business.id},
        )
    ).one()  # fmt: skip
    await owner_session.commit()
    for path in (f"/dashboard/schedules/dates/{ids[0]}/delete",
                 f"/dashboard/schedules/dates/{ids[1]}/delete",
                 f"/dashboard/schedules/time-off/{ids[2]}/delete"):  # fmt: skip
        assert (await client.post(path, data=form(csrf), follow_redirects=False)).status_code == 303
    assert await _starts(db, business, day, staff=first, now=now)
    assert await _starts(db, business, day, staff=second, now=now)


async def test_bad_dates_are_refused_beside_the_field(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    first = business.staff_ids[0]
    today = datetime.now(ZONE).date()
    cases = [
        (f"/dashboard/schedules/{first}/dates", {"on_date": "31.12.2026", "kind": "day_off"},
         "e-on_date"),
        (f"/dashboard/schedules/{first}/dates",
         {"on_date": (today + timedelta(days=3)).isoformat(), "kind": "hours",
          "h0-start": "12:00", "h0-end": "11:00"}, "e-hours"),
        (f"/dashboard/schedules/{first}/dates",
         {"on_date": (today - timedelta(days=3)).isoformat(), "kind": "day_off"}, "e-on_date"),
        (f"/dashboard/schedules/{first}/time-off",
         {"date_from": (today + timedelta(days=9)).isoformat(),
          "date_to": (today + timedelta(days=2)).isoformat()}, "e-date_to"),
        ("/dashboard/closed-days", {"on_date": "2026-02-30"}, "e-on_date"),
    ]  # fmt: skip
    for path, fields, error_id in cases:
        refused = await client.post(path, data=form(csrf, **fields))
        assert refused.status_code == 422, (path, fields)
        assert f'id="{error_id}"' in refused.text, (path, fields)
    counts = (
        await owner_session.execute(
            text("SELECT (SELECT count(*) FROM schedule_overrides WHERE business_id = :b), "
                 "(SELECT count(*) FROM time_off WHERE business_id = :b), "
                 "(SELECT count(*) FROM holidays WHERE business_id = :b)"), {"b": business.id},
        )
    ).one()  # fmt: skip
    await owner_session.commit()
    assert tuple(counts) == (0, 0, 0)


async def test_closed_days_close_the_business_and_a_second_time_is_refused(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Database
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    day = datetime.now(ZONE).date() + timedelta(days=8)
    now = datetime.now(UTC)
    assert await _starts(db, business, day, now=now)
    added = await client.post("/dashboard/closed-days",
                              data=form(csrf, on_date=day.isoformat(), name="Inventory"))  # fmt: skip
    assert added.status_code == 200 and "Inventory" in added.text
    assert await _starts(db, business, day, now=now) == []
    again = await client.post("/dashboard/closed-days", data=form(csrf, on_date=day.isoformat()))
    assert again.status_code == 422 and 'id="e-on_date"' in again.text
    holiday_id = await owner_session.scalar(
        text("SELECT id FROM holidays WHERE business_id = :b"), {"b": business.id}
    )
    await owner_session.commit()
    await client.post(f"/dashboard/closed-days/{holiday_id}/delete", data=form(csrf))
    assert await _starts(db, business, day, now=now)
    actions = await _audit_actions(owner_session, business.id)
    assert {"schedule.closed_day_added", "schedule.closed_day_removed"} <= set(actions)


# --- Kazakhstan's public holidays ---------------------------------------------------------------


async def _closed_on_weekends(owner_session: AsyncSession, business: BusinessFixture) -> None:
    await owner_session.execute(
        text("DELETE FROM working_hours WHERE business_id = :b AND weekday IN (5, 6)"),
        {"b": business.id},
    )
    # Wednesdays 11:00–13:00 and Fridays 12:00–16:00: a transferred day shows whose hours
    await owner_session.execute(
        text("DELETE FROM working_hours WHERE business_id = :b AND weekday IN (2, 4)"),
        {"b": business.id},
    )
    for staff_id in business.staff_ids:
        await owner_session.execute(
            text("INSERT INTO working_hours (business_id, staff_id, weekday, start_time, end_time) "
                 "VALUES (:b, :s, 2, '11:00', '13:00'), (:b, :s, 4, '12:00', '16:00')"),
            {"b": business.id, "s": staff_id},
        )  # fmt: skip
    await owner_session.execute(
        text("UPDATE businesses SET observe_public_holidays = true WHERE id = :b"),
        {"b": business.id},
    )
    await owner_session.commit()


WEDNESDAY = ["11:00", "11:15", "11:30", "11:45", "12:00"]  # 60-minute service, 15-minute grid
FRIDAY = ["12:00", "12:15", "12:30", "12:45", "13:00", "13:15", "13:30", "13:45", "14:00",
          "14:15", "14:30", "14:45", "15:00"]  # fmt: skip


async def test_public_holidays_and_transfers_in_the_slot_search(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Database
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    await _closed_on_weekends(owner_session, business)
    # the buffer after the 60-minute service ends inside the interval: the last start is at
    # end - 60 min (buffers may reach past closing)
    # 2024: Saturday 4 May works (with Wednesday's hours: its day off went to Wed 8 May)
    assert await _starts(db, business, date(2024, 5, 4)) == WEDNESDAY
    assert await _starts(db, business, date(2024, 5, 8)) == []
    assert await _starts(db, business, date(2024, 5, 11)) == []  # an ordinary Saturday
    # 2025: Sunday 5 January works with Friday's hours; Friday 3 January is off
    assert await _starts(db, business, date(2025, 1, 5)) == FRIDAY
    assert await _starts(db, business, date(2025, 1, 3)) == []
    # public holidays: Nauryz (Fri 21 March 2025), Independence Day (Wed 16 December 2026),
    # and Nauryz 2026 observed on Tuesday 24 March (it fell on a weekend)
    assert await _starts(db, business, date(2025, 3, 21)) == []
    assert await _starts(db, business, date(2026, 12, 16)) == []
    assert await _starts(db, business, date(2026, 3, 24)) == []
    assert await _starts(db, business, date(2025, 3, 28)) == FRIDAY  # the Friday after
    page = await client.get("/dashboard/closed-days")
    assert page.status_code == 200 and "Independence Day" in page.text
    assert "День Независимости" in (await client.get("/dashboard/closed-days?lang=ru")).text
    assert "Тәуелсіздік күні" in (await client.get("/dashboard/closed-days?lang=kk")).text

    # switched off on the dashboard: the Mini App's next request sees the ordinary calendar
    version = await owner_session.scalar(
        text("SELECT schedule_version FROM businesses WHERE id = :b"), {"b": business.id}
    )
    await owner_session.commit()
    off = await client.post("/dashboard/closed-days/public-holidays",
                            data=form(csrf, observe="0"), follow_redirects=False)  # fmt: skip
    assert off.status_code == 303
    row = (
        await owner_session.execute(
            text("SELECT observe_public_holidays, schedule_version FROM businesses "
                 "WHERE id = :b"), {"b": business.id},
        )
    ).one()  # fmt: skip
    await owner_session.commit()
    assert row.observe_public_holidays is False and row.schedule_version > version
    assert await _starts(db, business, date(2025, 3, 21)) == FRIDAY
    assert await _starts(db, business, date(2026, 12, 16)) == WEDNESDAY
    assert await _starts(db, business, date(2026, 3, 24)) != []
    assert await _starts(db, business, date(2025, 1, 3)) == FRIDAY
    assert await _starts(db, business, date(2024, 5, 4)) == []  # a Saturday again
    assert "business.public_holidays_set" in await _audit_actions(owner_session, business.id)
    # and on again
    await client.post("/dashboard/closed-days/public-holidays", data=form(csrf, observe="1"))
    assert await _starts(db, business, date(2025, 3, 21)) == []


async def _client_account(owner_session: AsyncSession) -> int:
    account_id = await owner_session.scalar(
        text("INSERT INTO accounts (name, locale) VALUES ('Client', 'ru') RETURNING id")
    )
    await owner_session.execute(
        text(
            "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
            "SELECT :a, version, purposes, 'granted', 'api' FROM policy_versions "
            "ORDER BY effective_at DESC LIMIT 1"
        ),
        {"a": account_id},
    )
    await owner_session.commit()
    assert account_id is not None
    return int(account_id)


async def test_booking_on_a_public_holiday_is_refused(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Database
) -> None:
    """Through the real booking path: Independence Day, Wednesday 16 December 2026."""
    business, csrf = await _owner(client, owner_session, settings)
    await _closed_on_weekends(owner_session, business)
    holiday = date(2026, 12, 16)
    now = datetime.now(UTC)
    if not now.date() + timedelta(days=1) < holiday < now.date() + timedelta(days=85):
        pytest.skip("written for the weeks before 16 December 2026")
    client_id = await _client_account(owner_session)
    wanted = bookings.BookingRequest(
        service_id=business.service_id, staff_id=business.staff_ids[0],
        start=datetime.combine(holiday, time(11), tzinfo=ZONE), source="mini_app",
    )  # fmt: skip
    with pytest.raises(SlotTaken):
        await bookings.create_booking(db, business.slug, wanted, client=ByAccount(client_id),
                                      actor=Actor(kind="client"))  # fmt: skip
    await client.post("/dashboard/closed-days/public-holidays", data=form(csrf, observe="0"))
    made = await bookings.create_booking(db, business.slug, wanted, client=ByAccount(client_id),
                                         actor=Actor(kind="client"))  # fmt: skip
    assert made.start == wanted.start


# --- who may do what -------------------------------------------------------------------------


async def test_a_master_sees_their_own_schedule_and_may_change_nothing(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    mine, other = business.staff_ids
    master = await add_member(owner_session, business.id, "master", staff_id=mine)
    await sign_in_as(client, owner_session, settings, master.account_id)
    listing = await client.get("/dashboard/schedules")
    assert listing.status_code == 200
    assert f"/dashboard/schedules/{mine}" in listing.text
    assert f"/dashboard/schedules/{other}" not in listing.text
    assert (await client.get(f"/dashboard/schedules/{mine}")).status_code == 200
    assert (await client.get(f"/dashboard/schedules/{other}")).status_code == 404
    assert (await client.get("/dashboard/closed-days")).status_code == 200
    csrf = csrf_of(listing.text)
    ids = {"staff_id": mine, "override_id": 1, "time_off_id": 1, "holiday_id": 1}
    for method, template in ADMIN_ROUTES:
        response = await client.request(method, template.format(**ids), data=form(csrf),
                                        follow_redirects=False)  # fmt: skip
        assert response.status_code == 403, template
    assert await _hours(owner_session, mine) != []


async def test_another_business_ids_answer_404(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    theirs = await new_business(owner_session)
    staff_id = theirs.staff_ids[0]
    day = datetime.now(ZONE).date() + timedelta(days=30)
    ids = (
        await owner_session.execute(
            text(
                "WITH o AS (INSERT INTO schedule_overrides (business_id, staff_id, on_date, kind) "
                "  VALUES (:b, :s, :d, 'day_off') RETURNING id), "
                "t AS (INSERT INTO time_off (business_id, staff_id, period) "
                "  VALUES (:b, :s, tstzrange(now() + interval '40 days', now() + interval '41 days')) "
                "  RETURNING id), "
                "h AS (INSERT INTO holidays (business_id, on_date) VALUES (:b, :d) RETURNING id) "
                "SELECT (SELECT id FROM o), (SELECT id FROM t), (SELECT id FROM h)"
            ),
            {"b": theirs.id, "s": staff_id, "d": day},
        )
    ).one()  # fmt: skip
    await owner_session.commit()
    _mine, csrf = await _owner(client, owner_session, settings)
    values = {"staff_id": staff_id, "override_id": ids[0], "time_off_id": ids[1],
              "holiday_id": ids[2]}  # fmt: skip
    fields = form(csrf, on_date=(day + timedelta(days=1)).isoformat(), kind="day_off",
                  date_from=day.isoformat(), **_week({0: [("10:00", "11:00")]}))  # fmt: skip
    for method, template in ID_ROUTES:
        path = template.format(**values)
        response = await client.request(method, path, data=fields, follow_redirects=False)
        assert response.status_code == 404, path
    # too large for an id: still 404, never a 500
    huge = await client.get(f"/dashboard/schedules/{2**63}")
    assert huge.status_code == 404
    # nothing of theirs changed
    left = (
        await owner_session.execute(
            text("SELECT (SELECT count(*) FROM schedule_overrides WHERE business_id = :b), "
                 "(SELECT count(*) FROM time_off WHERE business_id = :b), "
                 "(SELECT count(*) FROM holidays WHERE business_id = :b), "
                 "(SELECT count(*) FROM working_hours WHERE business_id = :b AND staff_id = :s)"),
            {"b": theirs.id, "s": staff_id},
        )
    ).one()  # fmt: skip
    await owner_session.commit()
    assert tuple(left) == (1, 1, 1, 14)


async def test_the_same_hours_for_every_master(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings, masters=3)
    first, second, third = business.staff_ids
    page = await client.get(f"/dashboard/schedules/{second}")
    assert 'name="everyone"' in page.text
    week = {d: [("10:00", "14:00"), ("15:00", "20:00")] for d in range(6)}
    done = await client.post(
        f"/dashboard/schedules/{second}", data=form(csrf, everyone="1", **_week(week)),
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    expected = [(d, s, e) for d in range(6) for s, e in (("10:00", "14:00"), ("15:00", "20:00"))]
    for staff_id in (first, second, third):
        assert await _hours(owner_session, staff_id) == expected
    actions = await _audit_actions(owner_session, business.id)
    assert actions.count("schedule.week_set") == 3
