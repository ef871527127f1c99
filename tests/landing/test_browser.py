"""Every landing page in real headless Chromium: no cookies, no other origins, fits 360 px.

The site is served from 127.0.0.1 by a plain static server, so any request that leaves that
origin is a third-party request. Screenshots land in test-artifacts/landing/.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.landing.conftest import LANGS, REPO, BuiltSite, contract_paths
from tests.support.browser import SKIP_REASON, chromium_available, launch_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason=SKIP_REASON),
]

ARTIFACTS = REPO / "test-artifacts" / "landing"
VIEWPORT = {"width": 360, "height": 740}
SCREENSHOTS = {f"/{lang}/": f"{lang}-home" for lang in LANGS} | {
    f"/{lang}/privacy/": f"{lang}-privacy" for lang in LANGS
}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def origin(built_site: BuiltSite) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(built_site.root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.mark.policy("9.1")
@pytest.mark.policy("9.3")
@pytest.mark.policy("5.5")
@pytest.mark.parametrize("path", contract_paths())
def test_page_sets_no_cookie_and_stays_on_its_origin(browser, origin: str, path: str) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    requests: list[str] = []
    failures: list[str] = []
    console_errors: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    context.on("requestfailed", lambda request: failures.append(request.url))
    page = context.new_page()
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    try:
        response = page.goto(origin + path, wait_until="networkidle")
        assert response is not None and response.status == 200

        assert context.cookies() == [], "the landing sets no cookies"
        assert page.evaluate("document.cookie") == ""
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0
        foreign = [url for url in requests if _origin_of(url) != origin]
        assert not foreign, f"requests to other origins: {foreign}"
        assert len(requests) >= 2, "the page and at least its stylesheet were requested"
        assert not failures, f"failed requests: {failures}"
        assert not console_errors, f"console errors (CSP?): {console_errors}"

        # readable at 360 px: nothing wider than the screen, text not shrunk
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
        font_px = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert font_px >= 16
        # the stylesheet really applied (a missing CSS file would leave the default 8 px margin)
        assert page.evaluate("getComputedStyle(document.body).marginTop") == "0px"

        if path in SCREENSHOTS:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{SCREENSHOTS[path]}.png"), full_page=True)
    finally:
        context.close()


def test_request_watch_sees_other_origins(browser, origin: str) -> None:
    """The detector above is not blind: a foreign image on a page without CSP is seen."""
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    try:
        page.set_content('<img src="http://198.51.100.7/pixel.png" alt="">')
        page.wait_for_timeout(200)
        assert any(_origin_of(url) != origin for url in requests)
    finally:
        context.close()


@pytest.mark.policy("5.5")
def test_page_policy_blocks_injected_third_party_content(browser, origin: str) -> None:
    """Even if a foreign image or script got into a page, its CSP would block the request."""
    context = browser.new_context()
    requests: list[str] = []
    blocked: dict[str, str] = {}
    context.on("request", lambda request: requests.append(request.url))
    context.on(
        "requestfailed", lambda request: blocked.update({request.url: request.failure or ""})
    )
    page = context.new_page()
    try:
        page.goto(origin + "/en/privacy/", wait_until="networkidle")
        page.evaluate(
            """() => {
                const img = document.createElement('img');
                img.src = 'http://198.51.100.7/pixel.png';
                document.body.append(img);
                const script = document.createElement('script');
                script.src = 'http://198.51.100.7/tracker.js';
                document.body.append(script);
            }"""
        )
        page.wait_for_timeout(300)
        foreign = [url for url in requests if _origin_of(url) != origin]
        assert len(foreign) == 2, "Chromium reports the attempts"
        for url in foreign:
            assert "csp" in blocked.get(url, "").lower(), f"{url} was not blocked by the CSP"
    finally:
        context.close()
