"""Fill ru/kk catalogs from a reviewed translation table, then report anything left untranslated.

    .venv/bin/python tools/translate.py tools/translations.toml

The .po files stay the source of truth; this only writes entries that are empty.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from babel.messages.pofile import read_po, write_po

LOCALE_DIR = Path(__file__).resolve().parent.parent / "app" / "locale"


def main(table_path: str) -> int:
    table = tomllib.loads(Path(table_path).read_text(encoding="utf-8"))
    missing = 0
    for lang in ("ru", "kk"):
        po_path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=lang)
        for message in catalog:
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            entry = table.get(key)
            if entry and lang in entry:
                value = entry[lang]
                if isinstance(message.id, tuple):
                    message.string = tuple(value) if isinstance(value, list) else (value, value)
                elif not message.string:
                    message.string = value
                message.flags.discard("fuzzy")
            if not message.string or (
                isinstance(message.string, tuple) and not all(message.string)
            ):
                missing += 1
                print(f"{lang}: untranslated: {key!r}")
        with po_path.open("wb") as f:
            write_po(f, catalog, width=100, omit_header=False)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
