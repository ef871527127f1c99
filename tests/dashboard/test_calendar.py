"""The calendar and walk-in bookings (issue 14 items 1 and 2; pinned in DESIGN.md "Dashboard
contracts"): ``GET /dashboard/calendar`` and ``POST /dashboard/bookings``."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import bookings, calendar
from app.domain.audit import Actor
from app.domain.members import Member
from app.models import Business, Holiday, TimeOff
from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business
from tests.support.dashboard import add_member, csrf_of, form, sign_in_as


def _walk_in(business: BusinessFixture, at: datetime, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "service_id": business.service_id, "staff_id": business.staff_ids[0],
        "start": at.isoformat(), "client_name": "Aigerim Walk", "client_phone": "+7 701 555 12 34",
    }  # fmt: skip
    fields.update(extra)
    return fields


async def _owner(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> tuple[BusinessFixture, str]:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id,
                            business_id=business.id)  # fmt: skip
    return business, csrf


async def test_a_walk_in_appears_on_the_calendar(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    start = local_start(business, days_ahead=2, at=time(10))
    response = await client.post("/dashboard/bookings", data=form(csrf, **_walk_in(business, start)),
                                 follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(
        f"/dashboard/calendar?date={start.date().isoformat()}"
    )
    page = await client.get("/dashboard/calendar", params={"date": start.date().isoformat()})
    assert page.status_code == 200
    assert csrf_of(page.text)
    assert "Aigerim Walk" in page.text
    assert "10:00–11:00" in page.text
    assert "cal-status-confirmed" in page.text
    panel = page.text.split('class="cal-block', 1)[1].split('href="', 1)[1].split('"', 1)[0]
    assert panel.startswith("/dashboard/bookings/")
    assert (await client.get(panel)).status_code == 200  # the block opens the booking panel
    assert "Master 0" in page.text and "Master 1" in page.text
    # the empty slots open the new-booking form
    assert "/dashboard/bookings/new?staff=" in page.text
    # the booking is a walk-in with the client card found or made by phone
    row = (
        await owner_session.execute(
            text(
                "SELECT b.source, c.phone, b.account_id FROM bookings b JOIN clients c "
                "ON c.id = b.client_id WHERE b.business_id = :b"
            ),
            {"b": business.id},
        )
    ).one()
    assert row.source == "walk_in" and row.phone == "+77015551234" and row.account_id is None
    # the week view of one master, and htmx gets the fragment only
    week = await client.get("/dashboard/calendar", params={
        "date": start.date().isoformat(), "view": "week", "staff": business.staff_ids[0]})  # fmt: skip
    assert week.status_code == 200 and "Aigerim Walk" in week.text
    fragment = await client.get("/dashboard/calendar", params={"date": start.date().isoformat()},
                                headers={"HX-Request": "true"})  # fmt: skip
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'hx-target="#calendar"' in fragment.text


async def test_a_walk_in_needs_no_confirmation_where_clients_bookings_do(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """The business confirming by hand confirms its clients' bookings; the one its own staff
    enters at the desk is confirmed as it is made (and never expires as unconfirmed)."""
    business = await new_business(owner_session, auto_confirm=False)
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id,
                            business_id=business.id)  # fmt: skip
    start = local_start(business, days_ahead=2, at=time(10))
    response = await client.post("/dashboard/bookings", data=form(csrf, **_walk_in(business, start)),
                                 follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text
    await owner_session.commit()
    row = (
        await owner_session.execute(
            text("SELECT status, pending_expires_at FROM bookings WHERE business_id = :b"),
            {"b": business.id},
        )
    ).one()
    assert row.status == "confirmed" and row.pending_expires_at is None
    # a client's booking in the same business still waits for the business
    made, _ = await bookings.create_booking_in(
        owner_session, await owner_session.get_one(Business, business.id),
        bookings.BookingRequest(service_id=business.service_id, staff_id=business.staff_ids[1],
                                start=start, source="mini_app", client_name="Client"),
        account=None, actor=Actor(kind="system"),
    )  # fmt: skip
    assert made.status == "pending"
    await owner_session.rollback()


async def test_a_returning_walk_in_is_found_by_phone(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """The same phone number, typed another way, brings the visit to the client's card (the
    card counts the person's visits); another number makes another card, and another
    business's card with the same number is never touched."""
    other = await new_business(owner_session)
    business, csrf = await _owner(client, owner_session, settings)
    for target, at, phone in (
        (other, time(10), "+77015550909"),  # a stranger business knows the number too
        (business, time(10), "+7 701 555 09 09"),
        (business, time(12), "8 (701) 555-09-09"),
        (business, time(15), "+7 702 555 09 09"),
    ):
        start = local_start(target, days_ahead=2, at=at)
        if target is other:
            await owner_session.execute(
                text("INSERT INTO clients (business_id, name, phone) VALUES (:b, 'Other', :p)"),
                {"b": other.id, "p": phone},
            )
            await owner_session.commit()
            continue
        made = await client.post("/dashboard/bookings", follow_redirects=False,
                                 data=form(csrf, **_walk_in(business, start, client_phone=phone)))  # fmt: skip
        assert made.status_code == 303, made.text
    rows = (
        await owner_session.execute(
            text(
                "SELECT c.phone, count(*) AS visits, count(DISTINCT c.id) AS cards FROM bookings b "
                "JOIN clients c ON c.id = b.client_id WHERE b.business_id = :b GROUP BY c.phone "
                "ORDER BY c.phone"
            ),
            {"b": business.id},
        )
    ).all()
    assert [(r.phone, r.visits, r.cards) for r in rows] == [
        ("+77015550909", 2, 1),
        ("+77025550909", 1, 1),
    ]
    assert (
        await owner_session.scalar(
            text("SELECT count(*) FROM clients WHERE business_id = :b"), {"b": other.id}
        )
        == 1
    )


