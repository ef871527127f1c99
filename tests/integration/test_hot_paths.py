"""The one-statement hot paths (migration 0006): availability and booking through plain asyncpg.

They bypass the ORM session, so what ``Database.transaction`` guarantees must hold for them
too: a pooled connection never keeps a tenant or an account, the functions see only what the
app role may see, and what they write is exactly what the ordinary path writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import holidays
import msgspec
import pytest
from sqlalchemy import text

from app.db.session import Database
from app.domain import bookings
from app.domain.audit import Actor
from app.domain.availability import find_slots
from app.domain.availability_reader import (
    AvailabilityReader,
    SlotContext,
    availability_reader,
    build_query,
    public_holidays,
)
from tests.factories import local_start, new_business
from tests.helpers import TelegramUser, assert_error, booking_body, grant_consent

decode_context = msgspec.json.Decoder(SlotContext).decode  # pz_slot_context's document

pytestmark = pytest.mark.policy("10.3")

_CONTEXT = "SELECT pz_slot_context($1, $2, $3, $4, $5)::text"
_SETTINGS = (
    "SELECT coalesce(current_setting('app.business_id', true), '') || '|' || "
    "coalesce(current_setting('app.account_id', true), '')"
)


async def test_a_pooled_connection_never_keeps_the_tenant_or_account(database, owner_session):
    business = await new_business(owner_session)
    day = local_start(business).date()
    single = Database(database.app, pool_size=1)  # every call gets the same connection
    try:
        assert await single.fetchval(_SETTINGS) == "|"
        raw = await single.fetchval(_CONTEXT, business.slug, business.service_id, None, day, day)
        assert decode_context(raw).business.id == business.id
        assert await single.fetchval(_SETTINGS) == "|"
        telegram_id = await owner_session.scalar(
            text("SELECT telegram_id FROM accounts WHERE id = :a"),
            {"a": business.owner_account_id},
        )
        raw = await single.fetchval(
            "SELECT pz_booking_context($1, $2, NULL, $3, NULL, $4, NULL, $5, $6, -1, NULL)::text",
            business.slug, telegram_id, business.service_id, local_start(business), day,
            ["booking"],
        )  # fmt: skip
        assert msgspec.json.decode(raw)["account"]["id"] == business.owner_account_id
        assert await single.fetchval(_SETTINGS) == "|"
        # and nothing of the tenant's private tables is readable without one
        assert await single.fetchval("SELECT count(*) FROM bookings") == 0
        assert await single.fetchval("SELECT count(*) FROM clients") == 0
    finally:
        await single.dispose()


async def test_slot_context_of_unknown_or_archived_things(database, owner_session, db):
    business = await new_business(owner_session)
    day = local_start(business).date()
    assert await db.fetchval(_CONTEXT, "no-such-slug", business.service_id, None, day, day) is None
    other = await new_business(owner_session)
    # another business's service is not this business's service
    raw = await db.fetchval(_CONTEXT, business.slug, other.service_id, None, day, day)
    context = decode_context(raw)
    assert context.service is None and context.schedule is None
    # an archived master is no offer, and asking for them leaves nobody to ask about
    await owner_session.execute(
        text("UPDATE staff SET archived_at = now() WHERE id = :s"), {"s": business.staff_ids[1]}
    )
    await owner_session.commit()
    raw = await db.fetchval(
        _CONTEXT, business.slug, business.service_id, business.staff_ids[1], day, day
    )
    context = decode_context(raw)
    assert [staff for staff, _d, _p in context.offers] == [business.staff_ids[0]]
    assert context.schedule is None


async def test_public_holidays_close_the_day_when_the_business_observes_them(
    client, owner_session, db
):
    business = await new_business(owner_session)
    today = datetime.now(UTC).date()
    upcoming = sorted(
        d for d in holidays.country_holidays("KZ", years=[today.year, today.year + 1])
        if today + timedelta(days=2) <= d <= today + timedelta(days=80)
    )  # fmt: skip
    assert upcoming, "Kazakhstan has a public holiday in any 80 days"
    holiday = upcoming[0]
    assert holiday in public_holidays(holiday.year)
    params = {"service": business.service_id, "date_from": holiday, "date_to": holiday}
    path = f"/api/v1/businesses/{business.slug}/availability"
    assert (await client.get(path, params=params)).json()["slots"]  # open by default
    await owner_session.execute(
        text("UPDATE businesses SET observe_public_holidays = true WHERE id = :b"),
        {"b": business.id},
    )
    await owner_session.commit()
    assert (await client.get(path, params=params)).json()["slots"] == []


async def test_fast_availability_equals_the_engine_on_what_the_database_holds(
    client, owner_session, db
):
    """The API's answer is find_slots over the function's document, whatever the day holds:
    a booking, a day off for one master, time off for another."""
    business = await new_business(owner_session, masters=3)
    day = local_start(business, days_ahead=4).date()
    zone = ZoneInfo(business.timezone)
    first, second, third = business.staff_ids
    await owner_session.execute(
        text(
            "INSERT INTO schedule_overrides (business_id, staff_id, on_date, kind) "
            "VALUES (:b, :s, :d, 'day_off')"
        ),
        {"b": business.id, "s": second, "d": day},
    )
    await owner_session.execute(
        text(
            "INSERT INTO time_off (business_id, staff_id, period) "
            "VALUES (:b, :s, tstzrange(:f, :t))"
        ),
        {"b": business.id, "s": third, "f": datetime.combine(day, time(15), tzinfo=zone),
         "t": datetime.combine(day, time(16, 30), tzinfo=zone)},
    )  # fmt: skip
    await owner_session.commit()
    user = TelegramUser()
    await grant_consent(client, user)
    start = datetime.combine(day, time(10), tzinfo=local_start(business).tzinfo)
    response = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, start, first), headers=user.headers(),
    )  # fmt: skip
    assert response.status_code == 201, response.text

    answer = await client.get(
        f"/api/v1/businesses/{business.slug}/availability",
        params={"service": business.service_id, "date_from": day, "date_to": day},
    )
    got = [(s["start"], s["staff_id"]) for s in answer.json()["slots"]]
    context = decode_context(
        await db.fetchval(_CONTEXT, business.slug, business.service_id, None, day, day)
    )
    assert context.service is not None and context.schedule is not None
    offers = context.offer_map()
    query = build_query(
        context.business, context.service, offers, context.schedule, list(offers), day, day,
        datetime.now(UTC),
    )  # fmt: skip
    expected = [(s.start.isoformat(), s.staff_id) for s in find_slots(query)]
    assert got == expected
    staff_seen = {staff for _start, staff in got}
    assert second not in staff_seen  # a day off
    assert first in staff_seen and third in staff_seen
    assert start.isoformat() not in {s for s, staff in got if staff == first}
    third_starts = {datetime.fromisoformat(s) for s, staff in got if staff == third}
    off_from = datetime.combine(day, time(15), tzinfo=start.tzinfo)
    assert not any(off_from - timedelta(minutes=70) < s < off_from + timedelta(minutes=90)
                   for s in third_starts)  # fmt: skip


async def test_a_returning_telegram_user_is_updated_by_the_booking(client, owner_session):
    """What signing in does to an account (the bot may now write; Telegram's language where
    the person chose none) happens in the fast path's own statement."""
    business = await new_business(owner_session)
    user = TelegramUser(language_code="ru")
    await grant_consent(client, user)
    await owner_session.execute(
        text("UPDATE accounts SET allows_write_to_pm = false WHERE telegram_id = :t"),
        {"t": user.id},
    )
    await owner_session.commit()
    user.language_code = "kk"
    response = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, local_start(business, days_ahead=3), None),
        headers=user.headers(),
    )
    assert response.status_code == 201, response.text
    row = (
        await owner_session.execute(
            text("SELECT allows_write_to_pm, locale FROM accounts WHERE telegram_id = :t"),
            {"t": user.id},
        )
    ).one()
    assert (row.allows_write_to_pm, row.locale) == (True, "kk")
    # the client's own message is queued in the language just learned
    locales = await owner_session.scalar(
        text(
            "SELECT array_agg(DISTINCT n.locale) FROM notifications n JOIN accounts a "
            "ON a.id = n.account_id WHERE a.telegram_id = :t"
        ),
        {"t": user.id},
    )
    assert locales == ["kk"]


