"""Fixtures for the landing-site tests.

The site is built once per session with `mkdocs build --strict` into a temporary directory, so
the tests never depend on a stale `site/`. Builds that are meant to fail run on a copy of the
landing sources in a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.landing.html_tree import Document, parse_file

REPO = Path(__file__).resolve().parents[2]
LANGS = ("en", "ru", "kk")
SITE_URL = "https://pozapisi.kz/"
VERSIONS_FILE = REPO / "policy" / "versions.yml"
UI_FILE = REPO / "landing_hooks" / "ui.yml"
# Everything the landing build reads; copied for builds on modified sources.
LANDING_SOURCES = ("mkdocs.yml", "landing", "landing_theme", "landing_hooks", "policy")
PLACEHOLDER_DEFAULTS = {
    "CONTACT_EMAIL_INFO": "info@pozapisi.kz",
    "CONTACT_EMAIL_SUPPORT": "support@pozapisi.kz",
    "CONTACT_PHONE_DISPLAY": "+7 727 000 00 00",
}


def load_versions(path: Path = VERSIONS_FILE) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_ui() -> dict:
    return yaml.safe_load(UI_FILE.read_text(encoding="utf-8"))


def contract_paths() -> list[str]:
    """Every URL path the landing promises (DESIGN.md, "Landing")."""
    versions = load_versions()
    paths = ["/"]
    for lang in LANGS:
        paths += [f"/{lang}/", f"/{lang}/privacy/"]
        paths += [f"/{lang}/privacy/{v['version']}/" for v in versions["versions"]]
    return paths


def lang_of(url_path: str) -> str | None:
    head = url_path.strip("/").split("/")[0]
    return head if head in LANGS else None


def run_mkdocs(
    project: Path, site_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of `project` into `site_dir`; placeholder env vars come only from `env`."""
    full_env = {k: v for k, v in os.environ.items() if k not in PLACEHOLDER_DEFAULTS}
    full_env.pop("SOURCE_DATE_EPOCH", None)
    full_env.update(env or {})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(project / "mkdocs.yml"),
            "--site-dir",
            str(site_dir),
        ],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def copy_project(destination: Path) -> Path:
    """A copy of the landing sources that a test may change."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in LANDING_SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source, destination / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, destination / name)
    return destination


def epoch_of(day: dt.date) -> str:
    """SOURCE_DATE_EPOCH for noon of `day` in Kazakhstan (UTC+5)."""
    moment = dt.datetime.combine(day, dt.time(12), dt.timezone(dt.timedelta(hours=5)))
    return str(int(moment.timestamp()))


@dataclass
class BuiltSite:
    root: Path

    def page_file(self, url_path: str) -> Path:
        return self.root / url_path.strip("/") / "index.html"

    def page(self, url_path: str) -> Document:
        return parse_file(self.page_file(url_path))

    def html_files(self) -> list[Path]:
        return sorted(self.root.rglob("*.html"))

    def url_path_of(self, html_file: Path) -> str:
        relative = html_file.parent.relative_to(self.root).as_posix()
        return "/" if relative == "." else f"/{relative}/"


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    site_dir = tmp_path_factory.mktemp("landing") / "site"
    result = run_mkdocs(REPO, site_dir)
    assert result.returncode == 0, (
        f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    )
    return BuiltSite(site_dir)


@pytest.fixture(scope="session")
def versions() -> dict:
    return load_versions()


@pytest.fixture(scope="session")
def ui() -> dict:
    return load_ui()
