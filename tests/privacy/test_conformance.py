"""docs/policy-conformance.md is the proof that every promise of the privacy policy holds: each
clause of policy/POLICY-CLAUSES.md has tests marked for it, or a deployment check where code
cannot see (where a server stands). These tests keep it a proof: a clause with neither fails, a
marker naming no clause (a typo) fails, and a document older than the markers fails.

The markers are collected by tools/conformance.py in a process of its own (pytest's collection
of the whole suite, nothing run, no database), once for the module.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance", ROOT / "tools" / "conformance.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


conformance = _load_tool()


@pytest.fixture(scope="module")
def markers() -> dict[str, list[str]]:
    """Every marked test of the suite → its clause ids, as `make conformance` sees them."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "conformance.py"), "--markers"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"collecting the tests failed:\n{done.stderr[-3000:]}"
    found: dict[str, list[str]] = json.loads(done.stdout)
    return found


def test_every_clause_has_a_test_or_a_deployment_check(markers: dict[str, list[str]]) -> None:
    clauses = conformance.read_clauses()
    checks = conformance.read_checks()
    proven = conformance.tests_by_clause(clauses, markers)
    checked = {check.clause for check in checks}
    missing = [c.id for c in clauses if c.id not in proven and not (c.names & checked)]
    assert not missing, f"clauses with neither a marked test nor a deployment check: {missing}"


def test_every_marker_names_a_clause_that_exists(markers: dict[str, list[str]]) -> None:
    known = {name for clause in conformance.read_clauses() for name in clause.names}
    unknown = {test: [i for i in ids if i not in known] for test, ids in markers.items()}
    unknown = {test: ids for test, ids in unknown.items() if ids}
    assert not unknown, f"marked with a clause policy/POLICY-CLAUSES.md does not have: {unknown}"


def test_every_deployment_check_names_a_clause_and_a_real_section() -> None:
    clauses = conformance.read_clauses()
    checks = conformance.read_checks()
    assert checks, "policy/deployment-checks.yml lists no check"
    wrong = [p for p in conformance.problems(clauses, {}, checks) if p.startswith("deployment")]
    assert not wrong, wrong


def test_the_committed_document_is_what_the_markers_give(markers: dict[str, list[str]]) -> None:
    expected = conformance.render(conformance.read_clauses(), markers, conformance.read_checks())
    committed = (ROOT / "docs" / "policy-conformance.md").read_text(encoding="utf-8")
    assert committed == expected, (
        "docs/policy-conformance.md is out of date: run `make conformance` and commit it"
    )


def test_the_document_lists_every_clause_with_its_tests(markers: dict[str, list[str]]) -> None:
    document = (ROOT / "docs" / "policy-conformance.md").read_text(encoding="utf-8")
    for clause in conformance.read_clauses():
        assert f"\n## Clause {clause.id}\n" in document
    some_test, ids = next(iter(markers.items()))
    assert f"[`{some_test}`](../{some_test.split('::')[0]})" in document, ids


# The checker itself, on made-up input: it must be able to say no.


def test_a_clause_with_neither_and_a_typo_are_both_reported(tmp_path: Path) -> None:
    table = tmp_path / "clauses.md"
    table.write_text(
        "| id | the policy says | the system must |\n|---|---|---|\n"
        "| 7.1 | active account kept | no automatic deletion |\n"
        "| 6.1 | servers in Kazakhstan | deployment setting |\n"
        "| 4.1–4.3 | purposes | nothing else |\n",
        encoding="utf-8",
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "deploy.md").write_text("# Deploy\n\n## The layout\n", encoding="utf-8")
    clauses = conformance.read_clauses(table)
    assert [c.id for c in clauses] == ["7.1", "6.1", "4.1–4.3"]
    checks = [conformance.DeploymentCheck("6.1", "servers stand in KZ", "docs/deploy.md#the-layout"),
              conformance.DeploymentCheck("9.9", "nothing", "docs/deploy.md#no-such-heading")]  # fmt: skip
    markers = {"tests/t.py::test_purpose": ["4.2"], "tests/t.py::test_typo": ["7.l"]}

    found = conformance.problems(clauses, markers, checks, root=tmp_path)

    assert len(found) == 4, found
    assert found[0].startswith("clause 7.1 (active account kept) has no test")
    assert "tests/t.py::test_typo is marked policy('7.l')" in found[1]
    assert "deployment check for '9.9': there is no such clause" in found[2]
    assert "no heading with the anchor #no-such-heading" in found[3]
    # a test naming one id of a range (4.2 of 4.1–4.3) proves the range's clause
    assert conformance.tests_by_clause(clauses, markers) == {
        "4.1–4.3": ["tests/t.py::test_purpose"]
    }


def test_the_document_is_sorted_and_stable() -> None:
    clauses = conformance.read_clauses()
    checks = conformance.read_checks()
    markers = {"tests/b.py::test_z": ["7.1"], "tests/a.py::test_y": ["7.1", "7.2"]}
    reordered = dict(reversed(list(markers.items())))
    document = conformance.render(clauses, markers, checks)
    assert document == conformance.render(clauses, reordered, checks)
    section = document.split("## Clause 7.1\n", 1)[1].split("## Clause", 1)[0]
    assert section.index("tests/a.py::test_y") < section.index("tests/b.py::test_z")