async def test_a_taken_first_candidate_gives_way_to_the_next(owner_session, db):
    """pz_booking_insert tries the free masters in order: when the first one's slot is taken
    between the engine's check and the insert, the booking goes to the next one."""
    business = await new_business(owner_session, masters=2, with_owner=False)
    first, second = business.staff_ids
    start = local_start(business, days_ahead=5, at=time(11))
    day = start.date()
    now = datetime.now(UTC)
    context = decode_context(
        await db.fetchval(_CONTEXT, business.slug, business.service_id, None, day, day)
    )
    assert context.service is not None and context.schedule is not None
    offers = context.offer_map()
    query = build_query(
        context.business, context.service, offers, context.schedule, [first, second], day, day,
        now,
    )  # fmt: skip
    wanted = bookings.BookingRequest(
        service_id=business.service_id, staff_id=None, start=start, source="dashboard",
        client_name="Walk-in",
    )  # fmt: skip
    plan = bookings.plan_booking(
        context.business, context.service, offers, query, [first, second], wanted,
        person=None, actor=Actor(kind="staff"), now=now,
    )  # fmt: skip
    assert list(plan.candidates) == [first, second]
    # meanwhile someone else takes the first master's slot
    other = bookings.plan_booking(
        context.business, context.service, offers, query, [first], wanted,
        person=None, actor=Actor(kind="staff"), now=now,
    )  # fmt: skip
    made = msgspec.json.decode(
        await db.fetchval("SELECT pz_booking_insert($1::jsonb)::text",
                          msgspec.json.encode(other.payload).decode())
    )  # fmt: skip
    assert made["staff_id"] == first
    # the public code is unique: the second plan needs its own
    plan.payload["public_code"] = bookings.new_public_code()
    made = msgspec.json.decode(
        await db.fetchval("SELECT pz_booking_insert($1::jsonb)::text",
                          msgspec.json.encode(plan.payload).decode())
    )  # fmt: skip
    assert made["staff_id"] == second
    # nobody is left: the last candidate's conflict reaches the caller
    late = bookings.plan_booking(
        context.business, context.service, offers, query, [first, second], wanted,
        person=None, actor=Actor(kind="staff"), now=now,
    )  # fmt: skip
    with pytest.raises(asyncpg.ExclusionViolationError) as caught:
        await db.fetchval(
            "SELECT pz_booking_insert($1::jsonb)", msgspec.json.encode(late.payload).decode()
        )
    assert bookings.is_slot_conflict(caught.value)
    live = await owner_session.scalar(
        text(
            "SELECT count(*) FROM bookings WHERE business_id = :b "
            "AND status IN ('pending', 'confirmed')"
        ),
        {"b": business.id},
    )
    assert live == 2
    # every booking made its audit entry; the failed one left nothing behind
    entries = await owner_session.scalar(
        text("SELECT count(*) FROM audit_log WHERE business_id = :b AND action = 'booking.create'"),
        {"b": business.id},
    )
    assert entries == 2


