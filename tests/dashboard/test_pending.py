"""A manual-confirm business answers its bookings from the dashboard (issue 13: "a manual-confirm
business can confirm from the dashboard"): a client books through the API → pending; the
owner (or an admin, or the booking's own master) confirms or declines it through the pinned
``POST /dashboard/bookings/{id}/confirm`` and ``…/cancel``; the client is told. Another
business's booking — or, for a master, another master's — is 404 and stays as it was."""

from __future__ import annotations

from datetime import time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.factories import BusinessFixture, local_start, new_business
from tests.helpers import TelegramUser, booking_body, grant_consent
from tests.support.dashboard import add_member, form, sign_in_as

HTMX = {"HX-Request": "true"}


async def client_books(
    client: httpx.AsyncClient,
    business: BusinessFixture,
    *,
    master: int = 0,
    at: time = time(10),
    days_ahead: int = 3,
) -> int:
    """A client books through the API, as the Mini App does; the booking's id."""
    user = TelegramUser()
    await grant_consent(client, user)
    response = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, local_start(business, days_ahead, at),
                          business.staff_ids[master]),
        headers=user.headers(),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    return int(response.json()["id"])


async def booking_row(owner_session: AsyncSession, booking_id: int) -> Any:
    await owner_session.commit()
    return (
        await owner_session.execute(
            text(
                "SELECT status, cancelled_by, cancel_reason, pending_expires_at, account_id "
                "FROM bookings WHERE id = :b"
            ),
            {"b": booking_id},
        )
    ).one()


async def queued(owner_session: AsyncSession, booking_id: int, event: str) -> list[int]:
    await owner_session.commit()
    rows = await owner_session.execute(
        text("SELECT account_id FROM notifications WHERE booking_id = :b AND event = :e"),
        {"b": booking_id, "e": event},
    )
    return [r.account_id for r in rows]


async def owner_of(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings, business: Any
) -> str:
    assert business.owner_account_id is not None
    return await sign_in_as(client, owner_session, settings, business.owner_account_id)


