"""Every dashboard form carries the session's CSRF token without script: the ``csrf()`` macro
reads ``csrf_token`` from the page's context, which a Jinja ``import`` passes only ``with
context``; imported without it the field is empty, and the form works only where htmx adds the
header (a reply from the inbox failed so)."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import DictLoader, Environment

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"
FORMS = TEMPLATES / "dashboard" / "_forms.html"
IMPORT = re.compile(
    r"{%-?\s*(?:from\s+\"dashboard/_forms.html\"\s+import|import\s+\"dashboard/_forms.html\")[^%]*%}"
)


def test_the_macro_needs_the_context_it_is_imported_with() -> None:
    env = Environment(autoescape=True, loader=DictLoader({
        "dashboard/_forms.html": FORMS.read_text(encoding="utf-8"),
        "with.html": '{% from "dashboard/_forms.html" import csrf with context %}{{ csrf() }}',
        "without.html": '{% from "dashboard/_forms.html" import csrf %}{{ csrf() }}',
    }))  # fmt: skip
    assert 'value="t0k3n"' in env.get_template("with.html").render(csrf_token="t0k3n")
    assert 'value=""' in env.get_template("without.html").render(csrf_token="t0k3n")


def test_every_template_imports_the_form_helpers_with_context() -> None:
    imports = [
        (path.relative_to(TEMPLATES).as_posix(), found)
        for path in TEMPLATES.rglob("*.html")
        for found in IMPORT.findall(path.read_text(encoding="utf-8"))
    ]
    assert imports, "no template imports the form helpers: the pattern is out of date"
    without = sorted(
        name
        for name, line in imports
        if re.search(r"\bcsrf\b|^{%-?\s*import", line) and "with context" not in line
    )
    assert without == []
