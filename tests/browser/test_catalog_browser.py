"""The catalog in headless Chromium on a 360 px phone: an owner adds a service with a master's
own price, moves it with the keyboard (htmx swaps the list and focus stays on the button),
adds a master with a photo; no request leaves the origin and no script error (the CSP forbids
inline scripts)."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from PIL import Image
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch
from tests.factories import new_business


async def _signed_in_owner(
    page: Any, live_server: str, owner_session: AsyncSession, settings: Settings
) -> Any:
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
    return business


def _png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (120, 90), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


async def test_an_owner_builds_the_catalog_on_a_phone(
    phone_page: tuple[Any, PageWatch],
    live_server: str,
    owner_session: AsyncSession,
    settings: Settings,
) -> None:
    page, watch = phone_page
    business = await _signed_in_owner(page, live_server, owner_session, settings)
    first = business.staff_ids[0]

    await page.goto(f"{live_server}/dashboard/services?setup=1")
    await expect(page.locator("h1")).to_have_text("Услуги")
    await page.click("text=Добавить услугу")
    await page.wait_for_url("**/dashboard/services/new?setup=1")
    # the own-price fields appear only once the master is ticked
    await page.uncheck(f"input[name=staff_{first}]")
    await expect(page.locator(f"#f-price_{first}")).to_be_hidden()
    await page.check(f"input[name=staff_{first}]")
    await expect(page.locator(f"#f-price_{first}")).to_be_visible()
    await page.fill("#f-name_ru", "Маникюр")
    await page.fill("#f-duration_min", "0")
    await page.fill("#f-price", "8 000")
    await page.fill(f"#f-price_{first}", "10 000")
    await page.click("button.primary")
    # refused beside the field, in Russian, what was typed kept
    await expect(page.locator("#e-duration_min")).to_have_text(
        "Укажите длительность от 5 до 720 минут."
    )
    await expect(page.locator("#f-name_ru")).to_have_value("Маникюр")
    await watch.shot("catalog-service-refused")
    assert await watch.fits_360()
    await page.fill("#f-duration_min", "90")
    await page.click("button.primary")
    await page.wait_for_url("**/dashboard/services?setup=1")
    rows = page.locator("#service-list ol > li")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(2)).to_contain_text("Маникюр")
    await expect(rows.nth(2)).to_contain_text("10 000")
    await watch.shot("catalog-services")
    assert await watch.fits_360()

    # keyboard: the new service goes up one place; htmx swaps the list and keeps the focus
    added_id = (await rows.nth(2).get_attribute("id") or "").removeprefix("service-")
    await page.focus(f"#up-service-{added_id}")
    await page.keyboard.press("Enter")
    await expect(rows.nth(1)).to_contain_text("Маникюр")
    await expect(page.locator(f"#up-service-{added_id}")).to_be_focused()
    assert page.url.endswith("/dashboard/services?setup=1")  # swapped in place, no navigation

    await page.goto(f"{live_server}/dashboard/masters/new")
    await page.fill("#f-name", "Айгерим")
    await page.fill("#f-title_ru", "Топ-стилист")
    await page.check(f"input[name=service_{business.short_service_id}]")
    await page.set_input_files(
        "#f-photo", files=[{"name": "me.png", "mimeType": "image/png", "buffer": _png()}]
    )
    await page.click("button.primary")
    await page.wait_for_url("**/dashboard/masters")
    photo = page.locator("#master-list img.master-photo")
    await expect(photo).to_have_count(1)
    assert await photo.evaluate("img => img.complete && img.naturalWidth > 0")
    await watch.shot("catalog-masters")
    assert await watch.fits_360()
    assert watch.foreign == []
    assert watch.errors == []
