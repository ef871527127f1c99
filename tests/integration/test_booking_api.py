"""The pinned ``/api/v1`` and ``/auth/telegram`` contract (DESIGN.md), end to end over HTTP.

Expectations are computed here from the business's set-up (hours 09–13 and 14–18, a 60 min
service with a 10 min buffer after, a 15 min grid), not read back from the slot engine.
"""

from __future__ import annotations

import asyncio
import time as clock
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import BOT_TOKEN, ROOT
from tests.factories import BusinessFixture, local_start, new_business
from tests.helpers import (
    CYRILLIC,
    TelegramUser,
    assert_error,
    assert_not_5xx,
    booking_body,
    grant_consent,
)
from tests.support.telegram import make_init_data

HOURS = ((time(9), time(13)), (time(14), time(18)))
STEP = timedelta(minutes=15)
BOOKING_KEYS = {"id", "status", "start", "end", "staff_id", "service_id"}
HUGE_IDS = ("99999999999999999999", str(2**63), "-1", "0", "1.5", "abc", "")


# ---------------------------------------------------------------- helpers


@pytest.fixture
async def owner_db(owner_engine: Any) -> Any:
    """A session as the tables' owner that may commit (arrange) and then keep reading."""
    async with AsyncSession(owner_engine, expire_on_commit=False) as session:
        yield session
        await session.rollback()


def expected_slots(
    day: date,
    staff_ids: list[int],
    busy: dict[int, list[tuple[datetime, datetime]]] | None = None,
    *,
    duration: int = 60,
    buffer_after: int = 10,
    zone: str = "Asia/Almaty",
) -> list[dict[str, Any]]:
    """Every bookable (start, master) of one day, the naive way: walk the grid of each interval."""
    tz = ZoneInfo(zone)
    busy = busy or {}
    found = []
    for staff_id in staff_ids:
        for opens, closes in HOURS:
            start = datetime.combine(day, opens, tzinfo=tz)
            close = datetime.combine(day, closes, tzinfo=tz)
            while start + timedelta(minutes=duration) <= close:
                blocked_end = start + timedelta(minutes=duration + buffer_after)
                if not any(b < blocked_end and start < e for b, e in busy.get(staff_id, [])):
                    found.append((start, staff_id))
                start += STEP
    found.sort()
    return [
        {
            "start": s.isoformat(),
            "end": (s + timedelta(minutes=duration)).isoformat(),
            "staff_id": staff_id,
        }
        for s, staff_id in found
    ]


async def consented(client: httpx.AsyncClient, **kwargs: Any) -> TelegramUser:
    user = TelegramUser(**kwargs)
    await grant_consent(client, user)
    return user


async def book(
    client: httpx.AsyncClient,
    business: BusinessFixture,
    user: TelegramUser,
    start: datetime,
    staff_id: int | None = None,
    *,
    service_id: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    response = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(service_id or business.service_id, start, staff_id, **extra),
        headers={**user.headers(), **(headers or {})},
    )
    assert_not_5xx(response)
    return response


async def slots(
    client: httpx.AsyncClient, business: BusinessFixture, day: date, **params: Any
) -> list[dict[str, Any]]:
    query = {"service": business.service_id, "date_from": day, "date_to": day, **params}
    response = await client.get(f"/api/v1/businesses/{business.slug}/availability", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"slots"}
    return list(body["slots"])


async def live_rows(owner_db: Any, business_id: int) -> list[Any]:
    rows = await owner_db.execute(
        text(
            "SELECT id, account_id, staff_id, lower(period) AS s, upper(period) AS e, status "
            "FROM bookings WHERE business_id = :b AND status IN ('pending', 'confirmed') "
            "ORDER BY id"
        ),
        {"b": business_id},
    )
    return list(rows)


async def account_of(owner_db: Any, telegram_id: int) -> int:
    return int(
        await owner_db.scalar(
            text("SELECT id FROM accounts WHERE telegram_id = :t"), {"t": telegram_id}
        )
    )


# ---------------------------------------------------------------- policy and consent


async def test_policy_shape_and_language(client):
    versions = yaml.safe_load((ROOT / "policy" / "versions.yml").read_text(encoding="utf-8"))
    current = next(v for v in versions["versions"] if v["version"] == versions["current"])

    response = await client.get("/api/v1/policy")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"version", "purposes", "url"}
    assert body["version"] == versions["current"]
    assert body["purposes"] == list(current["purposes"])
    assert {"booking", "notifications"} <= set(body["purposes"])
    assert body["url"] == "https://pozapisi.kz/ru/privacy/"

    english = await client.get("/api/v1/policy", headers={"Accept-Language": "en"})
    assert english.json()["url"] == "https://pozapisi.kz/en/privacy/"


