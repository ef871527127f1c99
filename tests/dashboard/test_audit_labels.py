"""What the audit log says was done, in words (issue 14, the owner's audit view): every action the
code base writes has a label in ``app.domain.audit.ACTIONS``, translated in ru and kk, and the
audit view and a booking's history show the label, not the code.

The actions are read from the code itself, not listed here: every ``audit.record(action=…)`` of
app/ and workers/ (a literal, an f-string, or a name followed to the values it is given) and
every ``audit_append(…)`` of the database functions in app/db/sql. A new action without a label
fails here; ``audit.record`` refuses one at run time too."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from datetime import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import audit
from app.i18n import gettext, use_locale
from app.settings import Settings
from tests.dashboard.test_pending import client_books
from tests.factories import local_start, new_business
from tests.support.dashboard import sign_in_as

ROOT = Path(__file__).resolve().parents[2]
ACTION = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")


class Unfollowed(Exception):
    """An action expression this test cannot follow to its values."""


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _function_of(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return node
    return None


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def values_of(node: ast.AST, module: ast.Module, parents: dict[ast.AST, ast.AST]) -> set[str]:
    """Every string ``node`` can be: constants, conditional expressions, f-strings of those, and
    names assigned in their function or passed to it as a parameter by the module's calls."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return values_of(node.body, module, parents) | values_of(node.orelse, module, parents)
    if isinstance(node, ast.JoinedStr):
        parts = [
            values_of(part.value if isinstance(part, ast.FormattedValue) else part, module, parents)
            for part in node.values
        ]
        return {"".join(combination) for combination in itertools.product(*parts)}
    if isinstance(node, ast.Name):
        function = _function_of(node, parents)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            assigned = [
                a.value for a in ast.walk(function) if isinstance(a, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)
            ]  # fmt: skip
            if assigned:
                return set().union(*(values_of(value, module, parents) for value in assigned))
            names = [a.arg for a in function.args.posonlyargs + function.args.args]
            keyword_only = [a.arg for a in function.args.kwonlyargs]
            if node.id in names or node.id in keyword_only:
                found: set[str] = set()
                for call in ast.walk(module):
                    if not isinstance(call, ast.Call) or _called_name(call) != function.name:
                        continue
                    given = [k.value for k in call.keywords if k.arg == node.id]
                    if not given and node.id in names and names.index(node.id) < len(call.args):
                        given = [call.args[names.index(node.id)]]
                    for value in given:
                        found |= values_of(value, module, parents)
                if found:
                    return found
    raise Unfollowed(ast.unparse(node))


def python_actions() -> Iterator[tuple[str, str]]:
    """(where, action) for every ``audit.record(…, action=…)`` in app/ and workers/."""
    for path in sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]):
        if "migrations" in path.parts:
            continue
        module = ast.parse(path.read_text(encoding="utf-8"))
        parents = _parents(module)
        for call in ast.walk(module):
            if not (
                isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "record" and isinstance(call.func.value, ast.Name)
                and call.func.value.id == "audit"
            ):  # fmt: skip
                continue
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            action = next((k.value for k in call.keywords if k.arg == "action"), None)
            assert action is not None, f"{where}: audit.record without action="
            try:
                for value in values_of(action, module, parents):
                    yield where, value
            except Unfollowed as unfollowed:
                raise AssertionError(
                    f"{where}: the action {unfollowed} cannot be followed to its values; "
                    "write it as a literal (or a name given literals)"
                ) from None


def sql_actions() -> Iterator[tuple[str, str]]:
    """(where, action) for every ``audit_append(…)`` call in the database functions."""
    for path in sorted((ROOT / "app" / "db" / "sql").rglob("*.sql")):
        source = path.read_text(encoding="utf-8")
        for match in re.finditer(r"(?<!FUNCTION )\baudit_append\s*\(", source):
            call = source[match.end() : source.index(";", match.end())]
            literals = [s for s in re.findall(r"'([^']*)'", call) if ACTION.match(s)]
            where = f"{path.relative_to(ROOT)}:{source.count(chr(10), 0, match.start()) + 1}"
            if "REVOKE" in source[max(0, match.start() - 40) : match.start()] or (
                "GRANT" in source[max(0, match.start() - 40) : match.start()]
            ):
                continue  # the function's grants name it, they do not call it
            assert len(literals) == 1, f"{where}: expected one action literal, found {literals}"
            yield where, literals[0]