async def test_a_booking_longer_than_a_day_is_refused_by_the_schema(owner_session):
    """The schedule read relies on it (it scans one day either side of the asked dates)."""
    business = await new_business(owner_session, with_owner=False)
    client_id = await owner_session.scalar(
        text("INSERT INTO clients (business_id, name) VALUES (:b, 'X') RETURNING id"),
        {"b": business.id},
    )
    with pytest.raises(Exception, match="blocked_span"):
        await owner_session.execute(
            text(
                "INSERT INTO bookings (business_id, public_code, client_id, staff_id, service_id, "
                "period, blocked_period, status, source, service_name, duration_min, price_tiyn, "
                "created_at, updated_at) VALUES (:b, 'LONGLONG01', :c, :s, :v, "
                "tstzrange(now(), now() + interval '2 hours'), "
                "tstzrange(now(), now() + interval '25 hours'), 'confirmed', 'dashboard', "
                "'{\"ru\": \"x\"}', 120, 0, now(), now())"
            ),
            {"b": business.id, "c": client_id, "s": business.staff_ids[0],
             "v": business.service_id},
        )  # fmt: skip
    await owner_session.rollback()


async def test_unknown_business_comes_before_consent(client, owner_session):
    """A person without consent asking an unknown business learns it does not exist (404),
    as on the ordinary path; with a known business they are asked to consent (403)."""
    business = await new_business(owner_session)
    user = TelegramUser()
    await grant_consent(client, user)
    await owner_session.execute(
        text(
            "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
            "SELECT id, (SELECT version FROM policy_versions ORDER BY effective_at DESC LIMIT 1), "
            "ARRAY['booking', 'notifications'], 'withdrawn', 'api' FROM accounts "
            "WHERE telegram_id = :t"
        ),
        {"t": user.id},
    )
    await owner_session.commit()
    body = booking_body(business.service_id, local_start(business, days_ahead=3), None)
    missing = await client.post(
        "/api/v1/businesses/no-such-business/bookings", json=body, headers=user.headers()
    )
    assert_error(missing, 404, "not_found")
    refused = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings", json=body, headers=user.headers()
    )
    assert_error(refused, 403, "consent_required")
    assert (
        await owner_session.scalar(
            text("SELECT count(*) FROM bookings WHERE business_id = :b"), {"b": business.id}
        )
        == 0
    )