async def test_consent_is_recorded_with_its_technical_data(client, owner_db):
    user = TelegramUser()
    policy = (await client.get("/api/v1/policy")).json()
    response = await client.post(
        "/api/v1/me/consent",
        json={"policy_version": policy["version"], "purposes": policy["purposes"]},
        headers=user.headers(**{"User-Agent": "consent-test-agent"}),
    )
    assert response.status_code == 201, response.text
    account_id = await account_of(owner_db, user.id)
    row = (
        await owner_db.execute(
            text(
                "SELECT c.id, c.action, c.channel, c.policy_version, c.purposes, t.user_agent "
                "FROM consents c LEFT JOIN consent_technical t ON t.consent_id = c.id "
                "WHERE c.account_id = :a"
            ),
            {"a": account_id},
        )
    ).one()
    assert row.id == response.json()["id"]
    assert (row.action, row.channel, row.policy_version) == ("granted", "api", policy["version"])
    assert sorted(row.purposes) == sorted(policy["purposes"])
    assert row.user_agent == "consent-test-agent"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"policy_version": "1999-01-01", "purposes": ["booking", "notifications"]},
            "policy_version",
        ),
        ({"policy_version": None, "purposes": ["booking", "notifications", "spam"]}, "purposes"),
        ({"policy_version": None, "purposes": ["booking"]}, "purposes"),
        ({"policy_version": None, "purposes": []}, "purposes"),
        ({"policy_version": None}, "purposes"),
        ({"purposes": ["booking", "notifications"]}, "policy_version"),
        ({"policy_version": None, "purposes": ["booking", "notifications"], "x": 1}, "x"),
        ({"policy_version": None, "purposes": "booking"}, None),
        ({"policy_version": "v" * 500, "purposes": ["booking", "notifications"]}, None),
    ],
)
async def test_consent_rejects_wrong_version_and_unknown_purposes(client, owner_db, body, field):
    current = (await client.get("/api/v1/policy")).json()["version"]
    if "policy_version" in body and body["policy_version"] is None:
        body = {**body, "policy_version": current}
    user = TelegramUser(language_code="en")
    response = await client.post("/api/v1/me/consent", json=body, headers=user.headers())
    assert_error(response, 422, "validation", fields={field} if field else None)
    rows = await owner_db.scalar(
        text(
            "SELECT count(*) FROM consents c JOIN accounts a ON a.id = c.account_id "
            "WHERE a.telegram_id = :t"
        ),
        {"t": user.id},
    )
    assert rows == 0


async def test_consent_needs_a_signed_caller(client):
    policy = (await client.get("/api/v1/policy")).json()
    body = {"policy_version": policy["version"], "purposes": policy["purposes"]}
    assert_error(await client.post("/api/v1/me/consent", json=body), 401, "unauthorized")
    forged = {"Authorization": "tma " + make_init_data("1:other-bot", user_id=5)}
    assert_error(
        await client.post("/api/v1/me/consent", json=body, headers=forged), 401, "unauthorized"
    )


# ---------------------------------------------------------------- services


async def test_services_shape(client, owner_db):
    business = await new_business(owner_db)
    response = await client.get(f"/api/v1/businesses/{business.slug}/services")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"services"}
    assert body["services"] == [
        {
            "id": business.service_id,
            "name": "Стрижка",
            "category": None,
            "duration_min": 60,
            "price_tiyn": 500000,
            "currency": "KZT",
            "staff_ids": business.staff_ids,
        },
        {
            "id": business.short_service_id,
            "name": "Брови",
            "category": None,
            "duration_min": 30,
            "price_tiyn": 200000,
            "currency": "KZT",
            "staff_ids": business.staff_ids[:1],
        },
    ]


@pytest.mark.parametrize(
    ("accept_language", "names"),
    [
        ("en", ["Haircut", "Brows"]),
        ("kk-KZ,kk;q=0.9", ["Шаш қию", "Қас"]),
        ("de, en;q=0.5", ["Haircut", "Brows"]),
        ("de", ["Стрижка", "Брови"]),
    ],
)
async def test_service_names_follow_accept_language(client, owner_db, accept_language, names):
    business = await new_business(owner_db)
    response = await client.get(
        f"/api/v1/businesses/{business.slug}/services",
        headers={"Accept-Language": accept_language},
    )
    assert [s["name"] for s in response.json()["services"]] == names


async def test_service_names_follow_the_telegram_language(client, owner_db):
    business = await new_business(owner_db)
    url = f"/api/v1/businesses/{business.slug}/services"
    kazakh = TelegramUser(language_code="kk")
    # Telegram's language beats the browser's header (the Mini App runs inside Telegram)
    response = await client.get(url, headers=kazakh.headers(**{"Accept-Language": "en"}))
    assert [s["name"] for s in response.json()["services"]] == ["Шаш қию", "Қас"]

    # a language the person chose in the app beats Telegram's
    signed = await client.post("/auth/telegram", json={"init_data": _raw(kazakh.headers())})
    assert signed.status_code == 200
    await owner_db.execute(
        text("UPDATE accounts SET locale = 'en', locale_chosen = true WHERE id = :a"),
        {"a": signed.json()["account_id"]},
    )
    await owner_db.commit()
    response = await client.get(url, headers=kazakh.headers())
    assert [s["name"] for s in response.json()["services"]] == ["Haircut", "Brows"]

    # a forged header on a public page changes nothing but the language (no 401, no kk)
    forged = {"Authorization": "tma " + make_init_data("1:other", user_id=1, language_code="kk")}
    response = await client.get(url, headers=forged)
    assert response.status_code == 200
    assert [s["name"] for s in response.json()["services"]] == ["Стрижка", "Брови"]


