"""Live dashboard (issue 14 item 4): an open calendar polls ``GET /dashboard/calendar/live`` with
the stamp it was drawn at and every other page ``GET /dashboard/live``; 204 while nothing
changed, else the grid again (or just the counts) with the new stamp. The stamp moves on a Mini
App booking, a client's cancellation, a client's message and its reading — never on another
business's. The navigation shows the bookings waiting for confirmation (a master: their own)
and the unread client messages (roles that see the inbox)."""

from __future__ import annotations

import re
from datetime import time
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import live, messages
from app.domain.accounts import ByAccount
from app.domain.members import Member
from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business
from tests.helpers import TelegramUser, booking_body, grant_consent
from tests.support.dashboard import add_member, sign_in_as

HTMX = {"HX-Request": "true"}
POLL = re.compile(r'id="calendar-poll"[^>]*hx-get="([^"]+)"')
NAV_POLL = re.compile(r'id="nav-poll"[^>]*hx-get="([^"]+)"')


def poll_url(html: str, pattern: re.Pattern[str] = POLL) -> str:
    found = pattern.search(html)
    assert found, "the page has no live poll"
    return found.group(1).replace("&amp;", "&")


def badge(html: str, kind: str) -> str | None:
    """The number a navigation badge shows; None when it shows none (hidden)."""
    found = re.search(rf'<span id="nav-count-{kind}"[^>]*>(.*?)</span>\s*</span>|'
                      rf'<span id="nav-count-{kind}"[^>]*hidden></span>', html, re.S)  # fmt: skip
    assert found, f"no {kind} badge"
    if found.group(1) is None:
        return None
    number = re.search(r'<span aria-hidden="true">(\d+)</span>', found.group(1))
    assert number
    return number.group(1)


async def client_books(
    http: httpx.AsyncClient, business: BusinessFixture, *, master: int = 0, at: time = time(10)
) -> tuple[TelegramUser, int]:
    """A client books through the API, as the Mini App does."""
    user = TelegramUser()
    await grant_consent(http, user)
    response = await http.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, local_start(business, 3, at),
                          business.staff_ids[master]),
        headers=user.headers(),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return user, int(response.json()["id"])


async def booking_of(owner_session: AsyncSession, booking_id: int) -> Any:
    await owner_session.commit()
    return (
        await owner_session.execute(
            text("SELECT account_id, client_id FROM bookings WHERE id = :b"), {"b": booking_id}
        )
    ).one()


