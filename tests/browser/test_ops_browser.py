"""The operator console in headless Chromium (policy 6.3): the password, then the code from the
authenticator app, the queue, and a person's data opened only after the reason is typed; no
request leaves the origin and no script error."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.browser.conftest import PageWatch
from tests.ops.conftest import enrol

pytestmark = pytest.mark.policy("6.3")


async def test_an_operator_signs_in_with_the_second_factor_and_reads_with_a_reason(
    phone_page: tuple[Any, PageWatch], live_server: str, owner_session: AsyncSession,
    settings: Settings,
) -> None:  # fmt: skip
    page, watch = phone_page
    login = await enrol(owner_session, settings, "privacy")
    email = f"client-{uuid4().hex[:8]}@example.com"
    await owner_session.execute(
        text("INSERT INTO accounts (name, email, locale) VALUES ('Dana Client', :e, 'ru')"),
        {"e": email},
    )
    await owner_session.commit()

    await page.goto(f"{live_server}/ops/")
    await page.wait_for_url(f"{live_server}/ops/signin")
    await page.fill("#email", login.email)
    await page.fill("#password", login.password)
    await page.click("button[type=submit]")
    await expect(page.locator("#code")).to_be_visible()  # no session yet: the second factor
    await page.fill("#code", login.totp.now())
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live_server}/ops")
    await expect(page.locator("h1")).to_have_text("Data-subject requests")

    await page.click("text=Find a person")
    await page.fill("#query", email)
    await page.fill("#reason", "no")  # too short: refused, nothing shown
    await page.evaluate("document.querySelector('#reason').removeAttribute('minlength')")
    await page.click("main button[type=submit]")
    await expect(page.locator("#reason-error")).to_be_visible()
    await expect(page.locator("dl.person")).to_have_count(0)
    await page.fill("#reason", "Answering her access request of 5 December")
    await page.click("main button[type=submit]")
    await expect(page.locator("dl.person")).to_contain_text("Dana Client")
    await watch.shot("ops-person")
    assert watch.foreign == []
    assert watch.errors == []