async def test_services_leave_out_archived_services_masters_and_businesses(client, owner_db):
    business = await new_business(owner_db)
    url = f"/api/v1/businesses/{business.slug}/services"
    first, second = business.staff_ids[:2]
    await owner_db.execute(
        text("UPDATE services SET archived_at = now() WHERE id = :s"),
        {"s": business.short_service_id},
    )
    await owner_db.execute(text("UPDATE staff SET archived_at = now() WHERE id = :m"), {"m": first})
    await owner_db.commit()
    body = (await client.get(url)).json()
    assert [(s["id"], s["staff_ids"]) for s in body["services"]] == [
        (business.service_id, [m for m in business.staff_ids if m != first])
    ]
    assert second in body["services"][0]["staff_ids"]

    await owner_db.execute(
        text("UPDATE businesses SET archived_at = now() WHERE slug = :s"), {"s": business.slug}
    )
    await owner_db.commit()
    assert_error(await client.get(url), 404, "not_found")


async def test_services_of_unknown_business_is_404(client):
    assert_error(await client.get("/api/v1/businesses/no-such-salon/services"), 404, "not_found")
    assert_error(await client.get("/api/v1/businesses/%27%22;--/services"), 404, "not_found")
    # PostgreSQL text cannot hold NUL: refused as input, never a 500
    assert_error(await client.get("/api/v1/businesses/a%00b/services"), 422, "validation")


# ---------------------------------------------------------------- availability


async def test_availability_lists_every_slot_sorted(client, owner_db):
    business = await new_business(owner_db)
    day = local_start(business, days_ahead=3).date()
    got = await slots(client, business, day)
    expected = expected_slots(day, business.staff_ids)
    assert got == expected
    assert len(got) == 2 * 2 * 13  # two masters, two intervals of 13 starts each
    # one item per (start, master), both masters at opening time, every offset +05:00
    assert len({(s["start"], s["staff_id"]) for s in got}) == len(got)
    assert got[0]["start"] == f"{day.isoformat()}T09:00:00+05:00"
    assert [s["staff_id"] for s in got[:2]] == sorted(business.staff_ids)
    assert all(s["start"].endswith("+05:00") and s["end"].endswith("+05:00") for s in got)
    # `end` is start + 60 min: the 10 min buffer is not the client's business
    assert got[0]["end"] == f"{day.isoformat()}T10:00:00+05:00"
    assert got[-1]["start"] == f"{day.isoformat()}T17:00:00+05:00"


async def test_availability_for_one_master_and_other_services(client, owner_db):
    business = await new_business(owner_db)
    day = local_start(business, days_ahead=4).date()
    second = business.staff_ids[1]
    got = await slots(client, business, day, staff=second)
    assert got == expected_slots(day, [second])
    short = await slots(client, business, day, service=business.short_service_id)
    assert short == expected_slots(day, business.staff_ids[:1], duration=30, buffer_after=0)
    assert len(short) == 2 * 15
    # the second master does not do brows
    response = await client.get(
        f"/api/v1/businesses/{business.slug}/availability",
        params={"service": business.short_service_id, "staff": second,
                "date_from": day, "date_to": day},
    )  # fmt: skip
    assert_error(response, 404, "not_found")


async def test_availability_over_several_days(client, owner_db):
    business = await new_business(owner_db)
    first = local_start(business, days_ahead=3).date()
    last = first + timedelta(days=30)  # 31 days: the most one may ask for
    response = await client.get(
        f"/api/v1/businesses/{business.slug}/availability",
        params={"service": business.service_id, "date_from": first, "date_to": last},
    )
    assert response.status_code == 200
    got = response.json()["slots"]
    expected = []
    for offset in range(31):
        expected += expected_slots(first + timedelta(days=offset), business.staff_ids)
    assert got == expected


async def test_a_booked_slot_disappears(client, owner_db):
    business = await new_business(owner_db)
    user = await consented(client)
    start = local_start(business, days_ahead=3, at=time(10))
    first = business.staff_ids[0]
    assert (await book(client, business, user, start, first)).status_code == 201
    got = await slots(client, business, start.date())
    busy = {first: [(start, start + timedelta(minutes=70))]}
    assert got == expected_slots(start.date(), business.staff_ids, busy)
    taken = {(s["start"], s["staff_id"]) for s in got}
    assert (start.isoformat(), first) not in taken
    assert (start.isoformat(), business.staff_ids[1]) in taken
    # the buffer keeps 11:00 blocked for this master; 11:15 touches the buffer's end and is free
    assert ((start + timedelta(minutes=60)).isoformat(), first) not in taken
    assert ((start + timedelta(minutes=75)).isoformat(), first) in taken
    # 09:00 would run into the booking (09:00–10:00 then the 10 min buffer)
    assert ((start - timedelta(minutes=60)).isoformat(), first) not in taken


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_to": "+31"}, "date_to"),
        ({"date_to": "+400"}, "date_to"),
        ({"date_to": "-1"}, "date_to"),
        ({"date_from": "2026-13-01"}, None),
        ({"date_from": "2026-02-30"}, None),
        ({"date_from": "yesterday"}, None),
        ({"date_from": "99999-01-01"}, None),
        ({"date_to": ""}, None),
        ({"date_from": None}, None),
        ({"service": None}, None),
        ({"staff": "abc"}, "staff"),
        ({"staff": "-1"}, "staff"),
        ({"staff": "0"}, "staff"),
        ({"staff": str(2**63)}, "staff"),
        ({"staff": "99999999999999999999"}, None),
        ({"staff": "١٢"}, "staff"),  # Arabic-Indic digits pass str.isdigit()
        *[({"service": value}, None) for value in HUGE_IDS],
    ],
)
async def test_availability_rejects_bad_input_with_422(client, owner_db, params, field):
    business = await new_business(owner_db)
    day = local_start(business, days_ahead=3).date()
    query: dict[str, Any] = {"service": business.service_id, "date_from": day, "date_to": day}
    for key, value in params.items():
        if value is None:
            query.pop(key)
        elif key == "date_to" and value[:1] in "+-" and value[1:].isdigit():
            query[key] = day + timedelta(days=int(value))
        else:
            query[key] = value
    response = await client.get(
        f"/api/v1/businesses/{business.slug}/availability",
        params=query,
        headers={"Accept-Language": "en"},
    )
    body = assert_error(response, 422, "validation", fields={field} if field else None)
    assert body["detail"] == "Please correct the highlighted fields."


