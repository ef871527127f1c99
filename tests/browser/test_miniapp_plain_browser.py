"""The Mini App in a plain phone browser: sign in with a one-time code, consent, book, cancel."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import text

from tests.browser.conftest import pick_day
from tests.factories import create_business

pytestmark = pytest.mark.browser


async def latest_code(owner_session: Any, address: str) -> str:
    """The code as the SMS provider would deliver it: read from the outbox row addressed to it."""
    await owner_session.commit()  # see rows committed since this session's last transaction
    payload = await owner_session.scalar(
        text(
            "SELECT payload FROM notifications WHERE event = 'otp.code' AND address = :a "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"a": address},
    )
    assert payload is not None, "no code was queued"
    return str(payload["code"])


async def test_sign_in_with_sms_code_then_book_and_cancel(
    phone_page, live_server, owner_session
) -> None:  # type: ignore[no-untyped-def]
    page, watch = phone_page
    business = await create_business(owner_session)
    await owner_session.commit()
    phone = "+7701" + str(abs(hash(business.slug)) % 10_000_000).zfill(7)

    await page.goto(f"{live_server}/app/b/{business.slug}")
    assert await page.get_attribute("body", "data-signed-in") == "false"
    await page.click("a.service >> nth=0")
    await pick_day(page)
    await page.click("#times .slot >> nth=0")
    await page.wait_for_url("**/app/signin**")
    await watch.shot("browser-signin")
    await page.fill("input[name=contact]", phone.replace("+7", "8 "))  # people type 8 7XX…
    await page.click("button.primary")
    await page.wait_for_selector("input[name=code]")
    assert "+7" in await page.inner_text("main")
    code = await latest_code(owner_session, phone)

    await page.fill("input[name=code]", "000000" if code != "000000" else "111111")
    await page.click("button.primary")
    # a wrong code is refused with a clear message
    await expect(page.locator(".alert")).to_have_count(1)
    await page.fill("input[name=code]", code)
    await page.click("button.primary")

    await page.wait_for_url("**/app/consent**")
    await page.click("button.primary")
    await page.wait_for_url("**/confirm**")
    assert phone in await page.inner_text("main")  # the verified phone goes to the business
    await watch.shot("browser-confirm")
    await page.click("button.primary")
    await page.wait_for_selector("[data-haptic='success']")
    assert "Вы записаны" in await page.inner_text("main")
    await watch.shot("browser-booked")
    await page.click("button.danger")
    await page.wait_for_selector(".status-cancelled")
    assert "Отменена" in await page.inner_text(".status")

    await page.goto(f"{live_server}/app/bookings")
    assert re.search(r"Отменена", await page.inner_text(".past"))
    await watch.shot("browser-my-bookings")
    assert await watch.fits_360()
    assert watch.foreign == []
    cookies = await page.context.cookies()
    session_cookie = next(c for c in cookies if c["name"] == "__Host-pz_app")
    assert session_cookie["httpOnly"] and session_cookie["secure"]
    assert session_cookie["sameSite"] == "None"