def test_every_action_the_code_writes_has_a_label() -> None:
    written = [*python_actions(), *sql_actions()]
    codes = {action for _where, action in written}
    # the reading can fail: a literal, a database function's, an f-string's, a parameter's
    assert {"bookings.export", "booking.create", "service.archive", "staff.restore",
            "booking.no_show", "booking.cancelled", "business.settings"} <= codes  # fmt: skip
    assert all(ACTION.match(code) for code in codes), codes
    unlabelled = sorted({f"{action} ({where})" for where, action in written
                         if action not in audit.ACTIONS})  # fmt: skip
    assert unlabelled == [], "add a label to app.domain.audit.ACTIONS for each"


@pytest.mark.parametrize("locale", ["ru", "kk"])
def test_every_label_is_translated(locale: str) -> None:
    with use_locale(locale):
        shown = {code: gettext(label) for code, label in audit.ACTIONS.items()}
    untranslated = [code for code, text in shown.items() if text == audit.ACTIONS[code]]
    assert untranslated == [], (
        f"translate these actions' labels in {locale} (a table in tools/translations/, applied "
        "as the working rules say)"
    )
    # Cyrillic words (Kazakh letters included); the only Latin is the name of a file format
    latin = {code: text for code, text in shown.items() if re.search(r"[A-Za-z]", text)}
    assert set(latin) <= {"bookings.export"}, latin
    assert len(set(shown.values())) == len(shown)  # no two actions read the same


def test_an_old_action_shows_its_code_and_a_new_one_needs_a_label() -> None:
    assert audit.action_label("booking.renamed_long_ago") == "booking.renamed_long_ago"
    with use_locale("ru"):
        assert audit.action_label("bookings.export") == "Записи выгружены в CSV"


async def test_record_refuses_an_action_without_a_label(owner_session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="no label"):
        await audit.record(
            owner_session, actor=audit.SYSTEM, action="booking.unlabelled",
            entity="booking", entity_id=None, business_id=None,
        )  # fmt: skip
    await owner_session.rollback()


async def test_the_audit_view_and_the_booking_history_say_what_was_done(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    business = await new_business(owner_session, auto_confirm=False)
    booking_id = await client_books(client, business, days_ahead=2, at=time(11))
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id)
    confirmed = await client.post(
        f"/dashboard/bookings/{booking_id}/confirm", data={"csrf_token": csrf}
    )
    assert confirmed.status_code in (200, 303)
    day = local_start(business, 2).date().isoformat()
    exported = await client.get("/dashboard/bookings.csv", params={"from": day, "to": day})
    assert exported.status_code == 200

    expected = {
        "ru": ["Записи выгружены в CSV", "Запись подтверждена", "Запись создана"],
        "kk": ["Жазылулар CSV файлына экспортталды", "Жазылу расталды", "Жазылу жасалды"],
        "en": ["Bookings exported to CSV", "Booking confirmed", "Booking made"],
    }
    for lang, labels in expected.items():
        shown = await client.get("/dashboard/audit", params={"lang": lang})
        assert shown.status_code == 200
        assert all(label in shown.text for label in labels), (lang, labels)
        assert "<code>bookings.export</code>" not in shown.text  # no raw code as the text
        assert 'title="bookings.export"' in shown.text  # kept for whoever needs the code
        history = await client.get(f"/dashboard/bookings/{booking_id}", params={"lang": lang})
        assert history.status_code == 200
        assert labels[1] in history.text and labels[2] in history.text, lang