async def test_availability_of_unknown_business_or_service_is_404(client, owner_db):
    business = await new_business(owner_db)
    other = await new_business(owner_db)
    day = local_start(business, days_ahead=3).date()
    url = f"/api/v1/businesses/{business.slug}/availability"
    params = {"date_from": day, "date_to": day}
    for service in (2**63 - 1, other.service_id):  # another business's service is not here
        response = await client.get(url, params={**params, "service": service})
        assert_error(response, 404, "not_found")
    response = await client.get(
        "/api/v1/businesses/nobody-here/availability",
        params={**params, "service": business.service_id},
    )
    assert_error(response, 404, "not_found")
    response = await client.get(
        url, params={**params, "service": business.service_id, "staff": other.staff_ids[0]}
    )
    assert_error(response, 404, "not_found")


# ---------------------------------------------------------------- create a booking


@pytest.mark.policy("3.1")
async def test_booking_needs_consent_first(client, owner_db):
    business = await new_business(owner_db)
    user = TelegramUser()
    start = local_start(business, days_ahead=3)
    response = await book(client, business, user, start, business.staff_ids[0])
    assert_error(response, 403, "consent_required")
    assert await live_rows(owner_db, business.id) == []

    await grant_consent(client, user)
    response = await book(client, business, user, start, business.staff_ids[0])
    assert response.status_code == 201


async def test_create_booking(client, owner_db):
    business = await new_business(owner_db)
    user = await consented(client)
    start = local_start(business, days_ahead=3, at=time(10))
    response = await book(client, business, user, start, business.staff_ids[1], comment="Hi")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == BOOKING_KEYS
    assert body["status"] == "confirmed"
    assert body["start"] == f"{start.date().isoformat()}T10:00:00+05:00"
    assert body["end"] == f"{start.date().isoformat()}T11:00:00+05:00"
    assert (body["staff_id"], body["service_id"]) == (business.staff_ids[1], business.service_id)
    assert response.headers["location"] == f"/api/v1/me/bookings/{body['id']}"

    rows = await live_rows(owner_db, business.id)
    assert [(r.id, r.staff_id, r.s, r.e) for r in rows] == [
        (body["id"], business.staff_ids[1], start, start + timedelta(minutes=60))
    ]
    assert rows[0].account_id == await account_of(owner_db, user.id)
    blocked, comment, source = (
        await owner_db.execute(
            text("SELECT upper(blocked_period), comment, source FROM bookings WHERE id = :i"),
            {"i": body["id"]},
        )
    ).one()
    assert blocked == start + timedelta(minutes=70)
    assert (comment, source) == ("Hi", "api")

    # the booking is where Location says
    mine = await client.get(response.headers["location"], headers=user.headers())
    assert mine.status_code == 200
    assert mine.json() == body


async def test_pending_when_the_business_confirms_by_hand(client, owner_db):
    business = await new_business(owner_db, auto_confirm=False)
    user = await consented(client)
    response = await book(client, business, user, local_start(business, 3), business.staff_ids[0])
    assert response.status_code == 201
    assert response.json()["status"] == "pending"


async def test_start_in_another_offset_is_the_same_instant(client, owner_db):
    business = await new_business(owner_db)
    user = await consented(client)
    local = local_start(business, days_ahead=3, at=time(15))
    utc = local.astimezone(ZoneInfo("UTC"))  # 10:00 UTC
    response = await book(client, business, user, utc, business.staff_ids[0])
    assert response.status_code == 201
    assert response.json()["start"] == local.isoformat()
    assert response.json()["start"].endswith("T15:00:00+05:00")


