"""Headless Chromium for browser tests: Debian's `chromium` driven by Playwright.

Playwright cannot download its own browsers here, so tests use the system package
(`make browser` installs it). Works with both Playwright APIs:

    with sync_playwright() as p:                 async with async_playwright() as p:
        browser = launch_chromium(p)                 browser = await launch_chromium(p)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM_PATH = Path("/usr/bin/chromium")

# Without the background-networking flags Chromium keeps calling Google services, which would
# show up as requests to other origins.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)

SKIP_REASON = (
    f"browser tests need Chromium at {CHROMIUM_PATH}: run `make browser` as root "
    "(or `sudo apt-get install chromium`)"
)


def chromium_available() -> bool:
    """True when the system Chromium is installed and executable."""
    return CHROMIUM_PATH.is_file() and os.access(CHROMIUM_PATH, os.X_OK)


def launch_chromium(playwright: Any, **options: Any) -> Any:
    """Launch headless system Chromium; await the result with the async API."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM_PATH),
        headless=True,
        args=list(CHROMIUM_ARGS),
        **options,
    )
