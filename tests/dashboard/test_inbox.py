"""Dashboard: the inbox (issue 14 item 7) — every client thread with its unread count and last
message; a thread opens without marking anything (GET never writes), ``…/read`` marks it; a
reply is stored under the client's latest booking and queued for the client through the outbox
(``message.business``, the one way the business writes to a client). Another business's client
→ 404; masters are refused."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.dashboard.test_clients import person, seed_client
from tests.factories import new_business
from tests.support.dashboard import add_member, form, sign_in_as


async def write(session: AsyncSession, business_id: int, client_id: int, booking_id: int,
                body: str, sender: str = "client") -> None:  # fmt: skip
    await session.execute(
        text(
            "INSERT INTO messages (business_id, client_id, booking_id, sender, body) "
            "VALUES (:b, :c, :k, :s, :body)"
        ),
        {"b": business_id, "c": client_id, "k": booking_id, "s": sender, "body": body},
    )
    await session.commit()


async def unread_of(session: AsyncSession, client_id: int) -> int:
    return int(
        (
            await session.execute(
                text(
                    "SELECT count(*) FROM messages WHERE client_id = :c AND sender = 'client' "
                    "AND read_at IS NULL"
                ),
                {"c": client_id},
            )
        ).scalar_one()
    )


async def test_threads_with_unread_counts_and_the_last_message(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    aigerim = await seed_client(owner_session, business, name="Айгерим", visits=1)
    daniyar = await seed_client(owner_session, business, name="Данияр", visits=1)
    b = business.id
    await write(owner_session, b, aigerim.client_id, aigerim.booking_ids[0], "Можно позже?")
    await write(owner_session, b, aigerim.client_id, aigerim.booking_ids[0], "На час позже")
    await write(owner_session, b, daniyar.client_id, daniyar.booking_ids[0], "Спасибо!")
    await write(owner_session, b, daniyar.client_id, daniyar.booking_ids[0], "Ждём вас",
                sender="business")  # fmt: skip
    other = await new_business(owner_session)
    stranger = await seed_client(owner_session, other, name="Чужой", visits=1)
    await write(owner_session, other.id, stranger.client_id, stranger.booking_ids[0], "Чужое")
    await sign_in_as(client, owner_session, settings, business.owner_account_id)

    inbox = await client.get("/dashboard/inbox")
    assert inbox.status_code == 200
    page = inbox.text
    assert "Айгерим" in page and "Данияр" in page
    assert "Чужой" not in page and "Чужое" not in page
    assert "На час позже" in page and "Можно позже?" not in page  # the last message only
    assert "Ждём вас" in page
    # Данияр's thread ends with the business's reply and his one message is unread: 1
    assert sorted(re.findall(r'class="badge"[^>]*>(\d+)</span>', page)) == ["1", "2"]
    # the latest thread first
    assert page.index("Данияр") < page.index("Айгерим")


async def test_opening_reads_nothing_and_marking_read_clears_the_count(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    admin = await add_member(owner_session, business.id, "admin")
    seeded = await seed_client(owner_session, business, visits=1)
    await write(owner_session, business.id, seeded.client_id, seeded.booking_ids[0], "Привет")
    csrf = await sign_in_as(client, owner_session, settings, admin.account_id)
    url = f"/dashboard/inbox/{seeded.client_id}"

    opened = await client.get(url)
    assert opened.status_code == 200 and "Привет" in opened.text
    assert await unread_of(owner_session, seeded.client_id) == 1  # GET never writes
    assert f'hx-post="{url}/read"' in opened.text

    marked = await client.post(f"{url}/read", data=form(csrf), follow_redirects=False)
    assert marked.status_code == 303
    assert await unread_of(owner_session, seeded.client_id) == 0
    inbox = await client.get("/dashboard/inbox")
    assert 'class="badge"' not in inbox.text
    again = await client.get(url)
    assert f'hx-post="{url}/read"' not in again.text
    # htmx marks in the background: nothing to swap
    quiet = await client.post(f"{url}/read", headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert quiet.status_code == 204


async def test_a_reply_queues_the_clients_notification(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    someone = await person(owner_session, locale="kk")
    seeded = await seed_client(owner_session, business, account=someone, visits=2)
    await write(owner_session, business.id, seeded.client_id, seeded.booking_ids[0], "Вопрос")
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    url = f"/dashboard/inbox/{seeded.client_id}"

    sent = await client.post(url, data=form(csrf, body="  Ответ бизнеса  "),
                             follow_redirects=False)  # fmt: skip
    assert sent.status_code == 303 and sent.headers["location"] == f"{url}?sent=1"
    latest = seeded.booking_ids[-1]  # the latest booking of the client here
    message = (
        await owner_session.execute(
            text(
                "SELECT id, booking_id, sender, author_account_id, body FROM messages "
                "WHERE client_id = :c AND sender = 'business'"
            ),
            {"c": seeded.client_id},
        )
    ).one()
    assert (message.booking_id, message.author_account_id, message.body) == (
        latest, business.owner_account_id, "Ответ бизнеса",
    )  # fmt: skip
    queued = (
        await owner_session.execute(
            text(
                "SELECT account_id, booking_id, payload, locale FROM notifications "
                "WHERE event = 'message.business' AND business_id = :b"
            ),
            {"b": business.id},
        )
    ).all()
    assert len(queued) == 1
    assert (queued[0].account_id, queued[0].booking_id) == (someone.id, latest)
    assert queued[0].payload["message_id"] == message.id
    assert queued[0].locale == "kk"  # the client's language, not the business's
    shown = await client.get(f"{url}?sent=1")
    assert "Ответ бизнеса" in shown.text

    # an empty reply: 422 beside the field, nothing stored or queued
    empty = await client.post(url, data=form(csrf, body="   "))
    assert empty.status_code == 422 and 'id="e-body"' in empty.text
    long = await client.post(url, data=form(csrf, body="x" * 2001))
    assert long.status_code == 422
    count = (
        await owner_session.execute(
            text("SELECT count(*) FROM notifications WHERE event = 'message.business' "
                 "AND business_id = :b"),
            {"b": business.id},
        )
    ).scalar_one()  # fmt: skip
    assert count == 1


async def test_a_walk_in_gets_the_reply_in_the_thread_without_a_notification(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    seeded = await seed_client(owner_session, business, account=None, visits=1)
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    sent = await client.post(f"/dashboard/inbox/{seeded.client_id}",
                             data=form(csrf, body="Ждём"), follow_redirects=False)  # fmt: skip
    assert sent.status_code == 303
    queued = (
        await owner_session.execute(
            text("SELECT count(*) FROM notifications WHERE business_id = :b "
                 "AND event = 'message.business'"),
            {"b": business.id},
        )
    ).scalar_one()  # fmt: skip
    assert queued == 0


async def test_another_business_and_masters(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    other = await new_business(owner_session)
    theirs = await seed_client(owner_session, other, visits=1)
    await write(owner_session, other.id, theirs.client_id, theirs.booking_ids[0], "Чужое")
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    url = f"/dashboard/inbox/{theirs.client_id}"
    assert (await client.get(url)).status_code == 404
    assert (await client.post(url, data=form(csrf, body="hi"))).status_code == 404
    assert (await client.post(f"{url}/read", data=form(csrf))).status_code == 404
    assert await unread_of(owner_session, theirs.client_id) == 1
    replies = (
        await owner_session.execute(
            text("SELECT count(*) FROM messages WHERE client_id = :c AND sender = 'business'"),
            {"c": theirs.client_id},
        )
    ).scalar_one()
    assert replies == 0

    master = await add_member(owner_session, business.id, "master",
                              staff_id=business.staff_ids[0])  # fmt: skip
    mine = await seed_client(owner_session, business, visits=1)
    csrf = await sign_in_as(client, owner_session, settings, master.account_id)
    assert (await client.get("/dashboard/inbox")).status_code == 403
    assert (await client.get(f"/dashboard/inbox/{mine.client_id}")).status_code == 403
    refused = await client.post(f"/dashboard/inbox/{mine.client_id}", data=form(csrf, body="x"))
    assert refused.status_code == 403