async def test_taken_slot_is_409(client, owner_db):
    business = await new_business(owner_db)
    first, second = await consented(client), await consented(client, language_code="en")
    start = local_start(business, days_ahead=3, at=time(10))
    master = business.staff_ids[0]
    assert (await book(client, business, first, start, master)).status_code == 201
    for moment in (start, start + timedelta(minutes=30), start - timedelta(minutes=45)):
        response = await book(client, business, second, moment, master)
        body = assert_error(response, 409, "slot_taken")
        assert body["detail"] == "This time was just taken. Please choose another slot."
    # right after the buffer the master is free again
    response = await book(client, business, second, start + timedelta(minutes=75), master)
    assert response.status_code == 201
    assert len(await live_rows(owner_db, business.id)) == 2


@pytest.mark.parametrize(
    ("at", "days"),
    [
        (time(20), 3),  # after closing
        (time(13, 30), 3),  # lunch break
        (time(12, 30), 3),  # would run past 13:00
        (time(7), 3),  # before opening
        (time(10, 7), 3),  # off the 15 min grid
        (time(10), -2),  # in the past
        (time(10), 200),  # beyond the business's horizon (90 days)
    ],
)
async def test_start_that_is_not_offered_is_409(client, owner_db, at, days):
    """A start the availability does not offer cannot be booked: 409 ``slot_taken`` (the slot
    is not available), the same answer the Mini App gets when someone was faster."""
    business = await new_business(owner_db)
    user = await consented(client)
    start = local_start(business, days_ahead=days, at=at)
    response = await book(client, business, user, start, business.staff_ids[0])
    assert_error(response, 409, "slot_taken")
    response = await book(client, business, user, start, None)
    assert_error(response, 409, "slot_taken")
    assert await live_rows(owner_db, business.id) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"service_id": None}, "service_id"),
        ({"start": None}, "start"),
        ({"start": "2026-12-01T10:00:00"}, "start"),  # naive: which 10:00?
        ({"start": "tomorrow at ten"}, "start"),
        ({"start": "2026-12-01"}, "start"),
        ({"start": "9999-12-31T23:30:00+05:00"}, None),
        ({"start": "0001-01-01T00:00:00+05:00"}, None),
        ({"comment": "x" * 501}, "comment"),
        ({"comment": 5}, "comment"),
        ({"colour": "red"}, "colour"),
        ({"service_id": 0}, "service_id"),
        ({"service_id": 2**63}, "service_id"),
        ({"service_id": 10**30}, None),
        ({"staff_id": -5}, "staff_id"),
        ({"staff_id": 2**63}, "staff_id"),
        ({"staff_id": "any"}, "staff_id"),
    ],
)
async def test_invalid_booking_body_is_422(client, owner_db, change, field):
    business = await new_business(owner_db)
    user = await consented(client, language_code="en")
    body = booking_body(business.service_id, local_start(business, 3), business.staff_ids[0])
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    response = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings", json=body, headers=user.headers()
    )
    assert_error(response, 422, "validation", fields={field} if field else None)
    assert await live_rows(owner_db, business.id) == []


async def test_comment_of_500_characters_is_fine(client, owner_db):
    business = await new_business(owner_db)
    user = await consented(client)
    start = local_start(business, 3)
    response = await book(client, business, user, start, None, comment="ж" * 500)
    assert response.status_code == 201


@pytest.mark.parametrize(
    "raw_body",
    [b"", b"not json", b"[]", b"null", b'{"service_id": 1,', "🙂".encode(), b"\xff\xfe"],
)
async def test_unparsable_booking_body_is_422(client, owner_db, raw_body):
    business = await new_business(owner_db)
    user = await consented(client)
    response = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        content=raw_body,
        headers={**user.headers(), "Content-Type": "application/json"},
    )
    assert_error(response, 422, "validation")


async def test_booking_for_unknown_business_service_or_master_is_404(client, owner_db):
    business = await new_business(owner_db)
    other = await new_business(owner_db)
    user = await consented(client)
    start = local_start(business, 3)
    response = await client.post(
        "/api/v1/businesses/no-such-salon/bookings",
        json=booking_body(business.service_id, start, None),
        headers=user.headers(),
    )
    assert_error(response, 404, "not_found")
    for service_id, staff_id in (
        (other.service_id, None),
        (2**63 - 1, None),
        (business.service_id, other.staff_ids[0]),
        (business.short_service_id, business.staff_ids[1]),  # master 2 does not do brows
    ):
        response = await book(client, business, user, start, staff_id, service_id=service_id)
        assert_error(response, 404, "not_found")
    assert await live_rows(owner_db, business.id) == []


def _raw(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("tma ")


async def test_booking_without_valid_init_data_is_401(client, owner_db):
    business = await new_business(owner_db)
    user = await consented(client)
    url = f"/api/v1/businesses/{business.slug}/bookings"
    body = booking_body(business.service_id, local_start(business, 3), None)
    now = int(clock.time())
    genuine = _raw(user.headers())
    tampered = genuine.replace(str(user.id), str(user.id + 1))
    assert tampered != genuine
    cases: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": "tma"},
        {"Authorization": "tma "},
        {"Authorization": "Bearer " + genuine},
        {"Authorization": "tma " + make_init_data("1:other-bot", user_id=user.id)},
        {"Authorization": "tma " + tampered},
        {"Authorization": "tma " + genuine.replace("hash=", "hash=0")},
        {"Authorization": "tma " + make_init_data(BOT_TOKEN, user_id=user.id,
                                                  auth_date=now - 25 * 3600)},
        {"Authorization": "tma " + make_init_data(BOT_TOKEN, user_id=user.id,
                                                  auth_date=now + 3600)},
        {"Authorization": "tma " + genuine + "&" + genuine},
        {"Authorization": "tma " + genuine.split("&hash=")[0] + "&hash=" + "%D0%B6" * 32},
        {"Authorization": "tma " + "a=b&" * 3000 + genuine},
    ]  # fmt: skip
    for headers in cases:
        response = await client.post(url, json=body, headers=headers)
        assert_error(response, 401, "unauthorized")
    assert await live_rows(owner_db, business.id) == []
    # and the genuine one still works
    response = await client.post(url, json=body, headers={"Authorization": "tma " + genuine})
    assert response.status_code == 201