async def _version(owner_session: Any, business_id: int) -> int:
    return int(
        await owner_session.scalar(
            text("SELECT schedule_version FROM businesses WHERE id = :b"), {"b": business_id}
        )
    )


async def test_every_change_availability_keeps_bumps_the_schedule_version(owner_session):
    """The cached part of availability is only as fresh as this version: each table it comes
    from must bump it, in the changing transaction (bookings and time off are read fresh)."""
    business = await new_business(owner_session)
    statements = {
        "businesses": "UPDATE businesses SET slot_step_min = 30 WHERE id = :b",
        "staff": "UPDATE staff SET sort_order = sort_order + 1 WHERE business_id = :b",
        "services": "UPDATE services SET buffer_after_min = 0 WHERE business_id = :b",
        "staff_services": "DELETE FROM staff_services WHERE business_id = :b "
        "AND service_id = (SELECT min(service_id) FROM staff_services WHERE business_id = :b "
        "AND staff_id = (SELECT max(staff_id) FROM staff_services WHERE business_id = :b))",
        "working_hours": "UPDATE working_hours SET end_time = '12:00' WHERE business_id = :b "
        "AND start_time = '09:00'",
        "schedule_overrides": "INSERT INTO schedule_overrides (business_id, on_date, kind) "
        "VALUES (:b, current_date + 7, 'day_off')",
        "holidays": "INSERT INTO holidays (business_id, on_date, name) "
        "VALUES (:b, current_date + 9, 'Closed')",
    }
    triggered = await owner_session.scalar(
        text(
            "SELECT array_agg(DISTINCT c.relname::text) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE p.proname IN ('pz_bump_schedule_version', 'pz_business_changed')"
        )
    )
    assert set(triggered) == set(statements)  # what pz_slot_context reads, but bookings
    for table, statement in statements.items():
        before = await _version(owner_session, business.id)
        await owner_session.execute(text(statement), {"b": business.id})
        await owner_session.commit()
        assert await _version(owner_session, business.id) > before, table
    # a booking changes no version: it is read fresh on every request anyway
    before = await _version(owner_session, business.id)
    await owner_session.execute(
        text("INSERT INTO time_off (business_id, staff_id, period) VALUES (:b, :s, "
             "tstzrange(now() + interval '3 days', now() + interval '3 days 1 hour'))"),
        {"b": business.id, "s": business.staff_ids[0]},
    )  # fmt: skip
    await owner_session.commit()
    assert await _version(owner_session, business.id) == before


