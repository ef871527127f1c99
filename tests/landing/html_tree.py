"""A tiny DOM over html.parser: enough to query the landing's built pages.

Strict on purpose: an end tag that does not close the innermost open element, or an element left
open at the end, is recorded in `Document.errors` (the landing's HTML is generated and must be
well-formed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

_SPACES = re.compile(r"[ \t\n\r\f]+")
VOID_ELEMENTS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    children: list[Element | str] = field(default_factory=list)
    line: int = 0

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterator[Element]:
        """This element and all its descendants, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [
            el
            for el in self.iter()
            if el is not self
            and (tag is None or el.tag == tag)
            and (cls is None or cls in el.classes)
        ]

    def find(self, tag: str | None = None, cls: str | None = None) -> Element | None:
        found = self.find_all(tag, cls)
        return found[0] if found else None

    def ancestors(self) -> Iterator[Element]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def text(self) -> str:
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else child.text())
        # collapse ASCII whitespace only: no-break spaces (4\xa0990\xa0₸) are content
        return _SPACES.sub(" ", "".join(parts)).strip(" ")


@dataclass
class Document:
    root: Element
    doctype: str | None
    errors: list[str]

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return self.root.find_all(tag, cls)

    def find(self, tag: str | None = None, cls: str | None = None) -> Element | None:
        return self.root.find(tag, cls)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.errors: list[str] = []
        self.doctype: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self.stack[-1]
        element = Element(tag, {k: v or "" for k, v in attrs}, parent, line=self.getpos()[0])
        parent.children.append(element)
        if tag not in VOID_ELEMENTS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            self.errors.append(f"line {self.getpos()[0]}: end tag for void element <{tag}>")
            return
        top = self.stack[-1]
        if top.tag != tag:
            self.errors.append(
                f"line {self.getpos()[0]}: </{tag}> closes <{top.tag}> opened on line {top.line}"
            )
            # recover: close up to the matching element if there is one
            for depth in range(len(self.stack) - 1, 0, -1):
                if self.stack[depth].tag == tag:
                    del self.stack[depth:]
                    break
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Document:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    errors = list(builder.errors)
    for open_element in builder.stack[1:]:
        errors.append(f"<{open_element.tag}> opened on line {open_element.line} is never closed")
    return Document(builder.root, builder.doctype, errors)


def parse_file(path: Path) -> Document:
    return parse_html(path.read_text(encoding="utf-8"))
