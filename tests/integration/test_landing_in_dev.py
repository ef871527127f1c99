"""In development the app serves the static landing itself (app/landing.py): every landing URL of
the contract and every link the app makes to the privacy policy answers 200, and sets no cookie.
Production (and the test environment) mount none of it. Every build here goes to a temporary
folder: the repository's site/ is never touched."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app import landing
from app.db.bootstrap import DatabaseUrls
from app.db.policy_versions import read_versions
from app.main import create_app
from app.settings import LOCALES
from tests.conftest import BOT_TOKEN, ROOT, make_settings
from tests.factories import next_telegram_id
from tests.support.telegram import make_init_data

ORIGIN = "https://testserver.local"  # the in-process client's origin (Secure cookies need https)


def contract_paths() -> list[str]:
    """DESIGN.md's landing URLs: chooser, homes, current policy, each version, sitemap."""
    dates = [str(version.effective_at) for version in read_versions()]
    return [
        "/",
        *(f"/{lang}/" for lang in LOCALES),
        *(f"/{lang}/privacy/" for lang in LOCALES),
        *(f"/{lang}/privacy/{day}/" for lang in LOCALES for day in dates),
        "/sitemap.xml",
    ]


def assert_landing_response(response: httpx.Response) -> None:
    path = response.request.url.path
    assert response.status_code == 200, (path, response.status_code, response.text[:200])
    assert "set-cookie" not in response.headers, f"{path} set a cookie"
    assert response.headers["content-security-policy"] == landing.LANDING_CSP, path
    assert "script" not in landing.LANDING_CSP and "'none'" in landing.LANDING_CSP


def dev_settings(site: Path, **overrides: str) -> Any:
    # LANDING_BASE_URL unset (empty): the development default, which must be the app itself
    return make_settings(
        POZAPISI_ENV="development",
        LANDING_SITE_DIR=str(site),
        LANDING_BASE_URL="",
        PUBLIC_BASE_URL=ORIGIN,
        **overrides,
    )


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing") / "site"
    landing.build(out)
    return out


@pytest.fixture
async def dev_client(database: DatabaseUrls, built_site: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = dev_settings(built_site)
    assert settings.landing_base_url == ORIGIN, "in development the landing is the app itself"
    app = create_app(settings, app_url=database.app)
    async with AsyncTestClient(app, base_url=ORIGIN) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, lang: str) -> None:
    client.cookies.clear()
    init = make_init_data(BOT_TOKEN, user_id=next_telegram_id(), language_code=lang)
    response = await client.post("/auth/telegram", json={"init_data": init})
    assert response.status_code == 200, response.text
    assert client.cookies, "signing in sets the session cookie"


async def test_every_landing_url_answers_200_and_sets_no_cookie(
    dev_client: httpx.AsyncClient,
) -> None:
    await sign_in(dev_client, "ru")  # a signed-in visitor: the landing still sets no cookie
    for path in contract_paths():
        response = await dev_client.get(path)
        assert_landing_response(response)
        kind = "xml" if path.endswith(".xml") else "html"
        assert kind in response.headers["content-type"], (path, response.headers["content-type"])
    # the sitemap lists the same site: each of its pages is served here too
    sitemap = (await dev_client.get("/sitemap.xml")).text
    locs = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    assert f"/{LOCALES[0]}/privacy/" in {urlsplit(loc).path for loc in locs}, locs
    for loc in locs:
        assert_landing_response(await dev_client.get(urlsplit(loc).path))
    # the pages' own stylesheet and images come from the same build
    chooser = (await dev_client.get("/")).text
    for asset in re.findall(r'(?:href|src)="(assets/[^"]+)"', chooser):
        assert_landing_response(await dev_client.get(f"/{asset}"))


@pytest.mark.parametrize("lang", LOCALES)
async def test_the_apps_privacy_links_resolve_to_the_policy(
    dev_client: httpx.AsyncClient, lang: str
) -> None:
    await sign_in(dev_client, lang)
    headers = {"Accept-Language": lang}
    consent = await dev_client.get(f"/app/consent?lang={lang}", headers=headers)
    assert consent.status_code == 200, consent.text[:300]
    links = set(re.findall(r'href="([^"]*/privacy/)"', consent.text))
    api_url = (await dev_client.get(f"/api/v1/policy?lang={lang}", headers=headers)).json()["url"]
    links.add(api_url)
    assert f"{ORIGIN}/{lang}/privacy/" in links, links
    for link in links:
        assert link.startswith(f"{ORIGIN}/"), f"{link} does not point at the app itself"
        page = await dev_client.get(urlsplit(link).path)
        assert_landing_response(page)
        assert f'<html lang="{lang}"' in page.text