async def test_a_calendar_poll_sees_booking_cancellation_message_and_reading(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Database
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    day = local_start(business, 3, time(10)).date().isoformat()
    page = await client.get("/dashboard/calendar", params={"date": day})
    assert page.status_code == 200
    assert badge(page.text, "pending") is None and badge(page.text, "unread") is None
    assert 'id="nav-poll"' not in page.text  # the calendar's own poll carries the counts
    url = poll_url(page.text)
    assert url.startswith(f"/dashboard/calendar/live?date={day}&view=day&stamp=")

    quiet = await client.get(url, headers=HTMX)
    assert quiet.status_code == 204 and quiet.content == b""
    stamp = quiet.headers["X-Live-Stamp"]
    assert url.endswith(f"stamp={stamp}")

    # a booking made in the Mini App: the grid comes back with it, and the pending count
    user, booking_id = await client_books(client, business)
    changed = await client.get(url, headers=HTMX)
    assert changed.status_code == 200
    assert f'data-booking="{booking_id}"' in changed.text
    assert f'id="cal-b{booking_id}"' in changed.text  # the block keeps its id across redraws
    assert "<html" not in changed.text and 'class="calendar-bar"' not in changed.text
    assert 'id="nav-count-pending" class="nav-count" hx-swap-oob="true"' in changed.text
    assert badge(changed.text, "pending") == "1"
    assert "ожидают: 1" in changed.text  # in words for screen readers, in the owner's Russian
    url = poll_url(changed.text)
    assert url.endswith("stamp=" + changed.headers["X-Live-Stamp"])
    assert changed.headers["X-Live-Stamp"] != stamp
    assert (await client.get(url, headers=HTMX)).status_code == 204

    # a client's message raises the unread count; reading the thread lowers it
    row = await booking_of(owner_session, booking_id)
    await messages.write_to_business(db, booking_id, by=ByAccount(row.account_id), body="Опоздаю")
    written = await client.get(url, headers=HTMX)
    assert written.status_code == 200 and badge(written.text, "unread") == "1"
    url = poll_url(written.text)
    read = await client.post(
        f"/dashboard/inbox/{row.client_id}/read",
        headers={"X-CSRF-Token": page.text.split('name="csrf-token" content="')[1].split('"')[0]},
        follow_redirects=False,
    )
    assert read.status_code == 303
    after_reading = await client.get(url, headers=HTMX)
    assert after_reading.status_code == 200 and badge(after_reading.text, "unread") is None
    url = poll_url(after_reading.text)

    # the client cancels in the Mini App: the block leaves the grid
    cancelled = await client.post(f"/api/v1/me/bookings/{booking_id}/cancel",
                                  headers=user.headers())  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    gone = await client.get(url, headers=HTMX)
    assert gone.status_code == 200
    assert f'data-booking="{booking_id}"' not in gone.text
    assert badge(gone.text, "pending") is None


async def test_another_business_changes_nothing_here(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    other = await new_business(owner_session, auto_confirm=False)
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    page = await client.get("/dashboard/")
    assert page.status_code == 200
    url = poll_url(page.text, NAV_POLL)
    assert (await client.get(url, headers=HTMX)).status_code == 204
    await client_books(client, other)
    assert (await client.get(url, headers=HTMX)).status_code == 204
    calendar = await client.get("/dashboard/calendar")
    calendar_poll = poll_url(calendar.text)
    await client_books(client, other, at=time(12))
    assert (await client.get(calendar_poll, headers=HTMX)).status_code == 204
    # and a booking here moves the navigation's stamp: the badges come back, out of band
    await client_books(client, business)
    changed = await client.get(url, headers=HTMX)
    assert changed.status_code == 200
    assert badge(changed.text, "pending") == "1"
    assert 'id="nav-poll"' in changed.text and 'hx-swap-oob="true"' in changed.text
    assert poll_url(changed.text, NAV_POLL).endswith("stamp=" + changed.headers["X-Live-Stamp"])


async def test_counts_are_the_members_own(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, db: Database
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    assert business.owner_account_id is not None
    master = await add_member(owner_session, business.id, "master",
                              staff_id=business.staff_ids[1])  # fmt: skip
    admin = await add_member(owner_session, business.id, "admin")
    _, first = await client_books(client, business, master=0)
    await client_books(client, business, master=1, at=time(11))
    await client_books(client, business, master=1, at=time(14))
    row = await booking_of(owner_session, first)
    await messages.write_to_business(db, first, by=ByAccount(row.account_id), body="Здравствуйте")

    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    owner_page = (await client.get("/dashboard/bookings/pending")).text
    assert badge(owner_page, "pending") == "3" and badge(owner_page, "unread") == "1"
    assert "ожидают: 3" in owner_page and "непрочитанных: 1" in owner_page
    await sign_in_as(client, owner_session, settings, admin.account_id)
    admin_page = (await client.get("/dashboard/")).text
    assert badge(admin_page, "pending") == "3" and badge(admin_page, "unread") == "1"
    assert "3 waiting" in admin_page and "1 unread" in admin_page  # the admin reads English
    await sign_in_as(client, owner_session, settings, master.account_id)
    master_page = (await client.get("/dashboard/")).text
    assert badge(master_page, "pending") == "2"  # their own column's
    assert 'id="nav-count-unread"' not in master_page  # masters have no inbox
    assert "/dashboard/inbox" not in master_page

    as_master = Member(master.account_id, business.id, "master", business.staff_ids[1])
    counted = await live.read_counts(db, as_master)
    assert (counted.pending, counted.unread) == (2, None)
    as_owner = Member(business.owner_account_id, business.id, "owner")
    counted = await live.read_counts(db, as_owner)
    assert (counted.pending, counted.unread) == (3, 1)


async def test_the_counts_are_one_statement_on_indexes(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    assert business.owner_account_id is not None
    owner = Member(business.owner_account_id, business.id, "owner")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await live.read_counts(db, owner)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len([s for s in statements if "set_config" not in s]) == 1

    # each part can be read through an index (the planner may still scan a tiny test table)
    await owner_session.commit()
    await owner_session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        r[0]
        for r in await owner_session.execute(
            text("EXPLAIN " + str(live._COUNTS.text)),
            {"b": business.id, "staff": None, "inbox": True},
        )
    )
    await owner_session.rollback()
    assert "Seq Scan" not in plan, plan
    assert "uq_audit_log_chain_seq" in plan, plan


async def test_an_unchanged_poll_is_the_guards_one_transaction(
    app: Any, client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """The guard reads the counts in the transaction it checks the session in: an unchanged
    poll takes one connection from the pool, once, and reads the counts once."""
    business = await new_business(owner_session, auto_confirm=False)
    assert business.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    url = poll_url((await client.get("/dashboard/calendar")).text)
    nav_url = poll_url((await client.get("/dashboard/")).text, NAV_POLL)
    engine = app.state.db.engine.sync_engine
    checkouts: list[int] = []
    statements: list[str] = []

    def checkout(*_args: Any) -> None:
        checkouts.append(1)

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", count)
    try:
        for poll in (url, nav_url):
            checkouts.clear()
            statements.clear()
            assert (await client.get(poll, headers=HTMX)).status_code == 204
            assert len(checkouts) == 1, poll
            assert sum("audit_log" in s for s in statements) == 1, poll
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "before_cursor_execute", count)


async def test_poll_refusals(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    other = await new_business(owner_session, auto_confirm=False)
    assert business.owner_account_id is not None
    # signed out: the sign-in page, as for every dashboard page
    signed_out = await client.get("/dashboard/calendar/live", headers=HTMX, follow_redirects=False)
    assert signed_out.status_code == 303
    assert (await client.get("/dashboard/live", follow_redirects=False)).status_code == 303
    await sign_in_as(client, owner_session, settings, business.owner_account_id)
    # another business's master: 404; bad parameters: 422 naming them, never a 500
    foreign = await client.get("/dashboard/calendar/live", headers=HTMX,
                               params={"staff": other.staff_ids[0]})  # fmt: skip
    assert foreign.status_code == 404
    bad = await client.get("/dashboard/calendar/live", params={"date": "2026-13-40", "view": "x"},
                           headers={**HTMX, "Accept-Language": "ru"})  # fmt: skip
    assert bad.status_code == 422
    # a stamp that is not ours is no match: the calendar is drawn
    odd = await client.get("/dashboard/calendar/live", params={"stamp": "x" * 500}, headers=HTMX)
    assert odd.status_code == 200 and 'id="calendar-body"' in odd.text
    assert live.parse_stamp("1-2-3-4") == "1-2-3-4" and live.parse_stamp("<b>") == ""
