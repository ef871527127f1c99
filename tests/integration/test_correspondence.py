"""Correspondence in the Mini App: reading the thread changes nothing (GET never writes); the
page says it has been seen with a POST that needs the session's CSRF token and only reaches the
client's own booking."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.helpers import TelegramUser
from tests.integration.test_miniapp_security import booked, sign_in

HTMX = {"HX-Request": "true"}


async def _business_writes(owner_session: Any, booking_id: int) -> None:
    await owner_session.execute(
        text(
            "INSERT INTO messages (business_id, client_id, booking_id, sender, body) "
            "SELECT business_id, client_id, id, 'business', 'Ждём вас!' FROM bookings "
            "WHERE id = :id"
        ),
        {"id": booking_id},
    )
    await owner_session.commit()


async def _unread(owner_session: Any, booking_id: int) -> int:
    count = await owner_session.scalar(
        text(
            "SELECT count(*) FROM messages WHERE booking_id = :id AND sender = 'business' "
            "AND read_at IS NULL"
        ),
        {"id": booking_id},
    )
    await owner_session.commit()
    return int(count)


async def test_reading_marks_nothing_and_the_post_marks_read(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    user = TelegramUser()
    _business, booking_id = await booked(client, user, owner_session)
    await _business_writes(owner_session, booking_id)
    token = await sign_in(client, user)
    page = await client.get(f"/app/bookings/{booking_id}")
    thread = await client.get(f"/app/bookings/{booking_id}/messages", headers=HTMX)
    assert page.status_code == thread.status_code == 200
    assert "Ждём вас!" in thread.text
    assert f"/app/bookings/{booking_id}/messages/read" in thread.text  # the partial asks
    assert await _unread(owner_session, booking_id) == 1  # GET wrote nothing
    refused = await client.post(f"/app/bookings/{booking_id}/messages/read")
    assert refused.status_code == 403
    assert await _unread(owner_session, booking_id) == 1
    done = await client.post(
        f"/app/bookings/{booking_id}/messages/read", headers={"X-CSRF-Token": token}
    )
    assert done.status_code == 204
    assert await _unread(owner_session, booking_id) == 0
    again = await client.get(f"/app/bookings/{booking_id}/messages", headers=HTMX)
    assert "/messages/read" not in again.text  # nothing left to mark


async def test_another_persons_thread_cannot_be_marked_read(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = TelegramUser(), TelegramUser()
    _business, booking_id = await booked(client, owner, owner_session)
    await _business_writes(owner_session, booking_id)
    token = await sign_in(client, stranger)
    response = await client.post(
        f"/app/bookings/{booking_id}/messages/read", headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 404
    assert await _unread(owner_session, booking_id) == 1
