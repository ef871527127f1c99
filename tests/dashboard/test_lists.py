"""The bookings list (``GET /dashboard/bookings``) and its CSV export (pinned
``GET /dashboard/bookings.csv?from=…&to=…``): filtered, paginated, a master sees only their own
column; the export is UTF-8 with a byte-order mark, columns in the user's language, times in the
business's zone, audited; bad or too-long periods are 422."""

from __future__ import annotations

import csv
import io
from datetime import time, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.dashboard.test_pending import client_books
from tests.factories import local_start, new_business
from tests.support.dashboard import add_member, sign_in_as

CLIENT_NAME = "Айгүл Серікқызы"


async def name_client(owner_session: AsyncSession, booking_id: int, name: str) -> None:
    await owner_session.execute(
        text(
            "UPDATE clients SET name = :n WHERE id = (SELECT client_id FROM bookings WHERE id = :b)"
        ),
        {"n": name, "b": booking_id},
    )
    await owner_session.commit()


async def exports(owner_session: AsyncSession, business_id: int) -> list[tuple[int | None, str]]:
    await owner_session.commit()
    rows = await owner_session.execute(
        text(
            "SELECT actor_account_id, action FROM audit_log "
            "WHERE business_id = :b AND action = 'bookings.export' ORDER BY id"
        ),
        {"b": business_id},
    )
    return [(r.actor_account_id, r.action) for r in rows]