async def test_any_master_picks_a_free_one(client, owner_db):
    business = await new_business(owner_db)
    start = local_start(business, days_ahead=3, at=time(14))
    first, second = business.staff_ids
    users = [await consented(client) for _ in range(3)]
    assert (await book(client, business, users[0], start, first)).status_code == 201
    response = await book(client, business, users[1], start, None)
    assert response.status_code == 201
    assert response.json()["staff_id"] == second
    assert_error(await book(client, business, users[2], start, None), 409, "slot_taken")
    rows = await live_rows(owner_db, business.id)
    assert sorted(r.staff_id for r in rows) == sorted([first, second])


async def test_idempotency_key_replays_the_same_booking(client, owner_db):
    business = await new_business(owner_db)
    user, other = await consented(client), await consented(client)
    start = local_start(business, days_ahead=3, at=time(11))
    key = {"Idempotency-Key": "retry-7f1c"}
    first = await book(client, business, user, start, None, headers=key)
    assert first.status_code == 201
    again = await book(client, business, user, start, None, headers=key)
    assert again.status_code == 200  # a replay: nothing new was created
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert len(await live_rows(owner_db, business.id)) == 1

    # the key belongs to the caller: another person with the same key books their own slot
    theirs = await book(client, business, other, start, None, headers=key)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]
    assert len(await live_rows(owner_db, business.id)) == 2

    # without a key the same request is a second booking attempt (the master is busy now)
    third = await book(client, business, user, start, first.json()["staff_id"])
    assert_error(third, 409, "slot_taken")
    too_long = await book(
        client, business, user, start, None, headers={"Idempotency-Key": "k" * 81}
    )
    assert_error(too_long, 422, "validation")


async def test_active_bookings_are_capped_per_business(client, owner_db):
    business = await new_business(owner_db, max_active=2)
    elsewhere = await new_business(owner_db, max_active=2)
    user = await consented(client, language_code="en")
    master = business.staff_ids[0]
    day1, day2 = local_start(business, 3), local_start(business, 4)
    made = [await book(client, business, user, start, master) for start in (day1, day2)]
    assert [r.status_code for r in made] == [201, 201]
    third = await book(client, business, user, local_start(business, 5), master)
    body = assert_error(third, 422, "validation")
    assert "maximum number of upcoming bookings" in body["detail"]
    assert len(await live_rows(owner_db, business.id)) == 2
    # the cap is per business
    assert (await book(client, elsewhere, user, day1, None)).status_code == 201
    # cancelling one frees a place
    cancel = await client.post(
        f"/api/v1/me/bookings/{made[0].json()['id']}/cancel", headers=user.headers()
    )
    assert cancel.status_code == 200
    assert (await book(client, business, user, local_start(business, 5), master)).status_code == 201


# ---------------------------------------------------------------- errors: shape and language


async def test_error_detail_is_russian_by_default_and_english_on_request(client, owner_db):
    business = await new_business(owner_db)
    day = local_start(business, 3).date()
    url = f"/api/v1/businesses/{business.slug}/availability"
    params = {"service": business.service_id, "date_from": day, "date_to": day - timedelta(1)}

    russian = assert_error(await client.get(url, params=params), 422, "validation")
    assert CYRILLIC.search(russian["detail"]), russian
    assert CYRILLIC.search(russian["fields"]["date_to"]), russian
    english = assert_error(
        await client.get(url, params=params, headers={"Accept-Language": "en"}), 422, "validation"
    )
    assert english["detail"] == "Please correct the highlighted fields."
    assert english["fields"] == {"date_to": "Must not be before date_from."}

    for headers in ({}, {"Accept-Language": "ru-RU,ru;q=0.9"}):
        missing = assert_error(
            await client.get("/api/v1/businesses/nobody/services", headers=headers),
            404, "not_found",
        )  # fmt: skip
        assert CYRILLIC.search(missing["detail"])
    unauthorized = assert_error(
        await client.get("/api/v1/me/bookings", headers={"Accept-Language": "en"}),
        401, "unauthorized",
    )  # fmt: skip
    assert unauthorized["detail"] == "Please sign in again."
    assert CYRILLIC.search((await client.get("/api/v1/me/bookings")).json()["detail"])

    # signed-in callers: their Telegram language decides
    start = local_start(business, 3)
    for language, cyrillic in (("ru", True), ("en", False)):
        user = TelegramUser(language_code=language)
        refused = assert_error(
            await book(client, business, user, start, None), 403, "consent_required"
        )
        assert bool(CYRILLIC.search(refused["detail"])) is cyrillic, refused


