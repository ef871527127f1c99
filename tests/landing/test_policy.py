"""The privacy policy on the landing: versions file, URLs, text structure and the clauses it shows."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.landing.conftest import LANGS, REPO, BuiltSite
from tests.landing.html_tree import Document, Element

LAUNCH_DAY = dt.date(2026, 11, 27)
KAZAKHSTAN_TZ = dt.timezone(dt.timedelta(hours=5))
VERSION_KEYS = {
    "version",
    "published_at",
    "effective_at",
    "material",
    "purposes",
    "summary",
    "files",
}
KNOWN_PURPOSES = {"booking", "notifications", "billing", "support", "security"}
# The twelve sections of shared/seed/privacy-policy.txt, in order.
SEED_SECTIONS = [
    "Who we are",
    "What data we process",
    "Legal basis",
    "Why we process it",
    "Whom we share data with",
    "Where data is stored",
    "How long we keep it",
    "Your rights",
    "Cookies and similar technologies",
    "Security",
    "Policy changes",
    "Contacts",
]
MINISTRY = {
    "en": "Ministry of Digital Development",
    "ru": "Министерство цифрового развития",
    "kk": "Цифрлық даму министрлігі",
}
HEADING_RE = re.compile(r"^(\d+)\. (.+)$")


def _date(value: object) -> dt.date:
    assert isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value), value
    return dt.date.fromisoformat(value)


def _policy_text(doc: Document) -> Element:
    text = doc.find(cls="policy-text")
    assert text is not None
    return text


def _sections(doc: Document) -> dict[int, str]:
    """Section number -> the section's text (heading and everything up to the next heading)."""
    sections: dict[int, list[str]] = {}
    number = None
    for child in _policy_text(doc).children:
        if isinstance(child, Element) and child.tag == "h2":
            match = HEADING_RE.match(child.text())
            assert match, f"unnumbered section heading {child.text()!r}"
            number = int(match[1])
            sections[number] = []
        if number is not None:
            sections[number].append(child if isinstance(child, str) else child.text())
            if isinstance(child, Element):
                sections[number] += [a.attrs.get("href", "") for a in child.find_all("a")]
    return {n: " ".join(parts) for n, parts in sections.items()}


def _policy_pages(versions: dict) -> list[str]:
    return [
        f"/{lang}/privacy/{suffix}"
        for lang in LANGS
        for suffix in ["", *(f"{v['version']}/" for v in versions["versions"])]
    ]


def test_versions_file_is_consistent(versions: dict) -> None:
    assert set(versions) == {"current", "versions"}
    ids = [v["version"] for v in versions["versions"]]
    assert len(ids) == len(set(ids)), "a version is listed twice"
    assert versions["current"] in ids, "current names no listed version"
    for v in versions["versions"]:
        assert set(v) == VERSION_KEYS, v["version"]
        published, effective = _date(v["published_at"]), _date(v["effective_at"])
        assert v["version"] == v["effective_at"], "the version id is its effective date"
        assert published <= effective
        assert isinstance(v["material"], bool)
        assert v["purposes"] and set(v["purposes"]) <= KNOWN_PURPOSES
        assert set(v["summary"]) == set(LANGS) and all(s.strip() for s in v["summary"].values())
        assert set(v["files"]) == set(LANGS)
        for lang, path in v["files"].items():
            assert path == f"landing/{lang}/privacy/{v['version']}.md"
            assert (REPO / path).is_file(), f"{path} does not exist"
    current = next(v for v in versions["versions"] if v["version"] == versions["current"])
    later_in_force = [
        v["version"]
        for v in versions["versions"]
        if _date(current["effective_at"])
        < _date(v["effective_at"])
        <= dt.datetime.now(KAZAKHSTAN_TZ).date()
    ]
    assert not later_in_force, "a later version is already in force: move current"


