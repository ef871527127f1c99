"""Analytics (issue 14 item 8): a period's figures overall and per master against the previous
period of the same length, from a small business arranged by hand (the arithmetic is written
out beside each expected figure); another business's bookings never counted; a master sees
only their own numbers; a bad period is 422 in the user's language; and the page reads the
same number of statements for 2 bookings and for 300 (issue 14, done-when)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import analytics
from app.domain.errors import NotFound, ValidationFailed
from app.domain.members import Member
from app.i18n import money, use_locale
from app.models import Holiday
from app.settings import Settings
from tests.factories import BusinessFixture, new_business
from tests.support.dashboard import add_member, sign_in_as

MONDAY = date(2026, 6, 1)  # the period: Monday 1 to Sunday 7 June 2026
SUNDAY = MONDAY + timedelta(days=6)
HOLIDAY = MONDAY + timedelta(days=2)  # the business is closed on Wednesday 3 June
PERIOD = {"from": MONDAY.isoformat(), "to": SUNDAY.isoformat()}


async def _client(session: AsyncSession, business: BusinessFixture, name: str) -> int:
    return int((await session.execute(text(
        "INSERT INTO clients (business_id, name, phone) VALUES (:b, :n, NULL) RETURNING id"),
        {"b": business.id, "n": name})).scalar_one())  # fmt: skip


async def _booking(
    session: AsyncSession,
    business: BusinessFixture,
    *,
    client_id: int,
    staff: int,
    day: date,
    at: time,
    minutes: int = 60,
    price: int = 500_000,
    status: str = "completed",
    cancelled_by: str | None = None,
    cancel_reason: str | None = None,
) -> None:
    """One booking as the business's rows hold it (price in tiyn, times in the business's zone;
    never ``pending``, which would need an expiry)."""
    start = datetime.combine(day, at, tzinfo=ZoneInfo(business.timezone))
    await session.execute(text(
        "INSERT INTO bookings (business_id, public_code, client_id, staff_id, service_id, period, "
        "blocked_period, status, source, service_name, duration_min, price_tiyn, cancelled_by, "
        "cancel_reason) VALUES (:b, :code, :c, :s, :v, tstzrange(:t1, :t2), "
        "tstzrange(:t1, :t2), :status, 'dashboard', CAST('{\"ru\": \"Стрижка\"}' AS jsonb), "
        ":minutes, :price, :by, :reason)"),
        {"b": business.id, "code": uuid4().hex[:12].upper(), "c": client_id,
         "s": business.staff_ids[staff], "v": business.service_id, "t1": start,
         "t2": start + timedelta(minutes=minutes), "status": status, "minutes": minutes,
         "price": price, "by": cancelled_by, "reason": cancel_reason})  # fmt: skip


async def arranged(session: AsyncSession) -> BusinessFixture:
    """Two masters (0 and 1), open every day 09:00-13:00 and 14:00-18:00 (8 h), closed on
    Wednesday 3 June. Clients: Asel is new (first ever booking in the period, with both
    masters), Bota came first in the previous week, Dana first in 2025, Erlan and Gulnar new."""
    business = await new_business(session)
    asel, bota, dana, erlan, gulnar = [
        await _client(session, business, n) for n in ("Asel", "Bota", "Dana", "Erlan", "Gulnar")
    ]
    session.add(Holiday(business_id=business.id, on_date=HOLIDAY))
    book = _booking
    # before both periods: Dana's first visit (counted nowhere, but makes her returning)
    await book(session, business, client_id=dana, staff=0, day=date(2025, 1, 10), at=time(10))
    # the previous period (25-31 May): one completed visit of Bota, 10 000 ₸
    await book(session, business, client_id=bota, staff=0, day=date(2026, 5, 27), at=time(11),
               price=1_000_000)  # fmt: skip
    # the period, master 0: three completed (5 000, 10 000, 15 000 ₸) and a no-show, 60 min each
    await book(session, business, client_id=asel, staff=0, day=MONDAY, at=time(10))
    await book(session, business, client_id=bota, staff=0, day=MONDAY + timedelta(days=1),
               at=time(10), price=1_000_000)  # fmt: skip
    await book(session, business, client_id=dana, staff=0, day=MONDAY + timedelta(days=3),
               at=time(15), price=1_500_000)  # fmt: skip
    await book(session, business, client_id=erlan, staff=0, day=MONDAY + timedelta(days=4),
               at=time(16), status="no_show")  # fmt: skip
    # master 1: a completed 30-minute visit of Asel at 20 000 ₸, Gulnar confirmed at 8 000 ₸
    await book(session, business, client_id=asel, staff=1, day=MONDAY + timedelta(days=1),
               at=time(11), minutes=30, price=2_000_000)  # fmt: skip
    await book(session, business, client_id=gulnar, staff=1, day=SUNDAY, at=time(12),
               price=800_000, status="confirmed")  # fmt: skip
    # cancellations with master 1: by the client, by the business, expired (the system), and
    # a rescheduled original (a move, not a cancellation: left out everywhere)
    for by, reason in (("client", None), ("business", "ill"), ("system", "expired"),
                       ("client", "rescheduled")):  # fmt: skip
        await book(session, business, client_id=bota, staff=1, day=MONDAY + timedelta(days=5),
                   at=time(9), status="cancelled", cancelled_by=by, cancel_reason=reason)  # fmt: skip
    await session.commit()
    return business


def _owner(business: BusinessFixture) -> Member:
    assert business.owner_account_id is not None
    return Member(business.owner_account_id, business.id, "owner")


async def test_the_figures_of_an_arranged_week(db: Database, owner_session: AsyncSession) -> None:
    business = await arranged(owner_session)
    other = await new_business(owner_session)  # its bookings in the same week never count
    stranger = await _client(owner_session, other, "Stranger")
    await _booking(owner_session, other, client_id=stranger, staff=0, day=MONDAY, at=time(10),
                   price=99_900_000)  # fmt: skip
    await owner_session.commit()

    shown = await analytics.report(db, _owner(business), analytics.parse_query(PERIOD))
    f = shown.figures
    assert (shown.period.start, shown.period.end) == (MONDAY, SUNDAY)
    assert shown.previous_period == analytics.Period(date(2026, 5, 25), date(2026, 5, 31))
    assert f.bookings == 4 + 2  # master 0: 3 completed + 1 no-show; master 1: completed, confirmed
    assert f.completed == 3 + 1
    assert f.revenue_tiyn == (5_000 + 10_000 + 15_000 + 20_000) * 100  # 50 000 ₸
    assert f.average_ticket_tiyn == 50_000 * 100 // 4  # 12 500 ₸
    assert f.expected_tiyn == 8_000 * 100
    assert f.no_show_rate == 1 / (4 + 1)  # 20 %
    assert (f.cancelled_by_client, f.cancelled_by_business, f.cancelled_other) == (1, 1, 1)
    assert f.cancellations == 3  # the rescheduled original is not one
    # Asel, Bota, Dana, Erlan, Gulnar; new: Asel, Erlan, Gulnar (Bota came in May, Dana in 2025)
    assert (f.clients, f.new_clients, f.returning_clients) == (5, 3, 2)
    # booked: 4 × 60 + 30 + 60 minutes; open: 2 masters × 6 open days (Wednesday closed) × 8 h
    assert f.booked_min == 4 * 60 + 30 + 60
    assert f.open_min == 2 * 6 * 8 * 60
    assert f.occupancy == 330 / 5760

    # the previous week: Bota's one completed visit at 10 000 ₸, she was new then
    p = shown.previous
    assert (p.bookings, p.completed, p.revenue_tiyn, p.new_clients) == (1, 1, 1_000_000, 1)
    assert p.open_min == 2 * 7 * 8 * 60  # no closed day that week
    metrics = {m.key: m for m in shown.metrics}
    assert metrics["bookings"].change == analytics.Change("up", percent=(6 - 1) * 100 // 1)
    assert metrics["revenue"].change.percent == (50_000 - 10_000) * 100 // 10_000  # +400 %
    assert metrics["average_ticket"].change == analytics.Change("up", percent=25)  # 12 500/10 000
    assert metrics["cancellations"].change == analytics.Change("none")  # none the week before
    assert metrics["no_show_rate"].change == analytics.Change("up", points=20)  # 0 % → 20 %
    assert metrics["new_clients"].change == analytics.Change("up", percent=200)  # 1 → 3

    # per master: a client seen by both masters is new for each, once for the business
    per = {m.staff_id: m for m in shown.per_master}
    first, second = (per[i].figures for i in business.staff_ids)
    assert (first.bookings, first.revenue_tiyn, first.no_show_rate) == (4, 3_000_000, 1 / 4)
    assert first.average_ticket_tiyn == 30_000 * 100 // 3  # 10 000 ₸
    assert (first.clients, first.new_clients) == (4, 2)  # Asel, Bota, Dana, Erlan; Asel, Erlan
    assert first.occupancy == 4 * 60 / (6 * 8 * 60)
    assert (second.bookings, second.revenue_tiyn, second.cancellations) == (2, 2_000_000, 3)
    assert (second.clients, second.new_clients, second.no_show_rate) == (2, 2, 0)
    assert per[business.staff_ids[0]].change == analytics.Change("up", percent=300)  # 1 → 4
    assert per[business.staff_ids[1]].change == analytics.Change("none")  # none the week before

    # by day and by hour (in the business's zone), cancelled bookings left out
    days = {d.day: d for d in shown.days}
    assert len(shown.days) == 7
    assert days[MONDAY + timedelta(days=1)].bookings == 2  # Bota with 0, Asel with 1
    assert days[MONDAY + timedelta(days=1)].revenue_tiyn == (10_000 + 20_000) * 100
    assert days[MONDAY + timedelta(days=5)].bookings == 0  # only cancellations that Saturday
    hour = shown.hours.index
    assert shown.heat[1][hour(10)] == 1 and shown.heat[1][hour(11)] == 1  # Tuesday 10 and 11
    assert shown.heat[0][hour(10)] == 1 and shown.heat[6][hour(12)] == 1  # Monday, Sunday
    assert shown.heat[5][hour(9)] == 0  # Saturday's cancellations
    assert sum(map(sum, shown.heat)) == 6

    # one master chosen: that master's figures only
    narrowed = await analytics.report(
        db, _owner(business), analytics.parse_query({**PERIOD, "staff": str(business.staff_ids[1])})
    )
    assert narrowed.figures.bookings == 2 and narrowed.figures.open_min == 6 * 8 * 60
    assert [m.staff_id for m in narrowed.per_master] == [business.staff_ids[1]]
    with pytest.raises(NotFound):
        await analytics.report(db, _owner(business),
                               analytics.parse_query({**PERIOD, "staff": str(other.staff_ids[0])}))  # fmt: skip


async def test_the_page_shows_charts_with_tables_in_the_users_language(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await arranged(owner_session)
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id,
                     business_id=business.id)  # fmt: skip
    page = await client.get("/dashboard/analytics", params={**PERIOD, "lang": "kk"})
    assert page.status_code == 200, page.text
    body = page.text
    assert body.count('role="img"') == 4  # bookings and revenue by day, hours, masters
    assert '<title id="chart-bookings-t">' in body and '<desc id="chart-hours-d">' in body
    for table in ("table-days", "table-hours", "table-masters"):
        assert f'id="{table}"' in body
    with use_locale("kk"):
        assert money(5_000_000) in body  # the revenue, 50 000 ₸, as Kazakh writes it
        assert money(1_250_000) in body  # the average ticket
    assert "Талдау" in body  # the page's title in Kazakh
    assert "400" in body and "▲" in body  # revenue up 400 %, with words and not colour alone
    assert "<script" not in body.split("</head>", 1)[1]  # the charts need no script
    # htmx asks for the report alone when the period changes
    fragment = await client.get("/dashboard/analytics", params={"preset": "previous_month"},
                                headers={"HX-Request": "true"})  # fmt: skip
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'hx-push-url="true"' in fragment.text
    assert 'aria-current="true">' in fragment.text


async def test_a_master_sees_only_their_own_numbers(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Database
) -> None:
    business = await arranged(owner_session)
    master = await add_member(owner_session, business.id, "master", staff_id=business.staff_ids[0])
    mine = await analytics.report(
        db, Member(master.account_id, business.id, "master", business.staff_ids[0]),
        analytics.parse_query(PERIOD),
    )  # fmt: skip
    assert mine.own_only and mine.masters == [(business.staff_ids[0], "Master 0")]
    assert (mine.figures.bookings, mine.figures.revenue_tiyn) == (4, 3_000_000)
    assert mine.figures.cancellations == 0  # the cancellations were master 1's
    assert [m.staff_id for m in mine.per_master] == [business.staff_ids[0]]
    # a member with no master's column has no numbers at all
    admin_less = await analytics.report(db, Member(master.account_id, business.id, "master"),
                                        analytics.parse_query(PERIOD))  # fmt: skip
    assert admin_less.figures.bookings == 0 and admin_less.per_master == []

    await sign_in_as(client, owner_session, settings, master.account_id, business_id=business.id)
    page = await client.get("/dashboard/analytics", params=PERIOD)
    assert page.status_code == 200
    assert "Master 0" in page.text and "Master 1" not in page.text
    other = await client.get("/dashboard/analytics",
                             params={**PERIOD, "staff": business.staff_ids[1]})  # fmt: skip
    assert other.status_code == 404
    # an administrator sees everyone
    admin = await add_member(owner_session, business.id, "admin")
    await sign_in_as(client, owner_session, settings, admin.account_id, business_id=business.id)
    everyone = await client.get("/dashboard/analytics", params=PERIOD)
    assert "Master 0" in everyone.text and "Master 1" in everyone.text


async def test_a_bad_period_is_422_with_a_message(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id,
                     business_id=business.id)  # fmt: skip
    cases: list[tuple[dict[str, str], str, str]] = [
        ({"from": "2026-06-07", "to": "2026-06-01"}, "to",
         "Последний день не может быть раньше первого."),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to", "Выберите период не длиннее 366 дней."),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from", "Введите дату в формате ГГГГ-ММ-ДД."),
        ({"from": "2026-06-01"}, "to", "Выберите последний день."),
        ({"preset": "forever"}, "preset", "Выберите период из списка."),
        ({"staff": "x"}, "staff", "Выберите мастера из списка."),
        ({"staff": str(2**63)}, "staff", "Выберите мастера из списка."),
    ]  # fmt: skip
    for params, name, message in cases:
        response = await client.get("/dashboard/analytics", params=params)
        assert response.status_code == 422, params
        assert f'id="e-{name}"' in response.text, params
        assert message in response.text, params
    # exactly a year and a day is allowed (366 days)
    ok = await client.get("/dashboard/analytics", params={"from": "2025-01-01", "to": "2026-01-01"})
    assert ok.status_code == 200


def test_presets_name_whole_weeks_and_months() -> None:
    today = date(2026, 3, 18)  # a Wednesday
    period = analytics.resolve_period
    assert period(analytics.Asked("this_week"), today) == analytics.Period(
        date(2026, 3, 16), date(2026, 3, 22)
    )
    assert period(analytics.Asked("this_month"), today) == analytics.Period(
        date(2026, 3, 1), date(2026, 3, 31)
    )
    assert period(analytics.Asked("previous_month"), today) == analytics.Period(
        date(2026, 2, 1), date(2026, 2, 28)
    )
    assert period(analytics.Asked("last_30_days"), today).days == 30
    assert period(analytics.Asked("previous_month"), date(2026, 1, 5)).start == date(2025, 12, 1)
    assert analytics.parse_query({}).preset == analytics.DEFAULT_PRESET
    # dates chosen by hand win over a preset
    assert analytics.parse_query({"preset": "this_week", **PERIOD}).preset is None
    with pytest.raises(ValidationFailed):
        analytics.parse_query({"to": "2026-06-01"})


async def _count(db: Database, member: Member, asked: analytics.Asked) -> tuple[int, int]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        shown = await analytics.report(db, member, asked)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    return len(statements), shown.figures.bookings


async def test_the_report_reads_a_fixed_number_of_statements(
    db: Database, owner_session: AsyncSession
) -> None:
    counts = []
    asked = analytics.parse_query({"from": "2026-04-01", "to": "2026-06-30"})
    for wanted in (2, 300):
        business = await new_business(owner_session)
        client_id = await _client(owner_session, business, "Regular")
        # ``wanted`` completed visits, one an hour from 1 April (masters taking turns)
        await owner_session.execute(text(
            "INSERT INTO bookings (business_id, public_code, client_id, staff_id, service_id, "
            "period, blocked_period, status, source, service_name, duration_min, price_tiyn) "
            "SELECT :b, :code || n, :c, CASE WHEN n % 2 = 0 THEN CAST(:s0 AS bigint) ELSE CAST(:s1 AS bigint) END, :v, "
            "tstzrange(CAST(:t AS timestamptz) + make_interval(hours => n), "
            "CAST(:t AS timestamptz) + make_interval(hours => n, mins => 50)), "
            "tstzrange(CAST(:t AS timestamptz) + make_interval(hours => n), "
            "CAST(:t AS timestamptz) + make_interval(hours => n, mins => 50)), "
            "'completed', 'dashboard', CAST('{\"ru\": \"Стрижка\"}' AS jsonb), 50, 500000 "
            "FROM generate_series(0, :n - 1) n"),
            {"b": business.id, "code": uuid4().hex[:8].upper(), "c": client_id,
             "s0": business.staff_ids[0], "s1": business.staff_ids[1], "v": business.service_id,
             "t": datetime(2026, 4, 1, 4, tzinfo=UTC), "n": wanted})  # fmt: skip
        await owner_session.commit()
        counts.append(await _count(db, _owner(business), asked))
    (few, counted_few), (many, counted_many) = counts
    assert (counted_few, counted_many) == (2, 300)
    assert few == many
    assert few <= 8  # the tenancy, business, masters, figures, days, hours, schedule


def test_changes_are_told_in_words_of_direction() -> None:
    change = analytics.change
    assert change(6, 8, "count") == analytics.Change("down", percent=-25)  # (6 - 8) / 8
    assert change(5, 5, "money") == analytics.Change("same", percent=0)
    assert change(0, 0, "count") == analytics.Change("same", percent=0)
    assert change(3, 0, "count") == analytics.Change("none")  # nothing to compare with
    assert change(0.1, 0.25, "rate") == analytics.Change("down", points=-15)  # 10 % vs 25 %
    assert change(None, 0.5, "rate") == analytics.Change("none")