async def test_unknown_routes_and_methods_use_the_error_shape(client):
    assert_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    response = await client.delete("/api/v1/policy")
    assert_error(response, 405, "method_not_allowed")


# ---------------------------------------------------------------- my bookings


async def test_my_bookings_list_get_and_cancel(client, owner_db):
    business = await new_business(owner_db)
    elsewhere = await new_business(owner_db)
    user = await consented(client)
    early = local_start(business, 3, at=time(9))
    late = local_start(elsewhere, 4, at=time(16))
    a = (await book(client, business, user, early, None)).json()
    b = (await book(client, elsewhere, user, late, None)).json()

    listed = await client.get("/api/v1/me/bookings", headers=user.headers())
    assert listed.status_code == 200
    items = listed.json()["bookings"]
    assert [i["id"] for i in items] == [b["id"], a["id"]]  # newest visit first
    assert [i["business"] for i in items] == [elsewhere.slug, business.slug]
    assert {i["service_name"] for i in items} == {"Стрижка"}
    assert all(len(i["code"]) == 10 and i["price_tiyn"] == 500000 for i in items)
    assert items[1]["start"] == early.isoformat()

    got = await client.get(f"/api/v1/me/bookings/{a['id']}", headers=user.headers())
    assert got.status_code == 200
    assert got.json() == a

    cancelled = await client.post(f"/api/v1/me/bookings/{a['id']}/cancel", headers=user.headers())
    assert cancelled.status_code == 200
    assert cancelled.json() == {**a, "status": "cancelled"}
    row = (
        await owner_db.execute(
            text("SELECT status, cancelled_by FROM bookings WHERE id = :i"), {"i": a["id"]}
        )
    ).one()
    assert tuple(row) == ("cancelled", "client")
    # the time is free again, and a second cancel is refused
    assert {"start": early.isoformat(), "end": (early + timedelta(hours=1)).isoformat(),
            "staff_id": a["staff_id"]} in await slots(client, business, early.date())  # fmt: skip
    again = await client.post(f"/api/v1/me/bookings/{a['id']}/cancel", headers=user.headers())
    assert_error(again, 422, "validation")


async def test_bookings_of_someone_else_are_invisible(client, owner_db):
    business = await new_business(owner_db)
    owner, stranger = await consented(client), await consented(client)
    mine = (await book(client, business, owner, local_start(business, 3), None)).json()

    for user in (stranger, TelegramUser()):  # with and without consent
        response = await client.get(f"/api/v1/me/bookings/{mine['id']}", headers=user.headers())
        assert_error(response, 404, "not_found")
        response = await client.post(
            f"/api/v1/me/bookings/{mine['id']}/cancel", headers=user.headers()
        )
        assert_error(response, 404, "not_found")
        listed = await client.get("/api/v1/me/bookings", headers=user.headers())
        assert listed.status_code == 200
        assert mine["id"] not in [b["id"] for b in listed.json()["bookings"]]
    rows = await live_rows(owner_db, business.id)
    assert [(r.id, r.status) for r in rows] == [(mine["id"], "confirmed")]
    # without a signature nobody gets anywhere
    assert_error(await client.get(f"/api/v1/me/bookings/{mine['id']}"), 401, "unauthorized")
    assert_error(await client.post(f"/api/v1/me/bookings/{mine['id']}/cancel"), 401, "unauthorized")


@pytest.mark.parametrize("booking_id", ["0", "-3", str(2**63), "99999999999999999999", "1.5"])
async def test_bad_booking_ids_are_not_found(client, booking_id):
    """An id no booking can have names nothing: 404 like an unknown one, never 422 or a 500."""
    user = TelegramUser()
    for method, suffix in (("GET", ""), ("POST", "/cancel")):
        response = await client.request(
            method, f"/api/v1/me/bookings/{booking_id}{suffix}", headers=user.headers()
        )
        assert_error(response, 404, "not_found")


async def test_unknown_booking_id_is_404(client):
    user = TelegramUser()
    response = await client.get(f"/api/v1/me/bookings/{2**63 - 1}", headers=user.headers())
    assert_error(response, 404, "not_found")


async def test_cancel_after_the_deadline_is_refused_clearly(client, owner_db):
    business = await new_business(owner_db, cancel_deadline_min=3 * 24 * 60)
    user = await consented(client, language_code="en")
    made = (await book(client, business, user, local_start(business, 2), None)).json()
    response = await client.post(f"/api/v1/me/bookings/{made['id']}/cancel", headers=user.headers())
    body = assert_error(response, 422, "validation")
    assert body["detail"].startswith("It is too late to cancel online")
    assert "72 h before the visit" in body["detail"]
    status = await owner_db.scalar(
        text("SELECT status FROM bookings WHERE id = :i"), {"i": made["id"]}
    )
    assert status == "confirmed"


# ---------------------------------------------------------------- POST /auth/telegram


def _cookie_attributes(header: str) -> tuple[str, str, dict[str, str]]:
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attributes = {}
    for part in rest:
        key, _, val = part.partition("=")
        attributes[key.lower()] = val
    return name, value, attributes


