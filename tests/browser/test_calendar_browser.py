"""The calendar in headless Chromium on a 360 px phone, in Russian: an owner moves a day
ahead and back with htmx (the address follows), opens an empty slot, books a walk-in there and
sees it on the calendar; the page fits the phone (the grid scrolls inside its box), nothing
leaves the origin and no script fails."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch
from tests.factories import local_start, new_business


async def test_an_owner_books_a_walk_in_from_the_calendar(
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
    start = local_start(business, days_ahead=2, at=time(10))
    day = start.date()

    await page.goto(f"{live_server}/dashboard/calendar?date={day.isoformat()}")
    await expect(page.locator("h1")).to_have_text("Календарь")
    assert await watch.fits_360()
    # the next day through htmx: the grid changes and the address follows
    await page.click("a[rel=next]")
    following = (day + timedelta(days=1)).isoformat()
    await page.wait_for_url(f"**/dashboard/calendar?date={following}*")
    await expect(page.locator(".calendar-date")).to_have_text(following)
    await page.click("a[rel=prev]")
    await expect(page.locator(".calendar-date")).to_have_text(day.isoformat())
    await watch.shot("calendar-day")

    # an empty slot opens the form, with the master and the time filled in
    await page.get_by_label(f"Новая запись Master 0 {day.isoformat()} 10:00").click()
    await page.wait_for_url("**/dashboard/bookings/new?*")
    await expect(page.locator("#f-start")).to_have_value(start.isoformat())
    await page.select_option("#f-service_id", str(business.service_id))
    await page.fill("#f-client_name", "Динара")
    await page.fill("#f-client_phone", "8 701 222 33 44")
    assert await watch.fits_360()
    await page.click("button:has-text('Записать')")
    await page.wait_for_url(f"**/dashboard/calendar?date={day.isoformat()}*")
    await expect(page.locator(".cal-block")).to_contain_text("Динара")
    await expect(page.locator(".cal-block")).to_contain_text("10:00–11:00")
    await watch.shot("calendar-booked")
    assert await watch.fits_360()
    assert watch.foreign == []
    assert watch.errors == []
