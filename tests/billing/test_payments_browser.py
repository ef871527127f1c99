"""Issue 16 end to end in headless Chromium, in Russian: the owner of a business on the free
plan chooses Pro on the billing page, pays the invoice on the payment page (the development
provider, which sends the provider's signed notifications to the app's callback), comes back
to the invoice marked paid, and opens its PDF — with the Kazakh letters of the seller's
address in its text. The subscription is Pro afterwards."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.factories import new_business
from tests.support.browser import SKIP_REASON, chromium_available, launch_chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    if not chromium_available():
        pytest.skip(SKIP_REASON)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await launch_chromium(playwright)
        yield instance
        await instance.close()


async def test_an_owner_upgrades_from_free_to_pro_and_pays(
    browser: Any, live_server: str, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, masters=1)
    assert business.owner_account_id is not None
    await owner_session.execute(text(
        "UPDATE subscriptions SET plan_id = (SELECT id FROM plans WHERE code = 'free'), "
        "status = 'active', current_period_start = current_date, current_period_end = NULL "
        "WHERE business_id = :b"), {"b": business.id})  # fmt: skip
    token, _ = await sessions.issue(
        owner_session, account_id=business.owner_account_id, kind="dashboard",
        key=secret_key_for(settings), ip="127.0.0.1", user_agent="playwright",
    )  # fmt: skip
    await owner_session.commit()
    context = await browser.new_context(viewport={"width": 1024, "height": 900}, locale="ru-RU")
    await context.add_cookies(
        [{"name": "__Host-pz_dash", "value": token, "domain": "127.0.0.1", "path": "/",
          "secure": True, "httpOnly": True, "sameSite": "Lax"}]
    )  # fmt: skip
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(f"{live_server}/dashboard/billing?lang=ru")
        await page.locator("form.plan:has(input[name=plan][value=pro]) button[type=submit]").click()

        # the invoice for Pro, then the payment page
        await expect(page.locator("h1")).to_contain_text("Счёт на оплату №")
        number = (await page.locator("h1").inner_text()).split("№", 1)[1].split()[0]
        await page.locator("button", has_text="Оплатить 4").click()
        await expect(page.locator(".dev-banner")).to_be_visible()
        await expect(page.locator("h1")).to_contain_text(number)
        await page.locator(".dev-actions button.primary").click()

        # back on the invoice, paid
        await expect(page.locator(".invoice-status strong")).to_have_text("Оплачен")
        await expect(page.locator("h1")).to_contain_text(number)
        assert "/pay" not in await page.content()  # nothing left to pay

        pdf_href = await page.locator("a.invoice-pdf[hreflang=kk]").get_attribute("href")
        assert pdf_href is not None
        response = await page.request.get(f"{live_server}{pdf_href}")
        assert response.status == 200
        assert response.headers["content-type"] == "application/pdf"
        reader = PdfReader(io.BytesIO(await response.body()))
        extracted = "".join(p.extract_text() for p in reader.pages)
        assert number in extracted and "Қазақстан" in extracted and "Төленді" in extracted
        assert errors == []
    finally:
        await context.close()

    await owner_session.commit()
    plan = await owner_session.scalar(text(
        "SELECT p.code FROM subscriptions s JOIN plans p ON p.id = s.plan_id "
        "WHERE s.business_id = :b"), {"b": business.id})  # fmt: skip
    assert plan == "pro"
    paid = await owner_session.scalar(text(
        "SELECT count(*) FROM payments WHERE business_id = :b AND status = 'completed' "
        "AND flag IS NULL"), {"b": business.id})  # fmt: skip
    assert paid == 1