@pytest.mark.policy("11.1")
def test_material_changes_take_effect_30_days_after_publication(versions: dict) -> None:
    for v in versions["versions"]:
        if v["material"]:
            notice = _date(v["effective_at"]) - _date(v["published_at"])
            assert notice >= dt.timedelta(days=30), f"{v['version']}: only {notice.days} days"


def test_first_version_is_in_force_at_launch(versions: dict) -> None:
    first = min(_date(v["effective_at"]) for v in versions["versions"])
    assert first <= LAUNCH_DAY


@pytest.mark.policy("11.2")
def test_current_version_at_privacy_url_and_every_version_archived(
    built_site: BuiltSite, versions: dict
) -> None:
    for lang in LANGS:
        current = built_site.page(f"/{lang}/privacy/")
        dated = built_site.page(f"/{lang}/privacy/{versions['current']}/")
        assert _policy_text(current).text() == _policy_text(dated).text()
        for v in versions["versions"]:
            doc = built_site.page(f"/{lang}/privacy/{v['version']}/")
            # the page shows this version's own file: its headings, in order
            source = (REPO / v["files"][lang]).read_text(encoding="utf-8")
            headings = [line[3:].strip() for line in source.splitlines() if line.startswith("## ")]
            assert [h.text() for h in _policy_text(doc).find_all("h2")] == headings
            aside = doc.find("aside", cls="policy-versions")
            assert aside is not None
            assert v["summary"][lang] in aside.text(), "what changed"
            hrefs = [a.attrs["href"] for a in aside.find_all("a")]
            assert len(hrefs) == len(versions["versions"]), "the version list names every version"
            assert doc.find("time").attrs["datetime"] == v["effective_at"]


def test_sections_numbered_1_to_12_in_every_language(built_site: BuiltSite, versions: dict) -> None:
    for path in _policy_pages(versions):
        numbers = [
            int(HEADING_RE.match(h.text())[1])
            for h in _policy_text(built_site.page(path)).find_all("h2")
        ]
        assert numbers == list(range(1, 13)), f"{path}: sections {numbers}"


def test_english_policy_has_the_seed_sections(built_site: BuiltSite) -> None:
    titles = [
        HEADING_RE.match(h.text())[2]
        for h in _policy_text(built_site.page("/en/privacy/")).find_all("h2")
    ]
    assert titles == SEED_SECTIONS


@pytest.mark.policy("8.5")
def test_policy_says_how_to_complain_to_the_ministry(built_site: BuiltSite, versions: dict) -> None:
    for path in _policy_pages(versions):
        rights = _sections(built_site.page(path))[8]
        lang = path.split("/")[1]
        assert MINISTRY[lang] in rights, path
        # how: the state's online channels for appeals, linked
        assert "https://eotinish.kz" in rights and "https://egov.kz" in rights, path


@pytest.mark.policy("8.6")
def test_requests_go_to_support_with_a_10_day_answer(built_site: BuiltSite, versions: dict) -> None:
    for path in _policy_pages(versions):
        rights = _sections(built_site.page(path))[8]
        assert "mailto:support@pozapisi.kz" in rights, path
        assert re.search(r"\b10\b", rights), path


@pytest.mark.policy("1.1")
@pytest.mark.policy("12.1")
def test_operator_contacts_in_the_policy(built_site: BuiltSite, versions: dict) -> None:
    for path in _policy_pages(versions):
        sections = _sections(built_site.page(path))
        assert "mailto:info@pozapisi.kz" in sections[1], path
        assert "mailto:info@pozapisi.kz" in sections[12], path
        assert "+7 727 000 00 00" in sections[12], path


@pytest.mark.policy("9.1")
def test_policy_promises_a_cookie_free_landing(built_site: BuiltSite, versions: dict) -> None:
    promise = {"en": "does not use cookies", "ru": "не использует cookies", "kk": "пайдаланбайды"}
    for path in _policy_pages(versions):
        lang = path.split("/")[1]
        assert promise[lang] in _sections(built_site.page(path))[9], path
