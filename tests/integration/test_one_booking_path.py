"""The API and the Mini App create a booking through one domain function: the same request
through either writes the same rows (booking, client card, notifications, audit entry)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.factories import create_business, local_start
from tests.helpers import TelegramUser, booking_body, grant_consent
from tests.integration.test_miniapp_security import sign_in

ROWS = {
    "booking": "SELECT status, source, staff_id, service_id, lower(period) AS start, "
    "upper(period) AS end, price_tiyn, service_name FROM bookings WHERE id = :id",
    "client": "SELECT c.name, c.phone, c.account_id IS NOT NULL AS linked FROM clients c "
    "JOIN bookings b ON b.client_id = c.id WHERE b.id = :id",
    "notifications": "SELECT n.event, n.status, n.scheduled_at - CASE n.event WHEN 'booking.reminder' "
    "THEN lower(b.period) ELSE b.created_at END AS due "
    "FROM notifications n JOIN bookings b ON b.id = n.booking_id WHERE n.booking_id = :id "
    "ORDER BY n.event, n.scheduled_at",
    "audit": "SELECT action, entity, actor_kind, actor_account_id IS NOT NULL AS by_someone "
    "FROM audit_log WHERE entity = 'booking' AND entity_id = :id ORDER BY id",
}


async def _rows(owner_session: Any, booking_id: int) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for name, sql in ROWS.items():
        result = await owner_session.execute(text(sql), {"id": booking_id})
        found[name] = [tuple(r) for r in result]
    await owner_session.commit()
    return found


async def test_the_api_and_the_mini_app_write_the_same_booking(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    first, second = (await create_business(owner_session), await create_business(owner_session))
    await owner_session.commit()
    user = TelegramUser()
    await grant_consent(client, user)
    start = local_start(first, 3)
    by_api = await client.post(
        f"/api/v1/businesses/{first.slug}/bookings",
        json=booking_body(first.service_id, start),
        headers=user.headers(),
    )
    assert by_api.status_code == 201
    token = await sign_in(client, user)
    by_app = await client.post(
        f"/app/b/{second.slug}/book",
        data={"service_id": str(second.service_id), "staff": "any",
              "start": local_start(second, 3).isoformat(), "_csrf": token},
        follow_redirects=False,
    )  # fmt: skip
    assert by_app.status_code == 303
    app_id = int(by_app.headers["location"].split("/app/bookings/")[1].split("?")[0])
    api_rows = await _rows(owner_session, int(by_api.json()["id"]))
    app_rows = await _rows(owner_session, app_id)
    # the same business set-up, the same person: only the source and ids may differ
    api_booking, app_booking = api_rows.pop("booking")[0], app_rows.pop("booking")[0]
    assert (api_booking[0], api_booking[1]) == ("confirmed", "api")
    assert (app_booking[0], app_booking[1]) == ("confirmed", "mini_app")
    assert api_booking[4:] == app_booking[4:]
    assert api_rows == app_rows
    assert api_rows["notifications"], "the client is told and reminded"
    assert api_rows["audit"] == [("booking.create", "booking", "client", True)]


async def test_booking_in_the_mini_app_over_http(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    """POST /app/b/{slug}/book: without the session's CSRF token nothing is booked; with it a
    booking is made, the page redirects to it, and the same time again answers 409."""
    business = await create_business(owner_session)
    await owner_session.commit()
    user = TelegramUser()
    await grant_consent(client, user)
    token = await sign_in(client, user)
    form = {"service_id": str(business.service_id), "staff": str(business.staff_ids[0]),
            "start": local_start(business, 4).isoformat(), "name": "Айгерім"}  # fmt: skip
    refused = await client.post(f"/app/b/{business.slug}/book", data=form)
    assert refused.status_code == 403
    made = await client.post(
        f"/app/b/{business.slug}/book", data={**form, "_csrf": token}, follow_redirects=False
    )
    assert made.status_code == 303
    page = await client.get(made.headers["location"])
    assert page.status_code == 200
    again = await client.post(f"/app/b/{business.slug}/book", data={**form, "_csrf": token})
    count = await owner_session.scalar(
        text("SELECT count(*) FROM bookings WHERE business_id = :b"), {"b": business.id}
    )
    await owner_session.commit()
    assert count == 1
    assert again.status_code == 409  # the master's time is taken: the form says so