async def test_the_owner_confirms_a_pending_booking_and_the_client_is_told(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    booking_id = await client_books(client, business)
    csrf = await owner_of(client, owner_session, settings, business)

    listed = await client.get("/dashboard/bookings/pending")
    assert listed.status_code == 200
    assert f'id="booking-{booking_id}"' in listed.text
    assert f'action="/dashboard/bookings/{booking_id}/confirm"' in listed.text

    done = await client.post(
        f"/dashboard/bookings/{booking_id}/confirm", data=form(csrf), follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/dashboard/bookings/pending")
    row = await booking_row(owner_session, booking_id)
    assert (row.status, row.pending_expires_at) == ("confirmed", None)
    assert await queued(owner_session, booking_id, "booking.confirmed") == [row.account_id]
    # audited as the owner's doing
    actor = await owner_session.scalar(
        text(
            "SELECT actor_account_id FROM audit_log WHERE entity = 'booking' "
            "AND entity_id = :b AND action = 'booking.confirmed'"
        ),
        {"b": booking_id},
    )
    assert actor == business.owner_account_id
    # no longer waiting: the list says so, and a second confirmation is refused (422)
    after = await client.get(done.headers["location"])
    assert f'id="booking-{booking_id}"' not in after.text
    again = await client.post(f"/dashboard/bookings/{booking_id}/confirm", data=form(csrf))
    assert again.status_code == 422
    assert await queued(owner_session, booking_id, "booking.confirmed") == [row.account_id]


async def test_htmx_swaps_the_row_for_its_new_state(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    first = await client_books(client, business, at=time(10))
    second = await client_books(client, business, at=time(15))
    csrf = await owner_of(client, owner_session, settings, business)

    confirmed = await client.post(
        f"/dashboard/bookings/{first}/confirm", headers={**HTMX, "X-CSRF-Token": csrf}
    )
    assert confirmed.status_code == 200
    assert f'<li class="pending-row answered answered-confirmed" id="booking-{first}"' in (
        confirmed.text
    )
    assert "<html" not in confirmed.text  # a fragment, not a page

    declined = await client.post(
        f"/dashboard/bookings/{second}/cancel", data={"reason": "Мастер заболел"},
        headers={**HTMX, "X-CSRF-Token": csrf},
    )  # fmt: skip
    assert declined.status_code == 200
    assert "answered-cancelled" in declined.text
    row = await booking_row(owner_session, second)
    assert (row.status, row.cancelled_by, row.cancel_reason) == (
        "cancelled", "business", "Мастер заболел",
    )  # fmt: skip
    assert await queued(owner_session, second, "booking.cancelled") == [row.account_id]
    # answering an answered booking swaps in the refusal instead of doing it twice
    late = await client.post(
        f"/dashboard/bookings/{second}/confirm", headers={**HTMX, "X-CSRF-Token": csrf}
    )
    assert late.status_code == 200 and "answered-refused" in late.text
    assert (await booking_row(owner_session, second)).status == "cancelled"


async def test_decline_without_script_comes_back_to_the_list(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    booking_id = await client_books(client, business)
    csrf = await owner_of(client, owner_session, settings, business)
    done = await client.post(
        f"/dashboard/bookings/{booking_id}/cancel", data=form(csrf), follow_redirects=False
    )
    assert done.status_code == 303
    row = await booking_row(owner_session, booking_id)
    assert (row.status, row.cancelled_by, row.cancel_reason) == ("cancelled", "business", None)


async def test_another_business_booking_is_404_and_untouched(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    theirs = await new_business(owner_session, auto_confirm=False)
    booking_id = await client_books(client, theirs)
    mine = await new_business(owner_session, auto_confirm=False)
    csrf = await owner_of(client, owner_session, settings, mine)
    for action in ("confirm", "cancel"):
        response = await client.post(f"/dashboard/bookings/{booking_id}/{action}", data=form(csrf))
        assert response.status_code == 404, action
        htmx = await client.post(
            f"/dashboard/bookings/{booking_id}/{action}", headers={**HTMX, "X-CSRF-Token": csrf}
        )
        assert htmx.status_code == 404, action
    for nonsense in ("0", "99999999999999999999", str(2**63)):
        response = await client.post(f"/dashboard/bookings/{nonsense}/confirm", data=form(csrf))
        assert response.status_code in (404, 400), nonsense
    assert (await booking_row(owner_session, booking_id)).status == "pending"
    listed = await client.get("/dashboard/bookings/pending")
    assert f'id="booking-{booking_id}"' not in listed.text
    # without the CSRF token nothing happens even to one's own
    own = await client_books(client, mine)
    refused = await client.post(f"/dashboard/bookings/{own}/confirm", data={})
    assert refused.status_code == 403
    assert (await booking_row(owner_session, own)).status == "pending"


async def test_a_master_answers_only_their_own_bookings(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    own = await client_books(client, business, master=0)
    others = await client_books(client, business, master=1)
    master = await add_member(owner_session, business.id, "master", staff_id=business.staff_ids[0])
    csrf = await sign_in_as(client, owner_session, settings, master.account_id)

    listed = await client.get("/dashboard/bookings/pending")
    assert listed.status_code == 200
    assert f'id="booking-{own}"' in listed.text and f'id="booking-{others}"' not in listed.text
    refused = await client.post(f"/dashboard/bookings/{others}/confirm", data=form(csrf))
    assert refused.status_code == 404
    refused = await client.post(f"/dashboard/bookings/{others}/cancel", data=form(csrf))
    assert refused.status_code == 404
    assert (await booking_row(owner_session, others)).status == "pending"
    done = await client.post(
        f"/dashboard/bookings/{own}/confirm", data=form(csrf), follow_redirects=False
    )
    assert done.status_code == 303
    assert (await booking_row(owner_session, own)).status == "confirmed"


async def test_an_admin_sees_every_pending_booking_and_an_empty_list_says_so(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    admin = await add_member(owner_session, business.id, "admin")
    await sign_in_as(client, owner_session, settings, admin.account_id)
    empty = await client.get("/dashboard/bookings/pending?lang=ru")
    assert empty.status_code == 200
    assert "Ничего не ждёт вашего ответа." in empty.text
    ids = [await client_books(client, business, master=m) for m in (0, 1)]
    listed = await client.get("/dashboard/bookings/pending")
    assert all(f'id="booking-{i}"' in listed.text for i in ids)


async def test_a_confirmed_booking_the_business_moves_stays_confirmed(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """Confirming by hand, the business confirms a client's booking, then moves it itself:
    the new time is the business's own choice and needs no second confirmation."""
    business = await new_business(owner_session, auto_confirm=False)
    booking_id = await client_books(client, business)
    csrf = await owner_of(client, owner_session, settings, business)
    confirmed = await client.post(f"/dashboard/bookings/{booking_id}/confirm", data=form(csrf),
                                  follow_redirects=False)  # fmt: skip
    assert confirmed.status_code == 303, confirmed.text
    later = local_start(business, 3, time(15))
    moved = await client.post(
        f"/dashboard/bookings/{booking_id}/reschedule",
        data=form(csrf, start=later.strftime("%Y-%m-%dT%H:%M"), zone=business.timezone),
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    await owner_session.commit()
    new = (
        await owner_session.execute(
            text("SELECT status, pending_expires_at FROM bookings WHERE rescheduled_from_id = :b"),
            {"b": booking_id},
        )
    ).one()
    assert new.status == "confirmed" and new.pending_expires_at is None
    assert (await booking_row(owner_session, booking_id)).status == "cancelled"
