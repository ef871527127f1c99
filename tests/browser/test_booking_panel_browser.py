"""The booking panel in headless Chromium on a 360 px phone, in Russian: the owner opens a
walk-in booking, writes to the client (htmx swaps the panel, the message is in the thread,
no navigation), tries to move it onto a taken time (the message beside the field, nothing
moves), then moves it to a free time. The page fits the phone, nothing leaves the origin, no
script fails."""

from __future__ import annotations

from datetime import time
from typing import Any

from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import set_context
from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, create_booking_in
from app.models import Business
from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch
from tests.factories import local_start, new_business


async def test_an_owner_answers_and_moves_a_booking_from_its_panel_on_a_phone(
    phone_page: tuple[Any, PageWatch],
    live_server: str,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    page, watch = phone_page
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    await set_context(owner_session, business_id=business.id)
    row = await owner_session.get_one(Business, business.id)
    made = []
    for at, name in ((time(10), "Айгерим"), (time(15), "Дана")):
        booking, _ = await create_booking_in(
            owner_session, row,
            BookingRequest(service_id=business.service_id, staff_id=business.staff_ids[0],
                           start=local_start(business, 3, at), source="walk_in",
                           client_name=name, client_phone=f"+7701123456{len(made)}"),
            account=None, actor=Actor(kind="staff", account_id=business.owner_account_id),
        )  # fmt: skip
        made.append(booking.id)
    token, _ = await sessions.issue(
        owner_session, account_id=business.owner_account_id, kind="dashboard",
        key=secret_key_for(settings), ip="127.0.0.1", user_agent="playwright",
    )  # fmt: skip
    await owner_session.commit()
    await page.context.add_cookies(
        [{"name": "__Host-pz_dash", "value": token, "domain": "127.0.0.1", "path": "/",
          "secure": True, "httpOnly": True, "sameSite": "Lax"}]
    )  # fmt: skip
    booking_id = made[0]

    await page.goto(f"{live_server}/dashboard/bookings/{booking_id}?lang=ru")
    panel = page.locator("#booking-panel")
    await expect(panel).to_contain_text("Айгерим")
    assert await watch.fits_360()
    await watch.shot("booking-panel")

    await page.fill("#f-body", "Ждём вас, парковка во дворе")
    await page.get_by_role("button", name="Отправить").click()
    await expect(page.locator(".booking-thread")).to_contain_text("Ждём вас, парковка во дворе")
    assert page.url.endswith(f"/dashboard/bookings/{booking_id}?lang=ru")  # swapped in place

    await page.locator(".booking-move summary").click()
    await page.fill("#f-start", local_start(business, 3, time(15)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Перенести запись").click()
    await expect(page.locator("#e-start")).to_be_visible()
    assert await watch.fits_360()
    await watch.shot("booking-panel-clash")
    await owner_session.commit()
    assert (
        await owner_session.scalar(
            text("SELECT status FROM bookings WHERE id = :b"), {"b": booking_id}
        )
        == "confirmed"
    )

    await page.fill("#f-start", local_start(business, 4, time(11)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Перенести запись").click()
    await expect(page.locator(".booking-history")).to_contain_text("перенесена на другое время")
    await owner_session.commit()
    assert (
        await owner_session.scalar(
            text("SELECT status FROM bookings WHERE id = :b"), {"b": booking_id}
        )
        == "cancelled"
    )
    assert watch.foreign == [] and watch.errors == []