async def test_a_taken_time_is_409_and_keeps_what_was_typed(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    start = local_start(business, days_ahead=3, at=time(11))
    first = await client.post("/dashboard/bookings", data=form(csrf, **_walk_in(business, start)),
                              follow_redirects=False)  # fmt: skip
    assert first.status_code == 303
    again = await client.post(
        "/dashboard/bookings",
        data=form(csrf, **_walk_in(business, start, client_name="Second Person",
                                   client_phone="+7 702 000 11 22")),
        follow_redirects=False,
    )  # fmt: skip
    assert again.status_code == 409
    assert 'value="Second Person"' in again.text
    assert 'value="+7 702 000 11 22"' in again.text
    assert 'class="error form-error"' in again.text
    assert f'name="csrf_token" value="{csrf_of(again.text)}"' in again.text


async def test_bad_input_is_422_beside_the_fields(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    start = local_start(business, days_ahead=2, at=time(12))
    cases = [
        ({"client_phone": "12345"}, "client_phone"),
        ({"client_name": "   "}, "client_name"),
        ({"start": "tomorrow"}, "start"),
        ({"start": start.replace(tzinfo=None).isoformat()}, "start"),
        ({"service_id": "x"}, "service_id"),
        ({"staff_id": ""}, "staff_id"),
        (
            {"service_id": business.short_service_id, "staff_id": business.staff_ids[1]},
            "service_id",
        ),
    ]
    for change, name in cases:
        response = await client.post(
            "/dashboard/bookings", data=form(csrf, **_walk_in(business, start, **change)),
            follow_redirects=False,
        )  # fmt: skip
        assert response.status_code == 422, (change, response.status_code)
        assert f'id="e-{name}"' in response.text, change
        assert 'value="Aigerim Walk"' in response.text or name == "client_name"
    for params in ({"date": "2026-13-01"}, {"date": "yesterday"}, {"view": "month"},
                   {"staff": "abc"}, {"staff": "0"}):  # fmt: skip
        response = await client.get("/dashboard/calendar", params=params)
        assert response.status_code == 422, params
    response = await client.get("/dashboard/calendar", params={"view": "month"})
    assert "Выберите вид: день или неделя." in response.text  # named, in the language
    # nothing was written
    count = (
        await owner_session.execute(
            text("SELECT count(*) FROM bookings WHERE business_id = :b"),
            {"b": business.id},
        )
    ).scalar_one()
    assert count == 0


async def test_a_master_sees_and_books_only_their_own_column(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    master = await add_member(owner_session, business.id, "master", staff_id=business.staff_ids[0])
    csrf = await sign_in_as(client, owner_session, settings, master.account_id,
                            business_id=business.id)  # fmt: skip
    day = local_start(business, days_ahead=2).date().isoformat()
    page = await client.get("/dashboard/calendar", params={"date": day})
    assert page.status_code == 200
    assert "Master 0" in page.text and "Master 1" not in page.text
    other = await client.get("/dashboard/calendar", params={"date": day,
                                                            "staff": business.staff_ids[1]})  # fmt: skip
    assert other.status_code == 404
    start = local_start(business, days_ahead=2, at=time(15))
    refused = await client.post(
        "/dashboard/bookings",
        data=form(csrf, **_walk_in(business, start, staff_id=business.staff_ids[1])),
        follow_redirects=False,
    )  # fmt: skip
    assert refused.status_code == 422
    own = await client.post("/dashboard/bookings", data=form(csrf, **_walk_in(business, start)),
                            follow_redirects=False)  # fmt: skip
    assert own.status_code == 303


async def test_another_business_staff_is_404(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    other = await new_business(owner_session)
    response = await client.get("/dashboard/calendar", params={"staff": other.staff_ids[0]})
    assert response.status_code == 404
    start = local_start(business, days_ahead=2, at=time(10))
    booked = await client.post(
        "/dashboard/bookings",
        data=form(csrf, **_walk_in(business, start, staff_id=other.staff_ids[0])),
        follow_redirects=False,
    )  # fmt: skip
    assert booked.status_code == 404
    form_page = await client.get("/dashboard/bookings/new",
                                 params={"staff": business.staff_ids[0], "start": start.isoformat()})  # fmt: skip
    assert form_page.status_code == 200 and 'name="client_phone"' in form_page.text
    assert f'name="csrf_token" value="{csrf_of(form_page.text)}"' in form_page.text


async def _count_statements(db: Database, member: Member, day: date) -> tuple[int, int]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        shown = await calendar.calendar(db, member, day=day, view="week")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    drawn = sum(len(c.blocks) for col in shown.columns for c in col.cells.values())
    return len(statements), drawn


async def test_the_calendar_reads_a_fixed_number_of_statements(
    db: Database, owner_session: AsyncSession
) -> None:
    counts = []
    for bookings_wanted in (10, 40):
        business = await new_business(owner_session)
        assert business.owner_account_id is not None
        owner = Member(business.owner_account_id, business.id, "owner")
        zone = ZoneInfo(business.timezone)
        today = datetime.now(zone).date()
        monday = today + timedelta(days=7 - today.weekday() + 7)
        actor = Actor(account_id=business.owner_account_id, kind="staff")
        made = 0
        day = 0
        while made < bookings_wanted:
            for hour in (9, 10, 11, 12, 14, 15, 16, 17):
                for minute in (0, 30):
                    if made == bookings_wanted:
                        break
                    start = datetime.combine(monday + timedelta(days=day), time(hour, minute),
                                             tzinfo=zone)  # fmt: skip
                    await calendar.book_walk_in(db, owner, {
                        "service_id": str(business.short_service_id),
                        "staff_id": str(business.staff_ids[0]), "start": start.isoformat(),
                        "client_name": f"Client {made}", "client_phone": f"+7701{made:07d}",
                    }, actor=actor)  # fmt: skip
                    made += 1
            day += 1
        counts.append(await _count_statements(db, owner, monday))
    (few, drawn_few), (many, drawn_many) = counts
    assert drawn_few == 10 and drawn_many == 40
    assert few == many
    assert few <= 8  # the business, its masters, the bookings, the schedule (+ the tenancy)


async def test_with_htmx_a_walk_in_answers_201_with_the_calendar(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business, csrf = await _owner(client, owner_session, settings)
    start = local_start(business, days_ahead=4, at=time(16))
    response = await client.post(
        "/dashboard/bookings", data=form(csrf, **_walk_in(business, start)),
        headers={"HX-Request": "true"}, follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 201
    assert "Aigerim Walk" in response.text and "16:00–17:00" in response.text
    assert response.headers["HX-Push-Url"].endswith(f"date={start.date().isoformat()}&view=day")
    assert "<html" not in response.text


async def test_the_schedule_is_shaded_and_cancelled_bookings_leave_the_grid(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    owner = Member(business.owner_account_id, business.id, "owner")
    first, second = business.staff_ids
    start = local_start(business, days_ahead=3, at=time(10))
    day = start.date()
    # time off for the second master 15:00-16:00, the business closed the day after
    zone = ZoneInfo(business.timezone)
    owner_session.add(TimeOff(business_id=business.id, staff_id=second, period=Range(
        datetime.combine(day, time(15), tzinfo=zone), datetime.combine(day, time(16), tzinfo=zone))))  # fmt: skip
    owner_session.add(Holiday(business_id=business.id, on_date=day + timedelta(days=1)))
    await owner_session.commit()
    actor = Actor(account_id=business.owner_account_id, kind="staff")
    fields = {k: str(v) for k, v in _walk_in(business, start).items()}
    made = await calendar.book_walk_in(db, owner, fields, actor=actor)
    shown = await calendar.calendar(db, owner, day=day)
    columns = {c.staff_id: c for c in shown.columns}
    row_of = {t: i for i, t in enumerate(shown.rows)}
    booked = columns[first].cells[row_of[time(10)]]
    assert booked.kind == "booking" and booked.rows == 4 and booked.blocks[0].id == made.id
    assert columns[first].cells[row_of[time(11)]].kind == "blocked"  # the 10 minutes after
    assert columns[first].cells[row_of[time(13)]].kind == "off"  # the lunch break
    assert columns[first].cells[row_of[time(9)]].kind == "work"
    assert columns[second].cells[row_of[time(15)]].kind == "blocked"  # time off
    assert columns[second].cells[row_of[time(16)]].kind == "work"
    closed = await calendar.calendar(db, owner, day=day + timedelta(days=1))
    assert all(c.closed for c in closed.columns)
    assert {cell.kind for c in closed.columns for cell in c.cells.values()} == {"closed"}
    # cancelled: no longer drawn
    await bookings.cancel_booking(db, made.id, by=owner, reason=None, actor=actor)
    again = await calendar.calendar(db, owner, day=day)
    assert all(not cell.blocks for c in again.columns for cell in c.cells.values())


async def test_today_has_a_now_line(db: Database, owner_session: AsyncSession) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    owner = Member(business.owner_account_id, business.id, "owner")
    zone = ZoneInfo(business.timezone)
    now = datetime.combine(datetime.now(zone).date(), time(10, 7), tzinfo=zone)
    shown = await calendar.calendar(db, owner, day=None, now=now)
    assert shown.day == now.date() and shown.today == now.date()
    marked = [(c.staff_id, cell.start.time()) for c in shown.columns
              for cell in c.cells.values() if cell.now]  # fmt: skip
    assert marked == [(business.staff_ids[0], time(10)), (business.staff_ids[1], time(10))]
    other_day = await calendar.calendar(db, owner, day=now.date() + timedelta(days=1), now=now)
    assert not any(cell.now for c in other_day.columns for cell in c.cells.values())
