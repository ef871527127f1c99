"""The built landing site: URL contract, self-contained pages, markup, languages, sitemap."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.landing.conftest import LANGS, SITE_URL, BuiltSite, contract_paths, lang_of
from tests.landing.html_tree import Document, Element, parse_file

SITE_HOST = urlsplit(SITE_URL).netloc
# <link rel> values that only name a URL and never make the browser fetch it.
NON_FETCHING_RELS = frozenset({"alternate", "canonical"})
RESOURCE_ATTRS = ("src", "srcset", "href", "poster", "data", "action", "formaction", "xlink:href")
CSS_URL_RE = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", re.IGNORECASE)
CSS_IMPORT_RE = re.compile(r"@import\s+['\"]([^'\"]+)['\"]", re.IGNORECASE)
SVG_HREF_RE = re.compile(r"(?:xlink:)?href\s*=\s*['\"]([^'\"]+)['\"]")
TEXT_SUFFIXES = {".html", ".xml", ".txt", ".css", ".js", ".svg", ".json"}
MAX_PAGE_BYTES = 300 * 1024
KAZAKH_LETTERS = set("әғқңөұүһі")


def _is_relative(url: str) -> bool:
    parts = urlsplit(url.strip())
    return not parts.scheme and not parts.netloc


def _resources(doc: Document) -> list[tuple[str, str, str]]:
    """(tag, attribute, url) of every URL an element can make the browser fetch."""
    found = []
    for el in doc.find_all():
        if el.tag == "a":
            continue  # ordinary links are navigation, not resources
        if el.tag == "link" and set(el.attrs.get("rel", "").split()) <= NON_FETCHING_RELS:
            continue
        for attr in RESOURCE_ATTRS:
            if attr not in el.attrs:
                continue
            value = el.attrs[attr]
            if attr == "srcset":
                urls = [candidate.split()[0] for candidate in value.split(",") if candidate.strip()]
            else:
                urls = [value]
            found += [(el.tag, attr, url) for url in urls]
        found += [(el.tag, "style", url) for url in CSS_URL_RE.findall(el.attrs.get("style", ""))]
        if el.tag == "style":
            found += [(el.tag, "url()", url) for url in CSS_URL_RE.findall(el.text())]
    return found


def _local_target(site: BuiltSite, page_file: Path, url: str) -> Path:
    """The file a relative URL on `page_file` resolves to inside the built site."""
    path = unquote(urlsplit(url).path)
    target = (page_file.parent / path) if not path.startswith("/") else site.root / path.lstrip("/")
    target = target.resolve()
    return target / "index.html" if target.is_dir() else target


def _site_path_of_absolute(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme == "https", f"{url}: not https"
    assert parts.netloc == SITE_HOST, f"{url}: not on {SITE_HOST}"
    return parts.path


@pytest.fixture(scope="module")
def pages(built_site: BuiltSite) -> dict[str, Document]:
    return {built_site.url_path_of(f): parse_file(f) for f in built_site.html_files()}


def test_every_contract_url_exists(built_site: BuiltSite) -> None:
    missing = [p for p in contract_paths() if not built_site.page_file(p).is_file()]
    assert not missing, f"contract URLs missing from the site: {missing}"
    assert (built_site.root / "sitemap.xml").is_file()


def test_site_has_no_pages_beyond_the_contract(pages: dict[str, Document]) -> None:
    # the browser tests visit the contract pages, so no other page may slip in untested
    assert sorted(pages) == sorted(contract_paths())


def test_no_placeholder_survives(built_site: BuiltSite) -> None:
    leftovers = [
        p.relative_to(built_site.root).as_posix()
        for p in built_site.root.rglob("*")
        if p.suffix in TEXT_SUFFIXES and "${" in p.read_text(encoding="utf-8")
    ]
    assert not leftovers


@pytest.mark.policy("5.5")
@pytest.mark.policy("9.3")
def test_pages_load_nothing_from_other_origins(
    built_site: BuiltSite, pages: dict[str, Document]
) -> None:
    offenders = []
    for path, doc in pages.items():
        assert doc.find("base") is None, f"{path}: <base> would redirect relative URLs"
        assert not doc.find_all("script"), f"{path}: the landing runs no scripts"
        offenders += [
            f"{path}: <{t} {a}={u!r}>" for t, a, u in _resources(doc) if not _is_relative(u)
        ]
        for el in doc.find_all("link"):
            if set(el.attrs.get("rel", "").split()) <= NON_FETCHING_RELS:
                _site_path_of_absolute(el.attrs["href"])  # only pozapisi.kz itself
        for el in doc.find_all("meta"):
            assert el.attrs.get("http-equiv", "").lower() != "refresh", f"{path}: meta refresh"
    for css in built_site.root.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        urls = CSS_URL_RE.findall(text) + CSS_IMPORT_RE.findall(text)
        offenders += [f"{css.name}: url({u})" for u in urls if not _is_relative(u)]
    for svg in built_site.root.rglob("*.svg"):
        offenders += [
            f"{svg.name}: href={u}"
            for u in SVG_HREF_RE.findall(svg.read_text(encoding="utf-8"))
            if not u.startswith("#")
        ]
    assert not offenders, "resources from other origins:\n" + "\n".join(offenders)


def test_resources_and_links_resolve(built_site: BuiltSite, pages: dict[str, Document]) -> None:
    broken = []
    for path, doc in pages.items():
        page_file = built_site.page_file(path)
        ids_here = {el.attrs["id"] for el in doc.find_all() if "id" in el.attrs}
        for tag, attr, url in _resources(doc):
            if not _local_target(built_site, page_file, url).is_file():
                broken.append(f"{path}: <{tag} {attr}={url!r}> not in the site")
        for a in doc.find_all("a"):
            href = a.attrs.get("href", "")
            if not _is_relative(href):
                continue
            parts = urlsplit(href)
            target = _local_target(built_site, page_file, href) if parts.path else page_file
            if not target.is_file():
                broken.append(f"{path}: link {href!r} leads nowhere")
            elif parts.fragment:
                ids = (
                    ids_here
                    if target == page_file
                    else {
                        el.attrs["id"] for el in parse_file(target).find_all() if "id" in el.attrs
                    }
                )
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{path}: link {href!r}: no such anchor")
    assert not broken, "\n".join(broken)


def test_markup_is_well_formed_with_landmarks(pages: dict[str, Document]) -> None:
    for path, doc in pages.items():
        assert doc.doctype and doc.doctype.lower() == "doctype html", path
        assert not doc.errors, f"{path}: " + "; ".join(doc.errors)
        html = doc.find("html")
        assert html is not None
        assert html.attrs.get("lang") == (lang_of(path) or "kk"), f"{path}: wrong <html lang>"
        for landmark in ("header", "main", "footer"):
            top_level = [
                el
                for el in doc.find_all(landmark)
                if not any(a.tag == "main" for a in el.ancestors())
            ]
            assert top_level, f"{path}: no top-level <{landmark}>"
        assert doc.find_all("nav"), f"{path}: no <nav>"
        assert len(doc.find_all("main")) == 1, path
        assert len(doc.find_all("h1")) == 1, f"{path}: one <h1> per page"
        ids = [el.attrs["id"] for el in doc.find_all() if "id" in el.attrs]
        assert len(ids) == len(set(ids)), f"{path}: duplicate ids"
        for nav in doc.find_all("nav"):
            assert nav.attrs.get("aria-label"), f"{path}: every <nav> is labelled"
        assert not [el for el in doc.find_all() if "style" in el.attrs], f"{path}: inline style"
        assert doc.find("title") is not None and doc.find("title").text(), path
        viewport = [el for el in doc.find_all("meta") if el.attrs.get("name") == "viewport"]
        assert viewport and "width=device-width" in viewport[0].attrs["content"], path


def test_images_have_alt_text(pages: dict[str, Document]) -> None:
    for path, doc in pages.items():
        for img in doc.find_all("img"):
            assert "alt" in img.attrs, f"{path}: <img src={img.attrs.get('src')}> without alt"
            if img.attrs["alt"] == "":
                # decorative only next to the words it illustrates (the logo beside "PoZapisi")
                assert img.parent is not None and "PoZapisi" in img.parent.text(), path
            else:
                assert len(img.attrs["alt"]) > 10, f"{path}: alt text says too little"
            assert any(a.tag == "main" for a in img.ancestors()) or img.attrs["alt"] == "", path


def test_theme_words_are_in_the_page_language(pages: dict[str, Document], ui: dict) -> None:
    chrome_keys = (
        "skip_to_content",
        "business",
        "clients",
        "pricing",
        "faq",
        "contacts",
        "privacy",
    )
    for path, doc in pages.items():
        lang = lang_of(path)
        if lang is None:
            continue
        skip = doc.find("a", cls="skip-link")
        assert skip is not None and skip.text() == ui[lang]["skip_to_content"], path
        header_text = doc.find("header").text() + " " + doc.find("footer").text()
        for key in chrome_keys:
            assert ui[lang][key] in header_text + " " + skip.text(), f"{path}: {key} missing"
            for other in LANGS:
                if other != lang and ui[other][key] not in ui[lang][key]:
                    assert ui[other][key] not in header_text, f"{path}: {other} word {key!r}"
        nav_labels = {nav.attrs["aria-label"] for nav in doc.find_all("nav")}
        assert nav_labels == {ui[lang]["nav_main"], ui[lang]["nav_languages"]}, path
        switch = doc.find("nav", cls="lang-switch")
        assert switch is not None
        assert {a.attrs["lang"] for a in switch.find_all("a")} == set(LANGS)
        assert [
            a.attrs["hreflang"] for a in switch.find_all("a") if a.attrs.get("aria-current")
        ] == [lang]


def test_kazakh_pages_are_written_in_kazakh(pages: dict[str, Document]) -> None:
    for path, doc in pages.items():
        if lang_of(path) != "kk":
            continue
        text = doc.find("main").text().lower()
        letters = [c for c in text if c.isalpha()]
        kazakh = sum(c in KAZAKH_LETTERS for c in letters)
        # Kazakh prose uses its own letters in roughly every tenth letter; Russian uses none
        assert kazakh / len(letters) > 0.04, f"{path}: too few Kazakh letters ({kazakh})"


def test_hreflang_alternates_on_every_page(
    built_site: BuiltSite, pages: dict[str, Document]
) -> None:
    groups = {}
    for path, doc in pages.items():
        alternates = {}
        for el in doc.find_all("link"):
            if el.attrs.get("rel") == "alternate" and "hreflang" in el.attrs:
                assert el.attrs["hreflang"] not in alternates, f"{path}: duplicate hreflang"
                alternates[el.attrs["hreflang"]] = _site_path_of_absolute(el.attrs["href"])
        assert set(alternates) == {*LANGS, "x-default"}, f"{path}: {sorted(alternates)}"
        for target in alternates.values():
            assert built_site.page_file(target).is_file(), f"{path}: alternate {target} missing"
        if lang_of(path):
            assert alternates[lang_of(path)] == path, f"{path}: must list itself"
        if path in ("/", "/en/", "/ru/", "/kk/"):
            assert alternates["x-default"] == "/", f"{path}: x-default is the language chooser"
        groups[path] = alternates
    for path, alternates in groups.items():  # reciprocal: each alternate lists this page back
        if lang_of(path):
            for lang in LANGS:
                assert groups[alternates[lang]][lang_of(path)] == path, (path, lang)


def test_canonical_urls(pages: dict[str, Document], versions: dict) -> None:
    for path, doc in pages.items():
        links = [el for el in doc.find_all("link") if el.attrs.get("rel") == "canonical"]
        assert len(links) == 1, path
        canonical = _site_path_of_absolute(links[0].attrs["href"])
        lang = lang_of(path)
        if lang and path == f"/{lang}/privacy/{versions['current']}/":
            assert canonical == f"/{lang}/privacy/", "the current version's canonical is /privacy/"
        else:
            assert canonical == path


def test_sitemap_lists_every_canonical_page(
    built_site: BuiltSite, pages: dict[str, Document]
) -> None:
    ns = {
        "sm": "http://www.sitemaps.org/schemas/sitemap/0.9",
        "xhtml": "http://www.w3.org/1999/xhtml",
    }
    tree = ET.parse(built_site.root / "sitemap.xml")  # noqa: S314 - our own build output
    listed = {}
    for url in tree.getroot().findall("sm:url", ns):
        loc = _site_path_of_absolute(url.findtext("sm:loc", namespaces=ns))
        assert built_site.page_file(loc).is_file(), f"sitemap lists missing {loc}"
        alternates = {
            link.get("hreflang"): _site_path_of_absolute(link.get("href"))
            for link in url.findall("xhtml:link", ns)
        }
        assert set(alternates) == {*LANGS, "x-default"}, loc
        listed[loc] = alternates
    canonicals = set()
    for doc in pages.values():
        for el in doc.find_all("link"):
            if el.attrs.get("rel") == "canonical":
                canonicals.add(_site_path_of_absolute(el.attrs["href"]))
    assert set(listed) == canonicals
    assert {
        "/",
        "/en/",
        "/ru/",
        "/kk/",
        "/en/privacy/",
        "/ru/privacy/",
        "/kk/privacy/",
    } <= canonicals
    robots = (built_site.root / "robots.txt").read_text(encoding="utf-8")
    assert f"Sitemap: {urljoin(SITE_URL, 'sitemap.xml')}" in robots


def test_each_page_weighs_under_300_kb(built_site: BuiltSite, pages: dict[str, Document]) -> None:
    for path, doc in pages.items():
        page_file = built_site.page_file(path)
        files = {page_file} | {
            _local_target(built_site, page_file, u) for _, _, u in _resources(doc)
        }
        total = sum(f.stat().st_size for f in files)
        assert total < MAX_PAGE_BYTES, f"{path}: {total} bytes with its resources"


def test_policy_pages_have_a_print_stylesheet(
    built_site: BuiltSite, pages: dict[str, Document]
) -> None:
    for path, doc in pages.items():
        if "/privacy/" not in path:
            continue
        print_links = [
            el
            for el in doc.find_all("link")
            if el.attrs.get("rel") == "stylesheet" and el.attrs.get("media") == "print"
        ]
        assert len(print_links) == 1, path
        css = _local_target(built_site, built_site.page_file(path), print_links[0].attrs["href"])
        rules = css.read_text(encoding="utf-8")
        assert ".main-nav" in rules and "display: none" in rules
        assert doc.find(cls="policy-text") is not None


def _contact_text(el: Element) -> str:
    return " ".join(a.attrs.get("href", "") for a in el.find_all("a")) + " " + el.text()


def test_home_pages_cover_the_product(pages: dict[str, Document], ui: dict) -> None:
    for lang in LANGS:
        doc = pages[f"/{lang}/"]
        ids = {el.attrs.get("id") for el in doc.find_all()}
        assert {"business", "clients", "pricing", "faq", "contacts"} <= ids, lang
        plans = doc.find_all(cls="plan")
        assert [p.find("h3").text() for p in plans] == ["Free", "Pro", "Business"], lang
        prices = [p.find(cls="price").text() for p in plans]
        assert prices[0].startswith("0\xa0₸") and "4\xa0990\xa0₸" in prices[1], prices
        assert "12\xa0990\xa0₸" in prices[2], prices
        assert 5 <= len(doc.find_all("details")) <= 6, f"{lang}: FAQ of 5–6 questions"
        contacts = doc.find("section", cls="contacts")
        text = _contact_text(contacts)
        assert "mailto:info@pozapisi.kz" in text and "mailto:support@pozapisi.kz" in text
        assert "tel:+77270000000" in text


def test_chooser_is_plain_links(pages: dict[str, Document], ui: dict) -> None:
    doc = pages["/"]
    links = doc.find("main").find_all("a")
    assert {(a.attrs["href"], a.attrs["lang"]) for a in links} == {(f"{c}/", c) for c in LANGS}
    for a in links:
        assert ui[a.attrs["lang"]]["language_name"] in a.text()
