"""Calendar feeds: a master (or an admin for any master) makes a private address (pinned
``GET /ical/{token}.ics``, ``text/calendar`` built with icalendar) carrying their bookings:
service, time, status, client name — the phone only when the owner allowed it. Revoked or
unknown → 404; another business's feed cannot be revoked (404); every change is audited."""

from __future__ import annotations

import re
from datetime import time

import httpx
from icalendar import Calendar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.dashboard.test_pending import client_books
from tests.factories import new_business
from tests.support.dashboard import add_member, form, sign_in_as

FEED_URL = re.compile(r'value="https?://[^"/]+(/ical/[A-Za-z0-9_-]+\.ics)"')
PHONE = "+77015550123"


async def dress_client(owner_session: AsyncSession, booking_id: int) -> None:
    await owner_session.execute(
        text(
            "UPDATE clients SET name = 'Дана Қасымова', phone = :p "
            "WHERE id = (SELECT client_id FROM bookings WHERE id = :b)"
        ),
        {"p": PHONE, "b": booking_id},
    )
    await owner_session.commit()


async def make_feed(client: httpx.AsyncClient, csrf: str, **fields: object) -> str:
    made = await client.post("/dashboard/feeds", data=form(csrf, **fields))
    assert made.status_code == 201, made.text
    found = FEED_URL.search(made.text)
    assert found, made.text
    return found.group(1)


async def test_a_master_feed_carries_their_bookings_and_dies_when_revoked(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    mine = await client_books(client, business, master=0, days_ahead=2, at=time(10))
    theirs = await client_books(client, business, master=1, days_ahead=2, at=time(15))
    await dress_client(owner_session, mine)
    master = await add_member(owner_session, business.id, "master", staff_id=business.staff_ids[0])
    csrf = await sign_in_as(client, owner_session, settings, master.account_id)

    page = await client.get("/dashboard/feeds")
    assert page.status_code == 200 and "No feeds yet." in page.text
    # a master may not make a feed of another master's column, nor put phones in one
    other = await client.post("/dashboard/feeds", data=form(csrf, staff_id=business.staff_ids[1]))
    assert other.status_code == 422
    phones = await client.post(
        "/dashboard/feeds", data=form(csrf, staff_id=business.staff_ids[0], include_phone=1)
    )
    assert phones.status_code == 422
    path = await make_feed(client, csrf, staff_id=business.staff_ids[0])

    client.cookies.clear()  # a phone's calendar has no session
    feed = await client.get(path)
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(feed.content)
    events = calendar.walk("VEVENT")
    assert len(events) == 1  # only this master's booking
    description = str(events[0]["description"])
    assert "Дана Қасымова" in str(events[0]["summary"]) + description
    assert PHONE not in feed.text  # no phone unless the owner allowed it
    assert str(events[0]["status"]) == "TENTATIVE"  # still waiting for confirmation
    assert theirs  # (the other master's booking exists, and is not in the feed)

    feed_id = await owner_session.scalar(
        text("SELECT id FROM calendar_feeds WHERE business_id = :b"), {"b": business.id}
    )
    csrf = await sign_in_as(client, owner_session, settings, master.account_id)
    revoked = await client.post(
        f"/dashboard/feeds/{feed_id}/revoke", data=form(csrf), follow_redirects=False
    )
    assert revoked.status_code == 303
    assert (await client.get(path)).status_code == 404
    assert (await client.get("/ical/not-a-token.ics")).status_code == 404
    assert (await client.get(path.removesuffix(".ics"))).status_code == 404
    await owner_session.commit()
    actions = (
        await owner_session.execute(
            text(
                "SELECT action FROM audit_log WHERE business_id = :b AND entity = 'calendar_feed' "
                "ORDER BY id"
            ),
            {"b": business.id},
        )
    ).scalars()
    assert list(actions) == ["calendar_feed.create", "calendar_feed.revoke"]


async def test_the_owner_may_put_phones_in_a_feed(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    booking = await client_books(client, business, master=0, days_ahead=2, at=time(10))
    await dress_client(owner_session, booking)
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    path = await make_feed(client, csrf, staff_id=business.staff_ids[0], include_phone=1)
    feed = await client.get(path)
    assert feed.status_code == 200 and PHONE in feed.text


async def test_another_business_feed_cannot_be_revoked(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    theirs = await new_business(owner_session)
    assert theirs.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, theirs.owner_account_id)
    path = await make_feed(client, csrf, staff_id=theirs.staff_ids[0])
    feed_id = await owner_session.scalar(
        text("SELECT id FROM calendar_feeds WHERE business_id = :b"), {"b": theirs.id}
    )
    ours = await new_business(owner_session)
    assert ours.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, ours.owner_account_id)
    refused = await client.post(f"/dashboard/feeds/{feed_id}/revoke", data=form(csrf))
    assert refused.status_code == 404
    # nor may a feed be made for their master
    made = await client.post("/dashboard/feeds", data=form(csrf, staff_id=theirs.staff_ids[0]))
    assert made.status_code == 422
    client.cookies.clear()
    assert (await client.get(path)).status_code == 200  # still alive
