"""The booking panel (issue 14 item 3): ``GET /dashboard/bookings/{id}`` shows one booking —
of the client only name and phone (policy 5.1) —, its history and the thread with the client;
its actions (reschedule, complete, no-show, reply, note, and confirm/cancel from the panel) go
through the booking domain, are audited and tell the client. Another business's booking, or a
master's colleague's, is 404 for every one of them and stays as it was."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import set_context
from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, create_booking_in
from app.models import Account, Business
from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business, next_telegram_id
from tests.support.dashboard import add_member, form, sign_in_as

HTMX = {"HX-Request": "true"}


async def a_client(owner_session: AsyncSession) -> Account:
    account = Account(
        name="Айгерим Панель", telegram_id=next_telegram_id(), locale="en",
        email=f"panel-{uuid4().hex[:10]}@example.com", phone=f"+7701{uuid4().int % 10**7:07d}",
    )  # fmt: skip
    owner_session.add(account)
    await owner_session.commit()
    return account


async def book(
    owner_session: AsyncSession,
    business: BusinessFixture,
    account: Account,
    start: datetime,
    *,
    master: int = 0,
) -> int:
    """A confirmed booking of ``account`` (made three days before ``start``, so a start in the
    past is a visit that has happened)."""
    await set_context(owner_session, business_id=business.id)
    row = await owner_session.get_one(Business, business.id)
    booking, _ = await create_booking_in(
        owner_session, row,
        BookingRequest(service_id=business.service_id, staff_id=business.staff_ids[master],
                       start=start, comment="Без спешки, пожалуйста"),
        account=account, actor=Actor(kind="client", account_id=account.id),
        now=start - timedelta(days=3),
    )  # fmt: skip
    await owner_session.commit()
    return booking.id


async def status_of(owner_session: AsyncSession, booking_id: int) -> str:
    await owner_session.commit()
    return str(
        await owner_session.scalar(
            text("SELECT status FROM bookings WHERE id = :b"), {"b": booking_id}
        )
    )


async def queued(owner_session: AsyncSession, booking_id: int, event: str) -> list[int]:
    await owner_session.commit()
    rows = await owner_session.execute(
        text("SELECT account_id FROM notifications WHERE booking_id = :b AND event = :e"),
        {"b": booking_id, "e": event},
    )
    return [r.account_id for r in rows]


async def audited(owner_session: AsyncSession, entity: str, entity_id: int) -> list[str]:
    await owner_session.commit()
    rows = await owner_session.execute(
        text("SELECT action FROM audit_log WHERE entity = :e AND entity_id = :i ORDER BY id"),
        {"e": entity, "i": entity_id},
    )
    return [r.action for r in rows]


async def owner_in(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, b: BusinessFixture
) -> str:
    assert b.owner_account_id is not None
    return await sign_in_as(client, owner_session, settings, b.owner_account_id)


def past(business: BusinessFixture) -> datetime:
    return local_start(business, -2, time(10))


async def test_the_panel_shows_the_booking_and_never_the_clients_email_or_telegram(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    account = await a_client(owner_session)
    booking_id = await book(owner_session, business, account, local_start(business, 3))
    await owner_in(client, owner_session, settings, business)

    panel = await client.get(f"/dashboard/bookings/{booking_id}")
    assert panel.status_code == 200, panel.text
    html = panel.text
    assert 'id="booking-panel"' in html
    assert "Без спешки, пожалуйста" in html  # the client's comment
    assert f'action="/dashboard/bookings/{booking_id}/reschedule"' in html
    assert f'action="/dashboard/bookings/{booking_id}/messages"' in html
    # history: the booking's creation, from the audit log
    assert 'class="booking-history"' in html
    # policy 5.1: the client's name and phone, never e-mail or Telegram id
    clients = await owner_session.execute(
        text("SELECT name, phone FROM clients WHERE business_id = :b AND account_id = :a"),
        {"b": business.id, "a": account.id},
    )
    name, phone = clients.one()
    assert name and phone, "the client card carries the name and phone the panel shows"
    assert name in html and phone in html
    assert account.email is not None and account.email not in html
    assert str(account.telegram_id) not in html
    # htmx gets the panel alone
    fragment = await client.get(f"/dashboard/bookings/{booking_id}", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'id="booking-panel"' in fragment.text


async def test_reschedule_moves_to_a_free_time_and_tells_the_client(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    account = await a_client(owner_session)
    booking_id = await book(owner_session, business, account, local_start(business, 3))
    csrf = await owner_in(client, owner_session, settings, business)

    new_start = local_start(business, 4, time(15))
    moved = await client.post(
        f"/dashboard/bookings/{booking_id}/reschedule",
        data=form(csrf, start=new_start.isoformat(), staff_id=str(business.staff_ids[1])),
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    assert await status_of(owner_session, booking_id) == "cancelled"
    new_id = int(moved.headers["location"].rsplit("/", 1)[1])
    assert new_id != booking_id
    row = (
        await owner_session.execute(
            text("SELECT status, staff_id, lower(period) AS s FROM bookings WHERE id = :b"),
            {"b": new_id},
        )
    ).one()
    assert (row.status, row.staff_id, row.s) == ("confirmed", business.staff_ids[1], new_start)
    assert await queued(owner_session, new_id, "booking.rescheduled") == [account.id]
    assert "booking.reschedule" in await audited(owner_session, "booking", booking_id)
    moved_panel = await client.get(moved.headers["location"])
    assert moved_panel.status_code == 200
    # the old booking's history comes along
    assert "Запись перенесена на другое время" in moved_panel.text

    # a local time from the form's datetime-local, in the business's zone
    later = local_start(business, 5, time(11))
    again = await client.post(
        f"/dashboard/bookings/{new_id}/reschedule",
        data=form(csrf, start=later.strftime("%Y-%m-%dT%H:%M"), zone=business.timezone),
        follow_redirects=False,
    )
    assert again.status_code == 303, again.text
    # with htmx the moved booking's panel is swapped in, and the address follows it there
    third = local_start(business, 6, time(11))
    newest = f"/dashboard/bookings/{int(again.headers['location'].rsplit('/', 1)[1])}"
    swapped = await client.post(
        f"{newest}/reschedule",
        data={"start": third.isoformat()},
        headers={
            **HTMX,
            "X-CSRF-Token": csrf,
            "HX-Current-URL": f"https://testserver.local{newest}",
        },
    )
    assert swapped.status_code == 200 and "<html" not in swapped.text
    assert swapped.headers["HX-Replace-Url"].startswith("/dashboard/bookings/")
    assert swapped.headers["HX-Replace-Url"] != newest
    assert swapped.url.path == swapped.headers["HX-Replace-Url"]
    # an action that keeps the booking leaves the address as it is
    kept = await client.get(swapped.url.path, headers={**HTMX, "HX-Current-URL": str(swapped.url)})
    assert kept.status_code == 200 and "HX-Replace-Url" not in kept.headers


async def test_reschedule_onto_a_taken_time_is_409_and_changes_nothing(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    account = await a_client(owner_session)
    other = await a_client(owner_session)
    booking_id = await book(owner_session, business, account, local_start(business, 3, time(10)))
    taken = local_start(business, 3, time(15))
    await book(owner_session, business, other, taken)
    csrf = await owner_in(client, owner_session, settings, business)

    clash = await client.post(
        f"/dashboard/bookings/{booking_id}/reschedule",
        data=form(csrf, start=taken.isoformat(), staff_id=str(business.staff_ids[0])),
    )
    assert clash.status_code == 409, clash.text
    assert 'id="e-start"' in clash.text  # the message beside the field
    assert await status_of(owner_session, booking_id) == "confirmed"
    # bad input is 422, never a 500
    bad = await client.post(
        f"/dashboard/bookings/{booking_id}/reschedule", data=form(csrf, start="tomorrow")
    )
    assert bad.status_code == 422 and 'id="e-start"' in bad.text
    # with htmx the panel is swapped with the message in it
    swapped = await client.post(
        f"/dashboard/bookings/{booking_id}/reschedule",
        data={"start": taken.isoformat()}, headers={**HTMX, "X-CSRF-Token": csrf},
    )  # fmt: skip
    assert swapped.status_code == 200 and 'id="e-start"' in swapped.text
    assert "<html" not in swapped.text
    assert await status_of(owner_session, booking_id) == "confirmed"


@pytest.mark.parametrize(("path", "status"), [("complete", "completed"), ("no-show", "no_show")])
async def test_after_the_visit_complete_or_no_show(
    client: httpx.AsyncClient,
    owner_session: AsyncSession,
    settings: Settings,
    path: str,
    status: str,
) -> None:
    business = await new_business(owner_session)
    account = await a_client(owner_session)
    booking_id = await book(owner_session, business, account, past(business))
    upcoming = await book(owner_session, business, account, local_start(business, 3))
    csrf = await owner_in(client, owner_session, settings, business)

    done = await client.post(
        f"/dashboard/bookings/{booking_id}/{path}", data=form(csrf), follow_redirects=False
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/dashboard/bookings/{booking_id}"
    assert await status_of(owner_session, booking_id) == status
    assert f"booking.{status}" in await audited(owner_session, "booking", booking_id)
    # not before the visit has started
    early = await client.post(f"/dashboard/bookings/{upcoming}/{path}", data=form(csrf))
    assert early.status_code == 422
    assert await status_of(owner_session, upcoming) == "confirmed"
    # htmx: the panel in its new state
    swapped = await client.get(done.headers["location"], headers=HTMX)
    assert "<html" not in swapped.text and 'class="booking-status status-' + status in swapped.text


async def test_confirm_and_cancel_from_the_panel_come_back_to_it(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    account = await a_client(owner_session)
    booking_id = await book(owner_session, business, account, local_start(business, 3))
    csrf = await owner_in(client, owner_session, settings, business)

    cancelled = await client.post(
        f"/dashboard/bookings/{booking_id}/cancel?from=panel",
        data=form(csrf, reason="Мастер заболел"), follow_redirects=False,
    )  # fmt: skip
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"/dashboard/bookings/{booking_id}"
    assert await status_of(owner_session, booking_id) == "cancelled"
    assert await queued(owner_session, booking_id, "booking.cancelled") == [account.id]
    # a confirmation of a cancelled booking is refused beside the panel, not a 500
    refused = await client.post(
        f"/dashboard/bookings/{booking_id}/confirm?from=panel", data=form(csrf)
    )
    assert refused.status_code == 422 and 'id="booking-panel"' in refused.text


async def test_a_reply_reaches_the_client_through_the_outbox(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    account = await a_client(owner_session)
    booking_id = await book(owner_session, business, account, local_start(business, 3))
    csrf = await owner_in(client, owner_session, settings, business)

    sent = await client.post(
        f"/dashboard/bookings/{booking_id}/messages",
        data=form(csrf, body="Ждём вас, парковка во дворе"), follow_redirects=False,
    )  # fmt: skip
    assert sent.status_code == 303, sent.text
    assert await queued(owner_session, booking_id, "message.business") == [account.id]
    message = (
        await owner_session.execute(
            text("SELECT sender, author_account_id FROM messages WHERE booking_id = :b"),
            {"b": booking_id},
        )
    ).one()
    assert (message.sender, message.author_account_id) == ("business", business.owner_account_id)
    assert "Ждём вас, парковка во дворе" in (await client.get(sent.headers["location"])).text
    empty = await client.post(
        f"/dashboard/bookings/{booking_id}/messages", data=form(csrf, body=" ")
    )
    assert empty.status_code == 422 and 'id="e-body"' in empty.text
    assert await queued(owner_session, booking_id, "message.business") == [account.id]


async def test_a_private_note_goes_on_the_client_card(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    account = await a_client(owner_session)
    booking_id = await book(owner_session, business, account, local_start(business, 3))
    csrf = await owner_in(client, owner_session, settings, business)

    saved = await client.post(
        f"/dashboard/bookings/{booking_id}/note",
        data=form(csrf, note="Любит тихую музыку"), follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303, saved.text
    await owner_session.commit()
    card = (
        await owner_session.execute(
            text("SELECT id, notes FROM clients WHERE business_id = :b AND account_id = :a"),
            {"b": business.id, "a": account.id},
        )
    ).one()
    assert card.notes is not None and card.notes.endswith("Любит тихую музыку")
    assert await audited(owner_session, "client", card.id) == ["client.note"]
    # the client is not told about a private note
    assert await queued(owner_session, booking_id, "message.business") == []
    empty = await client.post(f"/dashboard/bookings/{booking_id}/note", data=form(csrf, note=""))
    assert empty.status_code == 422 and 'id="e-note"' in empty.text


ACTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "", {}),
    ("POST", "/confirm", {}),
    ("POST", "/cancel", {"reason": "x"}),
    ("POST", "/reschedule", {"start": "2030-01-07T10:00:00+05:00"}),
    ("POST", "/complete", {}),
    ("POST", "/no-show", {}),
    ("POST", "/messages", {"body": "Здравствуйте"}),
    ("POST", "/note", {"note": "чужая заметка"}),
]


async def snapshot(owner_session: AsyncSession, booking_id: int) -> Any:
    await owner_session.commit()
    return (
        await owner_session.execute(
            text(
                "SELECT b.status, b.period, (SELECT count(*) FROM messages m WHERE "
                "m.booking_id = b.id) AS messages, c.notes FROM bookings b JOIN clients c "
                "ON c.id = b.client_id WHERE b.id = :b"
            ),
            {"b": booking_id},
        )
    ).one()


async def test_another_business_s_booking_is_404_for_every_action(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    mine = await new_business(owner_session)
    theirs = await new_business(owner_session)
    account = await a_client(owner_session)
    booking_id = await book(owner_session, theirs, account, past(theirs))
    before = await snapshot(owner_session, booking_id)
    csrf = await owner_in(client, owner_session, settings, mine)

    for method, suffix, fields in ACTIONS:
        url = f"/dashboard/bookings/{booking_id}{suffix}"
        answer = await (
            client.get(url) if method == "GET" else client.post(url, data=form(csrf, **fields))
        )
        assert answer.status_code == 404, (suffix, answer.status_code)
    assert await snapshot(owner_session, booking_id) == before


async def test_a_master_reaches_only_their_own_bookings(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session)
    account = await a_client(owner_session)
    colleagues = await book(owner_session, business, account, past(business), master=1)
    own = await book(owner_session, business, account, local_start(business, 3), master=0)
    master = await add_member(owner_session, business.id, "master", staff_id=business.staff_ids[0])
    csrf = await sign_in_as(client, owner_session, settings, master.account_id)
    before = await snapshot(owner_session, colleagues)

    for method, suffix, fields in ACTIONS:
        url = f"/dashboard/bookings/{colleagues}{suffix}"
        answer = await (
            client.get(url) if method == "GET" else client.post(url, data=form(csrf, **fields))
        )
        assert answer.status_code == 404, (suffix, answer.status_code)
    assert await snapshot(owner_session, colleagues) == before
    # their own booking opens, and they may move it only within their own column
    assert (await client.get(f"/dashboard/bookings/{own}")).status_code == 200
    elsewhere = await client.post(
        f"/dashboard/bookings/{own}/reschedule",
        data=form(csrf, start=local_start(business, 4, time(15)).isoformat(),
                  staff_id=str(business.staff_ids[1])),
    )  # fmt: skip
    assert elsewhere.status_code == 422 and 'id="e-staff_id"' in elsewhere.text
    assert await status_of(owner_session, own) == "confirmed"
    sent = await client.post(
        f"/dashboard/bookings/{own}/messages", data=form(csrf, body="Жду вас"),
        follow_redirects=False,
    )  # fmt: skip
    assert sent.status_code == 303
    assert await queued(owner_session, own, "message.business") == [account.id]
