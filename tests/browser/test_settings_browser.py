"""Settings and confirmations in headless Chromium on a 360 px phone, in Russian: an owner is
refused a slot step of 3 beside the field (what was typed stays), switches the business to
confirming by hand with a 30-minute step and saves; a client's booking then waits, and the
owner confirms it with one tap — htmx swaps the row, the CSRF header goes with it. Pages fit
the phone, nothing leaves the origin, no script fails."""

from __future__ import annotations

from datetime import time
from typing import Any

from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, create_booking_in
from app.models import Business
from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch
from tests.factories import local_start, new_business


async def test_an_owner_switches_to_manual_confirmation_and_confirms_on_a_phone(
    phone_page: tuple[Any, PageWatch],
    live_server: str,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    page, watch = phone_page
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    token, _ = await sessions.issue(
        owner_session, account_id=business.owner_account_id, kind="dashboard",
        key=secret_key_for(settings), ip="127.0.0.1", user_agent="playwright",
    )  # fmt: skip
    await owner_session.commit()
    await page.context.add_cookies(
        [{"name": "__Host-pz_dash", "value": token, "domain": "127.0.0.1", "path": "/",
          "secure": True, "httpOnly": True, "sameSite": "Lax"}]
    )  # fmt: skip

    await page.goto(f"{live_server}/dashboard/settings?lang=ru")
    await expect(page.locator("h1")).to_have_text("Настройки")
    assert await watch.fits_360()
    await page.check("input[name=confirmation][value=manual]")
    await page.fill("#f-pending_ttl", "30")
    await page.select_option("#f-pending_ttl_unit", "min")
    await page.fill("#f-horizon", "0")
    await page.click("text=Сохранить настройки")
    await expect(page.locator("#e-horizon")).to_have_text("Введите целое число от 1 до 366.")
    await expect(page.locator("#f-pending_ttl")).to_have_value("30")  # what was typed stays
    await expect(page.locator("input[name=confirmation][value=manual]")).to_be_checked()
    assert await watch.fits_360()
    await watch.shot("settings-refused")
    await page.fill("#f-horizon", "30")
    await page.select_option("#f-slot_step", "30")
    await page.click("text=Сохранить настройки")
    await expect(page.locator("p.success")).to_have_text("Настройки сохранены.")
    await owner_session.commit()
    saved = (
        await owner_session.execute(
            text("SELECT auto_confirm, pending_ttl_min, slot_step_min, horizon_days "
                 "FROM businesses WHERE id = :b"),
            {"b": business.id},
        )
    ).one()  # fmt: skip
    assert tuple(saved) == (False, 30, 30, 30)

    # a pending booking (as a client's would be), then one tap to confirm it
    row_business = await owner_session.get(Business, business.id, populate_existing=True)
    assert row_business is not None
    booking, _ = await create_booking_in(
        owner_session, row_business,
        BookingRequest(service_id=business.service_id, staff_id=business.staff_ids[0],
                       start=local_start(business, 3, time(10)), source="mini_app",
                       client_name="Айгерим", client_phone="+77011234567"),
        account=None, actor=Actor(kind="staff", account_id=business.owner_account_id),
    )  # fmt: skip
    booking_id = booking.id
    await owner_session.commit()
    await page.goto(f"{live_server}/dashboard/bookings/pending")
    row = page.locator(f"#booking-{booking_id}")
    await expect(row).to_contain_text("Айгерим")
    assert await watch.fits_360()
    await watch.shot("pending-list")
    await row.get_by_role("button", name="Подтвердить").click()
    await expect(page.locator(f"#booking-{booking_id}.answered-confirmed")).to_be_visible()
    await owner_session.commit()
    status = await owner_session.scalar(
        text("SELECT status FROM bookings WHERE id = :b"), {"b": booking_id}
    )
    assert status == "confirmed"
    assert page.url.endswith("/dashboard/bookings/pending")  # swapped in place, no navigation
    await watch.shot("pending-confirmed")
    assert watch.foreign == [] and watch.errors == []
