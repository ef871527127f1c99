"""Sign-up and sign-in in headless Chromium on a 360 px phone: a refusal shows beside its field
in Russian with what was typed kept, the account opens the dashboard, signing out and in again
works from the keyboard alone; no request leaves the origin and no script error (the CSP
forbids inline scripts)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from playwright.async_api import expect

from tests.browser.conftest import PageWatch


async def test_sign_up_then_sign_in_on_a_phone(
    phone_page: tuple[Any, PageWatch], live_server: str
) -> None:
    page, watch = phone_page
    email = f"owner-{uuid4().hex[:10]}@example.com"
    await page.goto(f"{live_server}/dashboard/signup")
    await page.fill("#f-business_name", "Студия Ақ Бота")
    await page.fill("#f-email", email)
    await page.fill("#f-password", "qwerty123")
    await page.click("button.primary")
    await expect(page.locator("#e-password")).to_contain_text("слишком распространён")
    await expect(page.locator("#f-email")).to_have_value(email)
    await expect(page.locator("#f-business_name")).to_have_value("Студия Ақ Бота")
    assert await watch.fits_360()
    await watch.shot("accounts-signup-refused")

    await page.fill("#f-password", "tulip-river-4417")
    await page.click("button.primary")
    await page.wait_for_url(f"{live_server}/dashboard/**")
    await expect(page.locator(".business-name")).to_have_text("Студия Ақ Бота")
    await expect(page.locator(".notice")).to_contain_text(email)  # confirm your e-mail
    assert await watch.fits_360()

    await page.click("form.signout button")
    await page.wait_for_url(f"{live_server}/dashboard/signin")
    # the keyboard alone: type, Tab to the next field, Enter sends the form
    await page.focus("#f-email")
    await page.keyboard.type(email)
    await page.keyboard.press("Tab")
    await page.keyboard.type("not-the-password")
    await page.keyboard.press("Enter")
    await expect(page.locator(".form-error")).to_have_text("Неверный e-mail или пароль.")
    await page.fill("#f-email", email)
    await page.focus("#f-password")
    await page.keyboard.type("tulip-river-4417")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{live_server}/dashboard")
    await page.goto(f"{live_server}/dashboard/security")
    await expect(page.locator("h1")).to_have_text("Безопасность аккаунта")
    assert await watch.fits_360()
    await watch.shot("accounts-security")
    assert watch.foreign == []
    assert watch.errors == []
