"""Schedules in headless Chromium on a 360 px phone, in Russian: an owner in the set-up wizard
gives a master hours with a lunch break, copies Monday to the other weekdays, is refused an
overlap beside the day, closes the business for a day and switches public holidays off; the
pages fit the phone, nothing leaves the origin and no script fails."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch
from tests.factories import new_business


async def test_an_owner_sets_the_hours_on_a_phone(
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
    first = business.staff_ids[0]

    await page.goto(f"{live_server}/dashboard/schedules?setup=1")
    await expect(page.locator("h1")).to_have_text("Часы работы")
    assert await watch.fits_360()
    await page.click(f"a[href='/dashboard/schedules/{first}?setup=1']")
    await page.wait_for_url(f"**/dashboard/schedules/{first}?setup=1")
    # Monday: 10:00–14:00 and 15:00–20:00 (an hour for lunch); an overlap on Tuesday first
    await page.fill("#f-w0-0-start", "10:00")
    await page.fill("#f-w0-0-end", "14:00")
    await page.fill("#f-w0-1-start", "15:00")
    await page.fill("#f-w0-1-end", "20:00")
    await page.fill("#f-w1-1-start", "12:00")
    await page.fill("#f-w1-1-end", "15:00")
    await page.click("text=Сохранить часы")
    await expect(page.locator("#e-w1")).to_have_text("Интервалы одного дня не должны пересекаться.")
    await expect(page.locator("#f-w0-1-start")).to_have_value("15:00")  # what was typed stays
    await watch.shot("schedules-overlap-refused")
    assert await watch.fits_360()
    # copy Monday to Tuesday–Friday (the overlap goes with Tuesday's old hours)
    await page.click("text=Скопировать понедельник на вторник–пятницу")
    await page.wait_for_url(f"**/dashboard/schedules/{first}?setup=1")
    for weekday in range(5):
        await expect(page.locator(f"#f-w{weekday}-0-start")).to_have_value("10:00")
        await expect(page.locator(f"#f-w{weekday}-1-end")).to_have_value("20:00")
    await expect(page.locator("#f-w5-0-start")).to_have_value("09:00")  # Saturday untouched
    # keyboard: the save button is reachable and works with Enter
    await page.focus("text=Сохранить часы")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/dashboard/schedules?setup=1")
    await expect(page.locator(f"#week-{first}")).to_be_visible()
    await watch.shot("schedules-week")
    await page.goto(f"{live_server}/dashboard/schedules/{first}")
    await page.click("text=Другой график на одну дату")
    await watch.shot("schedules-master")
    assert await watch.fits_360()
    await page.goto(f"{live_server}/dashboard/schedules?setup=1")
    assert await watch.fits_360()

    # the days-off step: close one day, then work on public holidays
    await page.goto(f"{live_server}/dashboard/closed-days?setup=1")
    await expect(page.locator("h1")).to_have_text("Выходные и праздники")
    day = datetime.now(ZoneInfo(business.timezone)).date() + timedelta(days=14)
    await page.fill("#f-on_date", day.isoformat())
    await page.fill("#f-name", "Инвентаризация")
    await page.click("text=Закрыть этот день")
    await page.wait_for_url("**/dashboard/closed-days?setup=1")
    await expect(page.locator("text=Инвентаризация")).to_be_visible()
    await expect(page.locator("table.public-days")).to_contain_text("День Независимости")
    await watch.shot("schedules-closed-days")
    assert await watch.fits_360()
    # switched with htmx: the section is swapped in place (the page is not reloaded)
    await page.evaluate("window.stillHere = true")
    await page.click("text=Не работать в праздники")  # test businesses open on holidays
    await expect(page.locator("#public button")).to_have_text("Работать в праздники")
    await expect(page.locator("#public table")).to_contain_text("закрыто")
    # and the closed day removed in place
    await page.click("#closed-list button")
    await expect(page.locator("#closed-list")).not_to_contain_text("Инвентаризация")
    assert page.url.endswith("/dashboard/closed-days?setup=1")
    assert await page.evaluate("window.stillHere === true")
    observe = await owner_session.scalar(
        text("SELECT observe_public_holidays FROM businesses WHERE id = :b"), {"b": business.id}
    )
    await owner_session.commit()
    assert observe is True
    assert watch.foreign == []
    assert watch.errors == []