async def test_availability_sees_a_schedule_change_on_the_next_request(client, owner_session):
    business = await new_business(owner_session, masters=1)
    day = local_start(business, days_ahead=6).date()
    path = f"/api/v1/businesses/{business.slug}/availability"
    params = {"service": business.service_id, "date_from": day, "date_to": day}

    async def starts() -> list[str]:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        return [slot["start"][11:16] for slot in response.json()["slots"]]

    first = await starts()
    assert "15:00" in first and first == await starts()  # the second read used the copy
    await owner_session.execute(
        text("DELETE FROM working_hours WHERE business_id = :b AND start_time = '14:00'"),
        {"b": business.id},
    )
    await owner_session.commit()
    afternoon_gone = await starts()
    assert afternoon_gone and all(s < "14:00" for s in afternoon_gone)
    await owner_session.execute(
        text("INSERT INTO holidays (business_id, on_date, name) VALUES (:b, :d, 'Closed')"),
        {"b": business.id, "d": day},
    )
    await owner_session.commit()
    assert await starts() == []
    await owner_session.execute(
        text("UPDATE services SET archived_at = now() WHERE id = :s"), {"s": business.service_id}
    )
    await owner_session.commit()
    assert_error(await client.get(path, params=params), 404, "not_found")


async def test_a_booking_uses_the_day_the_worker_holds_yet_sees_a_change(
    app, client, owner_session
):
    """The booking's first statement sends the version of the day this worker holds (from an
    availability read) and gets back only what is fresh; hours changed since are still seen."""
    business = await new_business(owner_session, masters=1)
    (master,) = business.staff_ids
    user = TelegramUser()
    await grant_consent(client, user)
    morning = local_start(business, days_ahead=6, at=time(10))
    day = morning.date()
    response = await client.get(
        f"/api/v1/businesses/{business.slug}/availability",
        params={"service": business.service_id, "date_from": day, "date_to": day,
                "staff": master},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    reader = availability_reader(app.state.db)
    key = (business.slug, business.service_id, master, day, day)
    version, held = reader.held(key)
    # the copy is of the business's schedule as it stands now (-1 would mean none is held)
    schedule_version = await owner_session.scalar(
        text("SELECT schedule_version FROM businesses WHERE id = :b"), {"b": business.id}
    )
    assert (version, held) == (schedule_version, [master])

    async def book(start: datetime) -> Any:
        return await client.post(
            f"/api/v1/businesses/{business.slug}/bookings",
            json=booking_body(business.service_id, start, master),
            headers=user.headers(),
        )

    response = await book(morning)
    assert response.status_code == 201, response.text
    assert reader.held(key)[0] == version  # the copy served the booking and still holds
    # the taken hour is fresh data, never part of the copy
    assert_error(await book(morning), 409, "slot_taken")
    await owner_session.execute(
        text("DELETE FROM working_hours WHERE business_id = :b AND start_time = '14:00'"),
        {"b": business.id},
    )
    await owner_session.commit()
    # the afternoon is gone: the stale copy would have let this through
    assert_error(await book(datetime.combine(day, time(15), morning.tzinfo)), 409, "slot_taken")
    assert reader.held(key)[0] > version  # the booking's answer replaced the copy
    response = await book(datetime.combine(day, time(12), morning.tzinfo))
    assert response.status_code == 201, response.text


async def test_a_copy_evicted_while_its_question_is_out_still_answers(owner_session, db):
    """A worker holds a bounded number of copies, and its other requests run while a question
    is out: one of them may evict the copy whose version the question sent before the answer
    ("unchanged, here are the fresh ranges") comes back. The answer completes the copy the
    question was asked about (a 500 under load on 100 businesses before, ``make bench``)."""
    business = await new_business(owner_session, masters=1)
    day = local_start(business, days_ahead=6).date()
    other = day + timedelta(days=1)
    reader = AvailabilityReader(size=1)
    ask = (business.slug, business.service_id, None)
    first = await reader.read(db, *ask, day, day)
    assert first is not None and reader.held((*ask, day, day))[0] >= 0

    class Meanwhile:
        """The real database; while the question is out, another request reads another day."""

        def __init__(self) -> None:
            self.others = 0

        async def fetchval(self, sql: str, *args: Any, read: bool = False) -> Any:
            answer = await db.fetchval(sql, *args, read=read)
            if not self.others:
                self.others += 1
                await reader.read(db, *ask, other, other)  # evicts the copy of `day`
                assert reader.held((*ask, day, day)) == (-1, None)
            return answer

    meanwhile = Meanwhile()
    again = await reader.read(meanwhile, *ask, day, day)
    assert meanwhile.others == 1
    assert again == first


async def test_a_schedule_read_touches_only_the_days_it_reads(database, owner_session):
    """Under row-level security the planner may use an index range only on leakproof
    conditions, so the read of a day's bookings must range over ``starts_at`` (a plain column),
    not ``lower(period)``: otherwise it filters the business's whole history, and every
    booking costs more than the one before (migration 0007)."""
    business = await new_business(owner_session, masters=1, with_owner=False)
    (master,) = business.staff_ids
    client_id = await owner_session.scalar(
        text("INSERT INTO clients (business_id, name) VALUES (:b, 'История') RETURNING id"),
        {"b": business.id},
    )
    days = 60
    first = local_start(business, days_ahead=3, at=time(9))
    await owner_session.execute(
        text(
            "INSERT INTO bookings (business_id, public_code, client_id, staff_id, service_id, "
            "period, blocked_period, status, source, service_name, duration_min, price_tiyn) "
            "SELECT :b, 'H' || d || 'X' || h, :c, :s, :v, "
            "tstzrange(CAST(:t AS timestamptz) + make_interval(days => d, hours => h), "
            "          CAST(:t AS timestamptz) + make_interval(days => d, hours => h, mins => 50)), "
            "tstzrange(CAST(:t AS timestamptz) + make_interval(days => d, hours => h), "
            "          CAST(:t AS timestamptz) + make_interval(days => d, hours => h, mins => 60)), "
            "'confirmed', 'dashboard', '{}'::jsonb, 50, 0 "
            "FROM generate_series(0, :n - 1) d, generate_series(0, 7) h"
        ),
        {"b": business.id, "c": client_id, "s": master, "v": business.service_id, "t": first,
         "n": days},
    )  # fmt: skip
    await owner_session.commit()
    day = (first + timedelta(days=days // 2)).date()
    connection = await asyncpg.connect(database.app)
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT set_config('app.business_id', $1, true)", str(business.id)
            )
            raw = await connection.fetchval(
                "SELECT pz_blocked($1, $2, $3, $3, $4)::text",
                business.id, [master], day, business.timezone,
            )  # fmt: skip
            blocked = msgspec.json.decode(raw)
            # rows a scan of the table, or entries a scan of one of its indexes, gave back
            touched = await connection.fetchval(
                "SELECT sum(pg_stat_get_xact_tuples_returned(c.oid)) FROM pg_class c "
                "WHERE c.oid = 'bookings'::regclass OR c.oid IN "
                "(SELECT indexrelid FROM pg_index WHERE indrelid = 'bookings'::regclass)"
            )
    finally:
        await connection.close()
    # the day's own bookings are all there (with neighbours within the engine's margin)
    zone = ZoneInfo(business.timezone)
    starts = {datetime.fromtimestamp(b[1], zone) for b in blocked}
    assert {datetime.combine(day, time(9 + h), tzinfo=zone) for h in range(8)} <= starts
    # a few days either side at most, never the 480 bookings of the whole history
    assert touched <= 8 * 8, touched
