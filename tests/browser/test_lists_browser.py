"""The bookings list on a 360 px phone in headless Chromium, in Russian: the owner sees a
walk-in with a Cyrillic name, downloads the CSV with the list's button and reads it back with
the Cyrillic intact (a byte-order mark first, so spreadsheet programs read it as UTF-8); the
page fits the phone, nothing leaves the origin, no script fails."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, create_booking_in
from app.models import Business
from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.browser.conftest import PageWatch
from tests.factories import local_start, new_business


async def test_an_owner_lists_bookings_and_exports_them_on_a_phone(
    phone_page: tuple[Any, PageWatch],
    live_server: str,
    owner_session: AsyncSession,
    settings: Settings,
    tmp_path: Path,
) -> None:
    page, watch = phone_page
    business = await new_business(owner_session)
    assert business.owner_account_id is not None
    row_business = await owner_session.get(Business, business.id)
    assert row_business is not None
    await create_booking_in(
        owner_session, row_business,
        BookingRequest(service_id=business.service_id, staff_id=business.staff_ids[0],
                       start=local_start(business, 2, time(10)), source="walk_in",
                       client_name="Айгерим Сәрсенова", client_phone="+77011234567"),
        account=None, actor=Actor(kind="staff", account_id=business.owner_account_id),
    )  # fmt: skip
    token, _ = await sessions.issue(
        owner_session, account_id=business.owner_account_id, kind="dashboard",
        key=secret_key_for(settings), ip="127.0.0.1", user_agent="playwright",
    )  # fmt: skip
    await owner_session.commit()
    await page.context.add_cookies(
        [{"name": "__Host-pz_dash", "value": token, "domain": "127.0.0.1", "path": "/",
          "secure": True, "httpOnly": True, "sameSite": "Lax"}]
    )  # fmt: skip

    await page.goto(f"{live_server}/dashboard/bookings?lang=ru")
    await expect(page.locator("h1")).to_have_text("Записи")
    await expect(page.locator(".bookings-table")).to_contain_text("Айгерим Сәрсенова")
    assert await watch.fits_360()
    await watch.shot("bookings-list")
    async with page.expect_download() as waiting:
        await page.click("text=Скачать CSV")
    download = await waiting.value
    saved = tmp_path / "bookings.csv"
    await download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text_ = data.decode("utf-8-sig")
    assert "Айгерим Сәрсенова" in text_ and "Клиент" in text_
    assert watch.foreign == [] and watch.errors == []