async def test_the_app_home_lives_at_app(dev_client: httpx.AsyncClient) -> None:
    home = await dev_client.get("/app", follow_redirects=True)
    assert home.status_code == 200
    assert home.url.path.startswith("/app")


@pytest.mark.parametrize("environment", ["production", "test"])
async def test_outside_development_no_landing_is_mounted(
    database: DatabaseUrls, built_site: Path, environment: str
) -> None:
    settings = make_settings(POZAPISI_ENV=environment, LANDING_SITE_DIR=str(built_site))
    app = create_app(settings, app_url=database.app)
    async with AsyncTestClient(app, base_url=ORIGIN) as client:
        for path in contract_paths()[1:]:
            assert (await client.get(path)).status_code == 404, path
        root = await client.get("/", follow_redirects=False)
        assert root.status_code in (302, 303, 307) and root.headers["location"] == "/app"


async def test_a_development_app_with_no_build_sends_root_to_the_app(
    database: DatabaseUrls, tmp_path: Path
) -> None:
    app = create_app(dev_settings(tmp_path / "never-built"), app_url=database.app)
    async with AsyncTestClient(app, base_url=ORIGIN) as client:
        root = await client.get("/", follow_redirects=False)
        assert root.status_code in (302, 303, 307) and root.headers["location"] == "/app"
        assert (await client.get("/ru/privacy/")).status_code == 404


def _copy_sources(into: Path) -> Path:
    """The landing's sources (what `mkdocs build` reads), copied with their times."""
    into.mkdir()
    for name in landing.SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, into / name)
    return into


def test_a_missing_or_stale_build_is_rebuilt(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "src")
    out = tmp_path / "site"
    settings = dev_settings(out)
    said: list[str] = []
    marker = out / landing.BUILT_MARKER

    # missing: built
    assert landing.is_stale(out, root=root)
    assert landing.prepare(settings, root=root, echo=said.append) == out
    assert marker.is_file() and not landing.is_stale(out, root=root)
    assert said and "building the landing" in said[-1]

    # fresh: left alone
    said.clear()
    built_at = marker.stat().st_mtime_ns
    assert landing.prepare(settings, root=root, echo=said.append) == out
    assert said == [] and marker.stat().st_mtime_ns == built_at

    # a source edited after the build: stale, rebuilt, and the edit is on the page
    page = root / "landing" / "en" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n\nFreshly-rebuilt-marker.\n")
    assert landing.is_stale(out, root=root)
    assert landing.prepare(settings, root=root, echo=said.append) == out
    assert "Freshly-rebuilt-marker" in (out / "en" / "index.html").read_text(encoding="utf-8")
    assert not landing.is_stale(out, root=root)

    # a file removed from the sources changes its folder: stale as well
    (root / "landing_hooks" / "spare.txt").write_text("x")
    assert landing.prepare(settings, root=root, echo=said.append) == out
    (root / "landing_hooks" / "spare.txt").unlink()
    assert landing.is_stale(out, root=root)

    # the whole build deleted: rebuilt
    shutil.rmtree(out)
    assert landing.prepare(settings, root=root, echo=said.append) == out
    assert marker.is_file()


def test_without_mkdocs_the_landing_is_skipped_with_a_clear_message(tmp_path: Path) -> None:
    # a Python where `import mkdocs` fails, as in an install without the dev dependencies
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["mkdocs"] = None
        from app import landing
        from app.settings import load_settings
        settings = load_settings({{"POZAPISI_ENV": "development",
                                  "LANDING_SITE_DIR": {str(tmp_path / "site")!r}}})
        print("served:", landing.prepare(settings))
        print("routes:", [getattr(r, "name", None) for r in landing.routes(settings)])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "MkDocs is not installed" in result.stdout
    assert "the landing is not served" in result.stdout
    assert "served: None" in result.stdout
    assert "routes: ['root']" in result.stdout
    assert "Traceback" not in result.stderr
