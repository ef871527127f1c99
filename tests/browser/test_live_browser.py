"""The live calendar in headless Chromium (issue 14 item 4): the owner keeps a day's calendar open in one browser context while a client, in a second context, books in the
Mini App inside Telegram, writes to the business and cancels. Without a reload the block
appears (announced politely, the owner's keyboard focus left where it was), the Confirmations
badge goes up, the Messages badge goes up, and the cancelled block leaves the grid."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import calendar
from app.domain.audit import Actor
from app.domain.members import Member
from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch, pick_day, telegram_url
from tests.browser.test_miniapp_telegram import press_main_button
from tests.conftest import BOT_TOKEN
from tests.factories import create_business, local_start, next_telegram_id
from tests.support.telegram import make_init_data

pytestmark = pytest.mark.browser


async def owner_cookie(
    owner_session: AsyncSession, settings: Settings, account_id: int
) -> dict[str, Any]:
    token, _ = await sessions.issue(
        owner_session, account_id=account_id, kind="dashboard", key=secret_key_for(settings),
        ip="127.0.0.1", user_agent="playwright",
    )  # fmt: skip
    await owner_session.commit()
    return {"name": "__Host-pz_dash", "value": token, "domain": "127.0.0.1", "path": "/",
            "secure": True, "httpOnly": True, "sameSite": "Lax"}  # fmt: skip


async def test_the_open_calendar_follows_the_mini_app(
    browser: Any, live_server: str, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await create_business(owner_session, auto_confirm=False)
    await owner_session.commit()
    assert business.owner_account_id is not None
    cookie = await owner_cookie(owner_session, settings, business.owner_account_id)
    owner_context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                              locale="ru-RU")  # fmt: skip
    client_context = await browser.new_context(viewport={"width": 360, "height": 740},
                                               locale="ru-RU")  # fmt: skip
    try:
        await owner_context.add_cookies([cookie])
        owner = await owner_context.new_page()
        owner_watch = PageWatch(owner, live_server)
        client = await client_context.new_page()

        # the client opens the Mini App; the day they will book is the owner's calendar day
        init_data = make_init_data(BOT_TOKEN, user_id=next_telegram_id(), first_name="Жанар",
                                   language_code="ru")  # fmt: skip
        await client.goto(telegram_url(f"{live_server}/app/b/{business.slug}", init_data))
        await client.wait_for_selector("body[data-signed-in='true']")
        await client.click("a.service >> nth=0")
        href = await client.locator("nav.days a.day").nth(3).get_attribute("href")
        assert href
        day = href.split("date=", 1)[1][:10]

        await owner.goto(f"{live_server}/dashboard/calendar?date={day}")
        await expect(owner.locator("h1")).to_have_text("Календарь")
        await expect(owner.locator(".cal-block")).to_have_count(0)
        await expect(owner.locator("#nav-count-pending")).to_be_hidden()
        await expect(owner.locator("#nav-count-unread")).to_be_hidden()
        # a keyboard user rests on an afternoon slot while the client books the morning
        resting = owner.locator(".cal-slot").last
        resting_id = await resting.get_attribute("id")
        await resting.focus()

        await pick_day(client)
        await client.click("#times .slot >> nth=0")
        await client.wait_for_url("**/app/consent**")
        await press_main_button(client)
        await client.wait_for_url("**/confirm**")
        await press_main_button(client)
        await client.wait_for_selector("[data-haptic='success']")

        # without a reload: the block, the badge, the announcement; the focus stays put
        await owner.bring_to_front()
        await expect(owner.locator(".cal-block")).to_have_count(1)
        await expect(owner.locator(".cal-block")).to_contain_text("Жанар")
        await expect(owner.locator("#nav-count-pending")).to_be_visible()
        await expect(owner.locator("#nav-count-pending")).to_contain_text("ожидают: 1")
        await expect(owner.locator("#calendar-news")).to_contain_text("Новая запись")
        assert await owner.evaluate("document.activeElement && document.activeElement.id") == (
            resting_id
        )

        # the client writes: the Messages badge goes up
        await client.fill("#messages textarea", "Можно на 10 минут позже?")
        await client.click("#messages button[type=submit]")
        await client.wait_for_selector("#messages .from-client")
        await expect(owner.locator("#nav-count-unread")).to_contain_text("непрочитанных: 1")

        # the client cancels: the block leaves the grid, nothing waits any more
        await client.click("button.danger")
        await client.wait_for_selector(".status-cancelled")
        await expect(owner.locator(".cal-block")).to_have_count(0)
        await expect(owner.locator("#nav-count-pending")).to_be_hidden()
        assert owner.url.endswith(f"/dashboard/calendar?date={day}")  # never reloaded away

        # another page keeps its badges current by its own lighter poll
        await owner.goto(f"{live_server}/dashboard/")
        await expect(owner.locator("#nav-count-unread")).to_contain_text("непрочитанных: 1")
        assert await owner.locator("#nav-poll").count() == 1
        assert owner_watch.foreign == []
        assert owner_watch.errors == []
    finally:
        await client_context.close()
        await owner_context.close()


async def test_a_redraw_on_a_phone_keeps_the_place(
    phone_page: tuple[Any, PageWatch],
    live_server: str,
    owner_session: AsyncSession,
    settings: Settings,
    db: Database,
) -> None:
    """On a 360 px phone, scrolled down to the evening: a booking made meanwhile (at the front
    desk's other screen) redraws the grid without moving the page, and the date typed into the
    calendar's form is still there."""
    page, watch = phone_page
    business = await create_business(owner_session)
    await owner_session.commit()
    assert business.owner_account_id is not None
    await page.context.add_cookies(
        [await owner_cookie(owner_session, settings, business.owner_account_id)]
    )
    start = local_start(business, days_ahead=2, at=time(16))
    await page.goto(f"{live_server}/dashboard/calendar?date={start.date().isoformat()}")
    await expect(page.locator(".cal-slot").first).to_be_visible()
    await page.fill("#cal-date", "2030-01-02")  # half-way through choosing another day
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    down = await page.evaluate("window.scrollY")
    assert down > 0

    owner = Member(business.owner_account_id, business.id, "owner")
    await calendar.book_walk_in(db, owner, {
        "service_id": str(business.service_id), "staff_id": str(business.staff_ids[1]),
        "start": start.isoformat(), "client_name": "Сауле", "client_phone": "+7 701 333 22 11",
    }, actor=Actor(account_id=business.owner_account_id, kind="staff"))  # fmt: skip

    await expect(page.locator(".cal-block")).to_contain_text("Сауле")
    assert await page.evaluate("window.scrollY") == down
    await expect(page.locator("#cal-date")).to_have_value("2030-01-02")
    assert await watch.fits_360()
    assert watch.foreign == [] and watch.errors == []
