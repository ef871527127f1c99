"""Every user-facing string is translated: ru and kk complete, nothing fuzzy, placeholders kept."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "app" / "locale"
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def _catalog(lang: str):  # type: ignore[no-untyped-def]
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", ["ru", "kk"])
def test_catalog_is_complete_and_not_fuzzy(lang: str) -> None:
    problems = []
    for message in _catalog(lang):
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            problems.append(f"untranslated: {message.id!r}")
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        source = message.id if isinstance(message.id, str) else message.id[0]
        for text in strings:
            if text and set(PLACEHOLDER.findall(source)) != set(PLACEHOLDER.findall(text)):
                problems.append(f"placeholders differ: {message.id!r}")
    assert problems == []


def test_catalogs_cover_every_marked_string(tmp_path: Path) -> None:
    """Extract from the sources now: a new string not merged into the catalogs fails here."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg",
         "-k", "N_", "-k", "gettext", "-k", "ngettext:1,2", "-k", "pgettext:1c,2",
         "--no-location", "-o", str(pot), "."],
        cwd=ROOT, check=True,
    )  # fmt: skip
    with pot.open("rb") as f:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    assert extracted, "extraction found no strings: babel.cfg is broken"
    for lang in ("ru", "kk", "en"):
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog(lang) if m.id}
        missing = sorted(extracted - known)
        assert missing == [], (
            f"{lang} catalog lacks {missing[:5]} — run `make messages` and translate"
        )


def test_kazakh_is_written_in_kazakh_cyrillic() -> None:
    """A Kazakh catalog that is Russian with a different label would pass the checks above."""
    letters = set("әғқңөұүһі")
    texts = " ".join(
        m.string
        for m in _catalog("kk")
        if m.id and isinstance(m.string, str) and len(m.string) > 25
    )
    assert texts, "no Kazakh translations found"
    assert letters & set(texts.lower()), "no Kazakh-specific letters in the kk catalog"