async def test_the_csv_starts_with_a_bom_keeps_cyrillic_and_is_audited(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    booking_id = await client_books(client, business, days_ahead=3, at=time(10))
    await name_client(owner_session, booking_id, CLIENT_NAME)
    assert business.owner_account_id is not None
    await owner_session.execute(
        text("UPDATE accounts SET locale = 'ru' WHERE id = :a"), {"a": business.owner_account_id}
    )
    await owner_session.commit()
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    day = local_start(business, 3).date()

    answer = await client.get(
        "/dashboard/bookings.csv",
        params={"from": (day - timedelta(days=1)).isoformat(), "to": day.isoformat()},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert "Клиент" in rows[0]  # the columns in the user's language
    assert len(rows) == 2
    assert rows[1][0] == str(booking_id)
    assert CLIENT_NAME in rows[1]
    assert "10:00" in rows[1]  # the business's zone, not UTC
    assert await exports(owner_session, business.id) == [
        (business.owner_account_id, "bookings.export")
    ]


async def test_bad_or_too_long_periods_are_refused(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    for params in (
        {"from": "2026-13-01", "to": "2026-12-31"},
        {"from": "2026-01-01"},
        {"from": "2026-01-01", "to": "2027-01-02"},  # 367 days
        {"from": "2026-02-01", "to": "2026-01-01"},
    ):
        answer = await client.get("/dashboard/bookings.csv", params=params)
        assert answer.status_code == 422, params
    assert (await client.get("/dashboard/bookings", params={"from": "nope"})).status_code == 422
    assert (await client.get("/dashboard/bookings", params={"status": "x"})).status_code == 422
    assert await exports(owner_session, business.id) == []
    year = await client.get(
        "/dashboard/bookings.csv", params={"from": "2026-01-01", "to": "2026-12-31"}
    )
    assert year.status_code == 200


async def test_the_list_filters_and_a_master_sees_only_their_own(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    first = await client_books(client, business, master=0, days_ahead=2, at=time(10))
    second = await client_books(client, business, master=1, days_ahead=2, at=time(15))
    await name_client(owner_session, first, "Первый клиент")
    await name_client(owner_session, second, "Второй клиент")
    other = await new_business(owner_session, auto_confirm=False)
    foreign = await client_books(client, other, days_ahead=2, at=time(12))
    await name_client(owner_session, foreign, "Чужой клиент")
    admin = await add_member(owner_session, business.id, "admin")
    await sign_in_as(client, owner_session, settings, admin.account_id)

    everything = await client.get("/dashboard/bookings")
    assert everything.status_code == 200
    assert "Первый клиент" in everything.text and "Второй клиент" in everything.text
    assert "Чужой клиент" not in everything.text
    assert f'href="/dashboard/bookings/{first}"' in everything.text  # each opens its panel
    one = await client.get("/dashboard/bookings", params={"staff": business.staff_ids[1]})
    assert "Второй клиент" in one.text and "Первый клиент" not in one.text
    cancelled = await client.get("/dashboard/bookings", params={"status": "cancelled"})
    assert "Первый клиент" not in cancelled.text and "No bookings in this period." in cancelled.text
    by_client = await client.get("/dashboard/bookings", params={"client": "второй"})
    assert "Второй клиент" in by_client.text and "Первый клиент" not in by_client.text
    literal = await client.get("/dashboard/bookings", params={"client": "%"})
    assert "Первый клиент" not in literal.text  # a % is a character, not a wildcard
    # another business's master id finds nothing of theirs
    theirs = await client.get("/dashboard/bookings", params={"staff": other.staff_ids[0]})
    assert theirs.status_code == 200 and "Чужой клиент" not in theirs.text

    master = await add_member(owner_session, business.id, "master", staff_id=business.staff_ids[0])
    await sign_in_as(client, owner_session, settings, master.account_id)
    own = await client.get("/dashboard/bookings", params={"staff": business.staff_ids[1]})
    assert own.status_code == 200
    assert "Первый клиент" in own.text and "Второй клиент" not in own.text
    day = local_start(business, 2).date().isoformat()
    exported = await client.get("/dashboard/bookings.csv", params={"from": day, "to": day})
    assert exported.status_code == 200
    body = exported.content.decode("utf-8-sig")
    assert "Первый клиент" in body and "Второй клиент" not in body


async def test_the_list_pages(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, monkeypatch: object
) -> None:
    from app.domain import booking_lists

    business = await new_business(owner_session, auto_confirm=False)
    await client_books(client, business, days_ahead=2, at=time(10))
    await client_books(client, business, days_ahead=2, at=time(15))
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    monkeypatch.setattr(booking_lists, "PAGE_SIZE", 1)  # type: ignore[attr-defined]
    first = await client.get("/dashboard/bookings")
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = await client.get("/dashboard/bookings", params={"page": 2})
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text


async def test_the_owner_sees_the_audit_log_and_whether_its_chain_verifies(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    other = await new_business(owner_session, auto_confirm=False)
    await client_books(client, other, days_ahead=2, at=time(10))
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    day = local_start(business, 2).date().isoformat()
    assert (
        await client.get("/dashboard/bookings.csv", params={"from": day, "to": day})
    ).status_code == 200

    shown = await client.get("/dashboard/audit")
    assert shown.status_code == 200
    assert 'title="bookings.export"' in shown.text
    # the other business's booking is on its own chain, not here (the code is each entry's title)
    assert 'title="booking.create"' not in shown.text
    assert "audit-intact" in shown.text

    entry = await owner_session.scalar(
        text("SELECT id FROM audit_log WHERE business_id = :b AND action = 'bookings.export'"),
        {"b": business.id},
    )
    await owner_session.execute(text("SET LOCAL session_replication_role = replica"))
    await owner_session.execute(
        text("UPDATE audit_log SET action = 'bookings.forged' WHERE id = :i"), {"i": entry}
    )
    await owner_session.commit()
    try:
        tampered = await client.get("/dashboard/audit")
    finally:
        # put the entry back: the database is shared, and other tests verify every chain
        await owner_session.execute(text("SET LOCAL session_replication_role = replica"))
        await owner_session.execute(
            text("UPDATE audit_log SET action = 'bookings.export' WHERE id = :i"), {"i": entry}
        )
        await owner_session.commit()
    assert tampered.status_code == 200
    assert "audit-broken" in tampered.text and "content altered" in tampered.text
    assert "audit-intact" not in tampered.text
    mended = await client.get("/dashboard/audit")
    assert "audit-intact" in mended.text


async def test_admins_and_masters_may_not_see_the_audit_log(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    for role in ("admin", "master"):
        person = await add_member(owner_session, business.id, role)
        await sign_in_as(client, owner_session, settings, person.account_id)
        assert (await client.get("/dashboard/audit")).status_code == 403
