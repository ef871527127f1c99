"""The landing build refuses broken sources: placeholders without values, bad policy versions.

Each test builds a copy of the sources (or the real sources with a changed environment) in a
temporary directory; the repository's own files are never touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.landing.conftest import (
    LANGS,
    PLACEHOLDER_DEFAULTS,
    REPO,
    copy_project,
    epoch_of,
    load_versions,
    run_mkdocs,
)
from tests.landing.html_tree import parse_file

NEW_VERSION = "2027-01-15"
NEW_SENTENCE = {
    "en": "We now also answer requests in writing by post.",
    "ru": "Теперь мы также отвечаем на запросы письменно по почте.",
    "kk": "Енді сұрауларға пошта арқылы жазбаша да жауап береміз.",
}


def _output(result) -> str:
    return result.stdout + result.stderr


def _write_versions(project: Path, data: dict) -> None:
    (project / "policy" / "versions.yml").write_text(
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def _add_new_version(project: Path, *, material: bool, published: str, effective: str) -> dict:
    """Publish a changed copy of the current policy as a new version; return the versions data."""
    data = load_versions(project / "policy" / "versions.yml")
    current = next(v for v in data["versions"] if v["version"] == data["current"])
    files = {}
    for lang in LANGS:
        text = (project / current["files"][lang]).read_text(encoding="utf-8")
        files[lang] = f"landing/{lang}/privacy/{effective}.md"
        (project / files[lang]).write_text(
            text + "\n" + NEW_SENTENCE[lang] + "\n", encoding="utf-8"
        )
    data["versions"].insert(
        0,
        {
            "version": effective,
            "published_at": published,
            "effective_at": effective,
            "material": material,
            "purposes": list(current["purposes"]),
            "summary": {lang: f"{NEW_SENTENCE[lang]} ({lang})" for lang in LANGS},
            "files": files,
        },
    )
    _write_versions(project, data)
    return data


@pytest.mark.policy("1.1")
@pytest.mark.policy("12.1")
def test_environment_overrides_contact_placeholders(tmp_path: Path) -> None:
    env = {
        "CONTACT_EMAIL_INFO": "privacy@example.kz",
        "CONTACT_EMAIL_SUPPORT": "help@example.kz",
        "CONTACT_PHONE_DISPLAY": "+7 701 123 45 67",
    }
    site = tmp_path / "site"
    result = run_mkdocs(REPO, site, env)
    assert result.returncode == 0, _output(result)
    for lang in LANGS:
        for path in (f"{lang}/privacy/index.html", f"{lang}/index.html"):
            html = (site / path).read_text(encoding="utf-8")
            for value in env.values():
                assert value in html, f"{path}: {value} missing"
            assert "tel:+77011234567" in html
            for default in PLACEHOLDER_DEFAULTS.values():
                assert default not in html, f"{path}: default {default} still shown"


@pytest.mark.parametrize("name", sorted(PLACEHOLDER_DEFAULTS))
def test_placeholder_without_value_fails_the_build(tmp_path: Path, name: str) -> None:
    result = run_mkdocs(REPO, tmp_path / "site", {name: ""})
    assert result.returncode != 0
    assert f"placeholder ${{{name}}} has no value" in _output(result)
    assert not (tmp_path / "site" / "en" / "privacy" / "index.html").exists()


def test_undeclared_placeholder_fails_the_build(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    page = project / "landing" / "ru" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nФакс: ${CONTACT_FAX}\n", encoding="utf-8")
    result = run_mkdocs(project, tmp_path / "site")
    assert result.returncode != 0
    out = _output(result)
    assert "landing/ru/index.md" in out and "${CONTACT_FAX} has no value" in out


def test_unfinished_placeholder_cannot_reach_the_site(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    page = project / "landing" / "kk" / "index.md"
    page.write_text(
        page.read_text(encoding="utf-8") + "\nПошта: ${CONTACT_EMAIL_INFO\n", encoding="utf-8"
    )
    result = run_mkdocs(project, tmp_path / "site")
    assert result.returncode != 0
    assert "'${' survived into the built site: kk/index.html" in _output(result)


def _material_too_early(project: Path) -> None:
    _add_new_version(project, material=True, published="2026-11-20", effective="2026-12-10")


def _file_missing(project: Path) -> None:
    data = _add_new_version(project, material=False, published="2026-11-01", effective="2027-01-01")
    (project / data["versions"][0]["files"]["kk"]).unlink()


def _unlisted_policy_file(project: Path) -> None:
    source = project / "landing" / "en" / "privacy" / "2026-11-27.md"
    (project / "landing" / "en" / "privacy" / "2026-01-01.md").write_text(source.read_text())


def _handwritten_current_page(project: Path) -> None:
    source = project / "landing" / "en" / "privacy" / "2026-11-27.md"
    (project / "landing" / "en" / "privacy" / "index.md").write_text(source.read_text())


def _current_unknown(project: Path) -> None:
    data = load_versions(project / "policy" / "versions.yml")
    data["current"] = "2020-01-01"
    _write_versions(project, data)


def _version_is_not_its_effective_date(project: Path) -> None:
    data = load_versions(project / "policy" / "versions.yml")
    data["versions"][0]["effective_at"] = "2026-11-26"
    _write_versions(project, data)


def _missing_translation(project: Path) -> None:
    (project / "landing" / "en" / "about.md").write_text("# About\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        pytest.param(_material_too_early, "is a material change", marks=pytest.mark.policy("11.1")),
        (_file_missing, "landing/kk/privacy/2027-01-01.md does not exist"),
        (_unlisted_policy_file, "is not in policy/versions.yml"),
        (_handwritten_current_page, "is generated from policy/versions.yml"),
        (_current_unknown, "'2020-01-01' is not one of the listed versions"),
        (_version_is_not_its_effective_date, "the version id must equal effective_at"),
        (_missing_translation, "landing/en/about.md has no translation in ru, kk"),
    ],
)
def test_broken_sources_fail_the_build(
    tmp_path: Path, breakage: Callable[[Path], None], message: str
) -> None:
    project = copy_project(tmp_path / "project")
    breakage(project)
    result = run_mkdocs(
        project, tmp_path / "site", {"SOURCE_DATE_EPOCH": epoch_of(dt.date(2026, 12, 5))}
    )
    assert result.returncode != 0, "the build should have failed"
    assert message in _output(result)


@pytest.mark.policy("11.1")
@pytest.mark.policy("11.2")
def test_policy_version_lifecycle(tmp_path: Path) -> None:
    """A material change is announced in advance, then replaces the current version."""
    project = copy_project(tmp_path / "project")
    data = _add_new_version(project, material=True, published="2026-12-01", effective=NEW_VERSION)
    old = data["current"]

    # announced: the new text is published at its own URL, the old one stays in force
    site = tmp_path / "announced"
    result = run_mkdocs(project, site, {"SOURCE_DATE_EPOCH": epoch_of(dt.date(2026, 12, 5))})
    assert result.returncode == 0, _output(result)
    for lang in LANGS:
        current = parse_file(site / lang / "privacy" / "index.html")
        assert NEW_SENTENCE[lang] not in current.find(cls="policy-text").text()
        assert len(current.find("ol", cls="version-list").find_all("li")) == 2
        upcoming = parse_file(site / lang / "privacy" / NEW_VERSION / "index.html")
        assert NEW_SENTENCE[lang] in upcoming.find(cls="policy-text").text()
        assert upcoming.find(cls="notice-upcoming") is not None

    # in force, but `current` not moved: the build refuses to show the old text as current
    late = {"SOURCE_DATE_EPOCH": epoch_of(dt.date(2027, 1, 20))}
    result = run_mkdocs(project, tmp_path / "stale", late)
    assert result.returncode != 0
    assert f"set current: '{NEW_VERSION}'" in _output(result)

    # current moved: /privacy/ shows the new text, the old one is archived at its date
    data["current"] = NEW_VERSION
    _write_versions(project, data)
    site = tmp_path / "in-force"
    result = run_mkdocs(project, site, late)
    assert result.returncode == 0, _output(result)
    for lang in LANGS:
        current = parse_file(site / lang / "privacy" / "index.html")
        assert NEW_SENTENCE[lang] in current.find(cls="policy-text").text()
        archived = parse_file(site / lang / "privacy" / old / "index.html")
        notice = archived.find(cls="notice-archived")
        assert notice is not None and notice.find("a").attrs["href"] == "../"
    sitemap = (site / "sitemap.xml").read_text(encoding="utf-8")
    assert f"https://pozapisi.kz/en/privacy/{old}/" in sitemap


def test_current_version_must_be_in_force(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    data = _add_new_version(project, material=True, published="2026-12-01", effective=NEW_VERSION)
    data["current"] = NEW_VERSION
    _write_versions(project, data)
    result = run_mkdocs(
        project, tmp_path / "site", {"SOURCE_DATE_EPOCH": epoch_of(dt.date(2026, 12, 5))}
    )
    assert result.returncode != 0
    assert f"current {NEW_VERSION} is not in force yet" in _output(result)
