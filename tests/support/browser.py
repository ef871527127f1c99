"""Headless Chromium for browser tests: the system's Chromium driven by Playwright.

Playwright cannot download its own browsers here, so tests use the system package (`make
browser` installs Debian's), found on ``PATH`` as ``chromium`` (Debian) or ``chromium-browser``
(Ubuntu, Alpine, Fedora). Works with both Playwright APIs:

    with sync_playwright() as p:                 async with async_playwright() as p:
        browser = launch_chromium(p)                 browser = await launch_chromium(p)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")  # where Debian puts it, should PATH leave it out

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
    "browser tests need Chromium on PATH (`chromium` or `chromium-browser`): run `make browser` "
    "as root (or `sudo apt-get install chromium`)"
)


def chromium_executable() -> str | None:
    """The system Chromium's path, or None when none is installed."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    if DEBIAN_CHROMIUM.is_file() and os.access(DEBIAN_CHROMIUM, os.X_OK):
        return str(DEBIAN_CHROMIUM)
    return None


def chromium_available() -> bool:
    """True when a system Chromium is installed and executable."""
    return chromium_executable() is not None


def launch_chromium(playwright: Any, **options: Any) -> Any:
    """Launch headless system Chromium; await the result with the async API."""
    executable = chromium_executable()
    if executable is None:
        raise RuntimeError(SKIP_REASON)
    return playwright.chromium.launch(
        executable_path=executable,
        headless=True,
        args=list(CHROMIUM_ARGS),
        **options,
    )
