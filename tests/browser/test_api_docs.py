"""The API documentation at /schema works under the same CSP as every page: Swagger UI comes
from our origin (vendored), shows the API, and the page asks nothing of any other origin."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PageWatch

pytestmark = pytest.mark.browser

BOOKINGS = "/api/v1/businesses/{slug}/bookings"


@pytest.mark.policy("5.5")
async def test_api_docs_show_the_booking_endpoint_from_our_origin_only(
    browser: Any, live_server: str
) -> None:
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    watch = PageWatch(page, live_server)
    console_errors: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error":
            console_errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    try:
        response = await page.goto(f"{live_server}/schema")
        assert response is not None and response.status == 200
        assert "script-src 'self';" in response.headers["content-security-policy"]

        operation = page.locator(f'.opblock-post:has([data-path="{BOOKINGS}"])')
        await expect(operation).to_have_count(1)
        await operation.locator(".opblock-summary").click()
        # the request body's schema is drawn from the document, not just the path's name
        await expect(operation.locator(".opblock-body")).to_contain_text("service_id")
        await page.wait_for_load_state("networkidle")
        await watch.shot("api-docs")

        assert watch.foreign == []
        assert console_errors == [], "a CSP violation or a script error on the page"
        assert watch.errors == []

        # both listeners do hear a page reaching out: an image from another origin is
        # reported as a request and refused on the console by the CSP
        async with page.expect_console_message(lambda m: m.type == "error"):
            await page.evaluate(
                "() => { const img = new Image(); img.src = 'https://cdn.example.net/x.png';"
                " document.body.append(img); }"
            )
        assert "Content Security Policy" in console_errors[-1]
        assert watch.foreign == ["https://cdn.example.net/x.png"]
    finally:
        await context.close()
