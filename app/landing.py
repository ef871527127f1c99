"""The static landing in development: the app serves the MkDocs build itself.

In production the landing lives apart (``LANDING_BASE_URL``) and the app mounts none of it. Under
``pozapisi run`` in development the CLI builds ``site/`` when it is missing or older than its
sources, and ``create_app`` mounts it at ``/`` — so every landing and privacy-policy link the app
makes (``/{lang}/privacy/``, …) answers. The app's own home is ``/app``; where no landing is
served, ``/`` redirects there.

Landing responses never set a cookie and carry the landing's own CSP: no script at all.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from litestar import get
from litestar.datastructures import CacheControlHeader
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send

from app.security.headers import TELEGRAM_FRAME_ANCESTORS
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# what `mkdocs build` reads: a change to any file under these makes the build stale
SOURCES = ("mkdocs.yml", "landing", "landing_theme", "landing_hooks", "policy")
BUILT_MARKER = "index.html"  # the language chooser, rewritten by every build
# The pages run no script and load nothing from other origins (landing_theme/base.html says the
# same in a <meta>). The Mini App opens the privacy policy inside Telegram's frame.
LANDING_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    f"form-action 'none'; frame-ancestors 'self' {TELEGRAM_FRAME_ANCESTORS}"
)


class LandingUnavailable(RuntimeError):
    """The landing cannot be built here (no MkDocs, no sources, or the build failed)."""


def serves_landing(settings: Settings) -> bool:
    """Only development: production serves the landing apart, tests build their own apps."""
    return settings.environment == "development"


def site_dir(settings: Settings) -> Path:
    return settings.landing_site_dir or ROOT / "site"


def _newest_mtime(root: Path) -> float:
    newest = 0.0
    for name in SOURCES:
        path = root / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = [d for d in subfolders if d != "__pycache__" and not d.startswith(".")]
            newest = max(newest, Path(folder).stat().st_mtime)  # a removed file changes it
            for file in files:
                if not file.startswith(".") and not file.endswith((".pyc", "~")):
                    newest = max(newest, (Path(folder) / file).stat().st_mtime)
    return newest


def is_stale(out: Path, *, root: Path = ROOT) -> bool:
    """True when ``out`` has no build, or any source file is newer than the build."""
    marker = out / BUILT_MARKER
    if not marker.is_file():
        return True
    return _newest_mtime(root) > marker.stat().st_mtime


def build(out: Path, *, root: Path = ROOT) -> None:
    """``mkdocs build --strict`` of ``root/mkdocs.yml`` into ``out`` (as ``make landing`` does)."""
    if importlib.util.find_spec("mkdocs") is None:
        raise LandingUnavailable("MkDocs is not installed (a dev dependency: run `make install`)")
    config = root / "mkdocs.yml"
    if not config.is_file():
        raise LandingUnavailable(f"no landing sources here ({config} is missing)")
    result = subprocess.run(  # noqa: S603 - this interpreter running MkDocs on our config
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--config-file", str(config), "--site-dir", str(out.resolve())],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-20:])
        raise LandingUnavailable(f"`mkdocs build` failed:\n{tail}")


def prepare(
    settings: Settings, *, root: Path = ROOT, echo: Callable[[str], None] = print
) -> Path | None:
    """Make the landing servable for ``pozapisi run``: (re)build it when missing or stale.

    Returns the folder to serve, or None when there is nothing to serve (``echo`` says why)."""
    if not serves_landing(settings):
        return None
    out = site_dir(settings)
    if not is_stale(out, root=root):
        return out
    try:
        echo(f"building the landing into {out} (mkdocs)")
        build(out, root=root)
    except LandingUnavailable as exc:
        if (out / BUILT_MARKER).is_file():
            echo(f"the landing was not rebuilt: {exc}\nserving the previous build from {out}")
            return out
        echo(f"the landing is not served: {exc}")
        return None
    return out


def _landing_headers(app: ASGIApp) -> ASGIApp:
    """No cookie on a landing page, whoever queued one; the landing's CSP instead of the app's."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_without_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                scope.get("state", {}).pop("set_cookies", None)  # see app.security.headers
                message["headers"] = [
                    *(
                        (name, value)
                        for name, value in message.get("headers", [])
                        if name.lower() not in (b"set-cookie", b"content-security-policy")
                    ),
                    (b"content-security-policy", LANDING_CSP.encode()),
                ]
            await send(message)

        await app(scope, receive, send_without_cookies)

    return middleware


@get("/", include_in_schema=False, name="root")
async def root_to_app_home() -> Redirect:
    return Redirect("/app")


def routes(settings: Settings) -> list[ControllerRouterHandler]:
    """What answers ``/``: the built landing in development, else a redirect to the app home."""
    out = site_dir(settings)
    if not serves_landing(settings) or not (out / BUILT_MARKER).is_file():
        return [root_to_app_home]
    return [
        create_static_files_router(
            path="/",
            directories=[out],
            html_mode=True,
            name="landing",
            middleware=[_landing_headers],
            cache_control=CacheControlHeader(no_cache=True),  # rebuilt while you work on it
        )
    ]