async def test_auth_telegram_signs_in_with_a_partitioned_cookie(client, owner_db):
    user = TelegramUser()
    response = await client.post("/auth/telegram", json={"init_data": _raw(user.headers())})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "account_id": await account_of(owner_db, user.id),
        "consent_required": True,
    }
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 1
    name, value, attributes = _cookie_attributes(cookies[0])
    assert name.startswith("__Host-")
    assert value
    assert {"httponly", "secure", "partitioned"} <= set(attributes)
    assert attributes["samesite"].lower() == "none"
    assert attributes["path"] == "/"
    assert "domain" not in attributes  # __Host- cookies may not name one

    await grant_consent(client, user)
    again = await client.post("/auth/telegram", json={"init_data": _raw(user.headers())})
    assert again.json() == {"account_id": body["account_id"], "consent_required": False}


@pytest.mark.policy("2.4")  # a Telegram id is stored only from a validated sign-in
async def test_auth_telegram_refuses_forged_or_stale_data(client, owner_db):
    user_id = TelegramUser().id
    now = int(clock.time())
    for raw in (
        make_init_data("1:other-bot", user_id=user_id),
        make_init_data(BOT_TOKEN, user_id=user_id, auth_date=now - 24 * 3600 - 120),
        make_init_data(BOT_TOKEN, user_id=user_id).replace(str(user_id), str(user_id + 1)),
        "user=%7B%22id%22%3A1%7D&auth_date=1&hash=00",
        "user=%7B%22id%22%3A1%7D&auth_date=1&hash=%D0%B6",  # a non-ASCII hash
        "%%%",
    ):
        response = await client.post("/auth/telegram", json={"init_data": raw})
        assert_error(response, 401, "unauthorized")
        assert "set-cookie" not in response.headers
    for body in ({}, {"init_data": ""}, {"init_data": 5}, {"init_data": "x" * 9000}):
        response = await client.post("/auth/telegram", json=body)
        assert_error(response, 422, "validation")
    created = await owner_db.scalar(
        text("SELECT count(*) FROM accounts WHERE telegram_id IN (:a, :b)"),
        {"a": user_id, "b": user_id + 1},
    )
    assert created == 0


# ---------------------------------------------------------------- concurrency (real server)


async def _consent_many(http: httpx.AsyncClient, count: int) -> list[TelegramUser]:
    users = [TelegramUser() for _ in range(count)]
    await asyncio.gather(*(grant_consent(http, u) for u in users))
    return users


async def _fire(
    http: httpx.AsyncClient,
    business: BusinessFixture,
    users: list[TelegramUser],
    start: datetime,
    staff_id: int | None,
    headers: dict[str, str] | None = None,
) -> list[httpx.Response]:
    body = booking_body(business.service_id, start, staff_id)
    url = f"/api/v1/businesses/{business.slug}/bookings"
    signed = [u.headers(**(headers or {})) for u in users]  # sign first, then fire together
    responses = await asyncio.gather(*(http.post(url, json=body, headers=h) for h in signed))
    for response in responses:
        assert_not_5xx(response)
    return list(responses)


def _live_http(live_server: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=live_server,
        timeout=120,  # only catches a hang
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=0),
    )


async def test_fifty_clients_one_slot_exactly_one_booking(live_server, owner_db):
    business = await new_business(owner_db)
    start = local_start(business, days_ahead=5, at=time(11))
    master = business.staff_ids[0]
    async with _live_http(live_server) as http:
        users = await _consent_many(http, 50)
        responses = await _fire(http, business, users, start, master)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 49}, statuses
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "slot_taken")
    winner = next(r for r in responses if r.status_code == 201).json()
    assert (winner["staff_id"], winner["start"]) == (master, start.isoformat())
    rows = await live_rows(owner_db, business.id)
    assert [(r.id, r.staff_id, r.s) for r in rows] == [(winner["id"], master, start)]
    total = await owner_db.scalar(
        text("SELECT count(*) FROM bookings WHERE business_id = :b"), {"b": business.id}
    )
    assert total == 1


async def test_fifty_clients_any_master_exactly_two_bookings(live_server, owner_db):
    business = await new_business(owner_db, masters=2)
    start = local_start(business, days_ahead=6, at=time(15))
    async with _live_http(live_server) as http:
        users = await _consent_many(http, 50)
        responses = await _fire(http, business, users, start, None)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 2, 409: 48}, statuses
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "slot_taken")
    winners = [r.json() for r in responses if r.status_code == 201]
    assert sorted(w["staff_id"] for w in winners) == sorted(business.staff_ids)
    rows = await live_rows(owner_db, business.id)
    assert sorted((r.staff_id, r.s) for r in rows) == sorted((s, start) for s in business.staff_ids)


async def test_simultaneous_retries_with_one_idempotency_key(live_server, owner_db):
    business = await new_business(owner_db)
    start = local_start(business, days_ahead=7, at=time(9))
    async with _live_http(live_server) as http:
        (user,) = await _consent_many(http, 1)
        responses = await _fire(
            http, business, [user] * 10, start, None, headers={"Idempotency-Key": "tap-twice"}
        )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1 and statuses[200] == 9, statuses
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await live_rows(owner_db, business.id)) == 1
