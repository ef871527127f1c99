"""Analytics on a 360 px phone in headless Chromium, in Kazakh: the owner sees the charts (SVG
images with a title) and the tables holding their numbers, reaches the "previous month" preset
with the keyboard alone and switches to it without a reload; the page fits the phone, nothing
leaves the origin, no script fails."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.i18n import money, use_locale
from app.models import Account
from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch
from tests.factories import new_business

PREVIOUS_MONTH = "Өткен ай"


@pytest.mark.policy("3.3")  # no third-party analytics: nothing leaves the origin
async def test_an_owner_reads_analytics_and_switches_period_by_keyboard(
    phone_page: tuple[Any, PageWatch],
    live_server: str,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    page, watch = phone_page
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    zone = ZoneInfo(business.timezone)
    today = datetime.now(zone).date()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    client_id = (await owner_session.execute(text(
        "INSERT INTO clients (business_id, name) VALUES (:b, 'Әйгерім') RETURNING id"),
        {"b": business.id})).scalar_one()  # fmt: skip
    # a completed visit yesterday and one on the previous month's 10th
    for day in (today - timedelta(days=1), date(last_month_end.year, last_month_end.month, 10)):
        start = datetime.combine(day, time(10), tzinfo=zone)
        await owner_session.execute(text(
            "INSERT INTO bookings (business_id, public_code, client_id, staff_id, service_id, "
            "period, blocked_period, status, source, service_name, duration_min, price_tiyn) "
            "VALUES (:b, :code, :c, :s, :v, tstzrange(:t1, :t2), tstzrange(:t1, :t2), "
            "'completed', 'walk_in', CAST('{\"ru\": \"Стрижка\"}' AS jsonb), 60, 700000)"),
            {"b": business.id, "code": uuid4().hex[:12].upper(), "c": client_id,
             "s": business.staff_ids[0], "v": business.service_id, "t1": start,
             "t2": start + timedelta(hours=1)})  # fmt: skip
    owner = await owner_session.get(Account, business.owner_account_id)
    assert owner is not None
    owner.locale = "kk"
    token, _ = await sessions.issue(
        owner_session, account_id=business.owner_account_id, kind="dashboard",
        key=secret_key_for(settings), ip="127.0.0.1", user_agent="playwright",
    )  # fmt: skip
    await owner_session.commit()
    await page.context.add_cookies(
        [{"name": "__Host-pz_dash", "value": token, "domain": "127.0.0.1", "path": "/",
          "secure": True, "httpOnly": True, "sameSite": "Lax"}]
    )  # fmt: skip

    await page.goto(f"{live_server}/dashboard/analytics")
    await expect(page.locator("h1")).to_have_text("Талдау")
    charts = page.locator("svg[role=img]")
    await expect(charts).to_have_count(4)
    await expect(page.locator("#chart-bookings-t")).to_have_text("Күндер бойынша жазылулар")
    await expect(page.locator("#table-days")).to_be_visible()
    await expect(page.locator("#table-masters")).to_contain_text("Master 0")
    assert await watch.fits_360()
    await watch.shot("analytics-kk")

    # Tab to the "previous month" preset (keyboard only), then Enter
    for _ in range(80):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "document.activeElement && document.activeElement.textContent"
        )
        if focused and focused.strip() == PREVIOUS_MONTH:
            break
    else:
        raise AssertionError("the previous month preset is not reachable with Tab")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{live_server}/dashboard/analytics?preset=previous_month")
    current = page.locator(".analytics-presets a[aria-current]")
    await expect(current).to_have_text(PREVIOUS_MONTH)
    await expect(page.locator("#a-from")).to_have_value(last_month_end.replace(day=1).isoformat())
    await expect(page.locator("#a-to")).to_have_value(last_month_end.isoformat())
    await expect(page.locator("h1")).to_have_text("Талдау")  # swapped in place, still Kazakh
    totals = page.locator("#table-days tfoot td")
    await expect(totals.nth(0)).to_have_text("1")  # last month's one visit
    with use_locale("kk"):
        await expect(totals.nth(1)).to_have_text(money(700_000))
    assert await watch.fits_360()
    assert watch.foreign == [] and watch.errors == []
