"""The Mini App inside Telegram, in real Chromium with Telegram's own WebApp script.

Telegram opens a Mini App with the signed ``initData`` in the URL fragment; the vendored SDK
reads it from there, exactly as in the Telegram clients. The native MainButton is pressed the
way Telegram delivers it: an event into ``Telegram.WebView.receiveEvent``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import text

from app.security import web
from tests.browser.conftest import PageWatch, pick_day, telegram_url
from tests.conftest import BOT_TOKEN
from tests.factories import create_business, next_telegram_id
from tests.support.telegram import make_init_data

pytestmark = pytest.mark.browser


async def press_main_button(page: Any) -> None:
    """Telegram's native MainButton, pressed the way Telegram reports it to the page.

    htmx-boosted pages change without a full navigation, so callers wait for the outcome."""
    await page.wait_for_selector("[data-main-button]", state="attached")
    # poll through evaluate: wait_for_function compiles a string, which our CSP forbids
    for _ in range(200):  # a bound that only catches a page that never shows the button
        if await page.evaluate("window.Telegram.WebApp.MainButton.isVisible"):
            break
        await page.wait_for_timeout(50)
    await page.evaluate("window.Telegram.WebView.receiveEvent('main_button_pressed')")


async def book_first_slot(page: Any, live_server: str, slug: str, init_data: str) -> None:
    """Open the Mini App in Telegram, consent, and book the first free time of the first service."""
    await page.goto(telegram_url(f"{live_server}/app/b/{slug}", init_data))
    await page.wait_for_selector("body[data-signed-in='true']")
    await page.click("a.service >> nth=0")
    await pick_day(page)
    await page.click("#times .slot >> nth=0")
    await page.wait_for_url("**/app/consent**")
    await press_main_button(page)
    await page.wait_for_url("**/confirm**")
    await press_main_button(page)
    await page.wait_for_selector("[data-haptic='success']")


@pytest.mark.policy("9.2")
async def test_book_cancel_and_move_inside_telegram(phone_page, live_server, owner_session) -> None:  # type: ignore[no-untyped-def]
    page, watch = phone_page
    business = await create_business(owner_session)
    await owner_session.commit()
    telegram_id = next_telegram_id()
    init_data = make_init_data(
        BOT_TOKEN, user_id=telegram_id, first_name="Айгүл", language_code="ru"
    )

    # Opening the Mini App signs in with initData and reloads with a session.
    await page.goto(telegram_url(f"{live_server}/app/b/{business.slug}", init_data))
    await page.wait_for_selector("body[data-signed-in='true']")
    assert await page.evaluate("document.documentElement.classList.contains('in-telegram')")
    await watch.shot("telegram-business")
    assert await watch.fits_360()

    await page.click("a.service >> nth=0")
    await pick_day(page)
    await page.wait_for_selector("#times .slot")
    await watch.shot("telegram-times")
    assert await watch.fits_360()
    first_time = (await page.inner_text("#times .slot >> nth=0")).strip()
    await page.click("#times .slot >> nth=0")

    # First booking: consent first, tied to the current policy version.
    await page.wait_for_url("**/app/consent**")
    assert "Казахстан" in await page.inner_text("main")
    await watch.shot("telegram-consent")
    await press_main_button(page)

    await page.wait_for_url("**/confirm**")
    await watch.shot("telegram-confirm")
    assert first_time in await page.inner_text("main")
    await press_main_button(page)

    await page.wait_for_selector("[data-haptic='success']")
    assert "Вы записаны" in await page.inner_text("main")
    await watch.shot("telegram-booked")
    await page.wait_for_url(re.compile(r"/app/bookings/\d+"))  # htmx may push it after the swap
    booking_url = page.url

    rows = (
        await owner_session.execute(
            text(
                "SELECT b.status, b.source, c.channel FROM bookings b JOIN accounts a ON a.id = b.account_id "
                "JOIN consents c ON c.account_id = a.id WHERE a.telegram_id = :t"
            ),
            {"t": telegram_id},
        )
    ).all()
    assert rows == [("confirmed", "mini_app", "mini_app")]

    # My bookings lists it as upcoming.
    await page.goto(f"{live_server}/app/bookings")
    assert first_time in await page.inner_text(".bookings")
    await watch.shot("telegram-my-bookings")

    # Move it to another time: the old booking is cancelled, a new one holds the new slot.
    await page.goto(booking_url.split("?")[0])
    await page.click("text=Перенести на другое время")
    await page.wait_for_selector("#times .slot")
    await pick_day(page, 4)
    new_time = (await page.inner_text("#times .slot >> nth=2")).strip()
    await page.click("#times .slot >> nth=2")
    await page.wait_for_selector("[data-haptic='success']")
    assert "Вы записаны" in await page.inner_text("main")
    assert new_time in await page.inner_text("main")

    # Cancel the moved booking.
    await page.click("button.danger")
    await page.wait_for_selector(".status-cancelled")
    assert "Отменена" in await page.inner_text(".status")
    statuses = (
        (
            await owner_session.execute(
                text(
                    "SELECT b.status FROM bookings b JOIN accounts a ON a.id = b.account_id "
                    "WHERE a.telegram_id = :t ORDER BY b.id"
                ),
                {"t": telegram_id},
            )
        )
        .scalars()
        .all()
    )
    assert statuses == ["cancelled", "cancelled"]

    # 9.2: the browser keeps only what signing in needs: our session cookie and no
    # localStorage; sessionStorage (gone with the tab) holds the Telegram WebApp script's launch
    # parameters and the path htmx restores on Back, nothing else
    assert {c["name"] for c in await page.context.cookies()} == {web.COOKIE}
    local, session_keys = await page.evaluate("[localStorage.length, Object.keys(sessionStorage)]")
    assert local == 0
    assert set(session_keys) <= {"__telegram__initParams", "htmx-current-path-for-history"}

    assert watch.foreign == [], f"requests to other origins: {watch.foreign}"
    assert watch.errors == []


async def test_kazakh_everywhere_on_the_booking_pages(
    phone_page, live_server, owner_session
) -> None:  # type: ignore[no-untyped-def]
    page, watch = phone_page
    business = await create_business(owner_session)
    await owner_session.commit()
    init_data = make_init_data(
        BOT_TOKEN, user_id=next_telegram_id(), first_name="Дәулет", language_code="kk"
    )

    await page.goto(telegram_url(f"{live_server}/app/b/{business.slug}", init_data))
    await page.wait_for_selector("body[data-signed-in='true']")
    assert await page.get_attribute("html", "lang") == "kk"
    assert "Қызметті таңдаңыз" in await page.inner_text("main")
    assert "Шаш қию" in await page.inner_text("main")
    await watch.shot("telegram-kk-business")

    await page.click("a.service >> nth=0")
    await pick_day(page)
    await page.wait_for_selector("#times .slot")
    main = await page.inner_text("main")
    assert "Кез келген шебер" in main
    assert "Выберите" not in main and "Choose" not in main
    await watch.shot("telegram-kk-times")

    await page.goto(f"{live_server}/app/bookings")
    assert "Менің жазылуларым" in await page.inner_text("main")
    await watch.shot("telegram-kk-my-bookings")
    assert watch.foreign == []


async def test_pages_work_without_javascript(browser, live_server, owner_session) -> None:  # type: ignore[no-untyped-def]
    """Outside Telegram and even with scripts off, browsing and picking a time work."""
    business = await create_business(owner_session)
    await owner_session.commit()
    context = await browser.new_context(
        viewport={"width": 360, "height": 740}, java_script_enabled=False
    )
    page = await context.new_page()
    watch = PageWatch(page, live_server)
    await page.goto(f"{live_server}/app/b/{business.slug}")
    await page.click("a.service >> nth=0")
    tomorrow = page.locator("a.day[aria-current] ~ a.day").first
    day = (await tomorrow.get_attribute("href") or "").split("date=", 1)[1][:10]
    await tomorrow.click()
    # each click loads a new page: wait for it, never count what the old one showed
    await expect(page.locator(f"#times[data-day='{day}'] .slot")).not_to_have_count(0)
    await page.click("#times .slot >> nth=0")
    await page.wait_for_url("**/app/signin**")  # booking needs a sign-in first
    assert watch.foreign == []
    await context.close()


async def test_correspondence_with_the_business(phone_page, live_server, owner_session) -> None:  # type: ignore[no-untyped-def]
    """The client writes about a booking; the business's reply appears without a reload."""
    page, watch = phone_page
    business = await create_business(owner_session)
    await owner_session.commit()
    init_data = make_init_data(
        BOT_TOKEN, user_id=next_telegram_id(), first_name="Мадина", language_code="ru"
    )
    await book_first_slot(page, live_server, business.slug, init_data)

    await page.fill("#messages textarea", "Можно прийти на 10 минут раньше?")
    await page.click("#messages button[type=submit]")
    await page.wait_for_selector("#messages .from-client")
    assert "10 минут раньше" in await page.inner_text("#messages .from-client")

    booking = (
        await owner_session.execute(
            text("SELECT id, client_id FROM bookings WHERE business_id = :b"), {"b": business.id}
        )
    ).one()
    await owner_session.execute(
        text(
            "INSERT INTO messages (business_id, client_id, booking_id, sender, body) "
            "VALUES (:b, :c, :id, 'business', 'Да, конечно, ждём вас')"
        ),
        {"b": business.id, "c": booking.client_id, "id": booking.id},
    )
    await owner_session.commit()
    # polling brings it in; the timeout only catches a page that never updates
    await page.wait_for_selector("#messages .from-business", timeout=20000)
    assert "ждём вас" in await page.inner_text("#messages .from-business")
    await watch.shot("telegram-messages")
    notified = await owner_session.scalar(
        text(
            "SELECT count(*) FROM notifications WHERE booking_id = :id AND event = 'staff.message.client'"
        ),
        {"id": booking.id},
    )
    assert notified == 1  # the business owner is told about the client's message
    assert watch.foreign == []
