"""Browser fixtures: headless Debian Chromium through Playwright's async API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.async_api import expect

from tests.support.browser import SKIP_REASON, chromium_available, launch_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "miniapp"

# Auto-waiting assertions (expect) give up after 5 s by default; let them wait as long as
# Playwright's other waits do (30 s): the bound only catches a page that never gets there.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not chromium_available():
        pytest.skip(SKIP_REASON)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await launch_chromium(playwright)
        yield instance
        await instance.close()


class PageWatch:
    """Records requests to other origins and console errors while a page is used."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
        self.foreign: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _request(self, request: Any) -> None:
        url = request.url
        if url.startswith(("data:", "blob:", "about:")):
            return
        if not url.startswith(self.origin + "/"):
            self.foreign.append(url)

    async def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    async def fits_360(self) -> bool:
        width = await self.page.evaluate("document.documentElement.scrollWidth")
        return bool(width <= 360)


@pytest.fixture
async def phone_page(browser: Any, live_server: str) -> AsyncIterator[tuple[Any, PageWatch]]:
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="ru-RU")
    page = await context.new_page()
    watch = PageWatch(page, live_server)
    yield page, watch
    await context.close()


def telegram_url(url: str, init_data: str) -> str:
    """Open a page the way Telegram opens a Mini App: signed initData in the URL fragment."""
    return f"{url}#tgWebAppData={quote(init_data, safe='')}&tgWebAppVersion=8.0&tgWebAppPlatform=tdesktop"


async def pick_day(page: Any, days_ahead: int = 3) -> None:
    """Choose a day in the strip, far enough ahead that booking, moving and cancelling are all
    still allowed whatever the time of day the tests run (the cancel deadline is 2 hours)."""
    link = page.locator("nav.days a.day").nth(days_ahead)
    href = await link.get_attribute("href")
    day = href.split("date=", 1)[1][:10]
    await link.click()
    await page.wait_for_selector(f"#times[data-day='{day}'] .slot")
