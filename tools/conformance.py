"""Write docs/policy-conformance.md: every clause of the privacy policy with what proves it.

    .venv/bin/python tools/conformance.py            # (re)write the document (`make conformance`)
    .venv/bin/python tools/conformance.py --markers  # print the collected markers as JSON

The clauses come from policy/POLICY-CLAUSES.md; the tests that prove one carry
``@pytest.mark.policy("<id>")`` (on the test, its class or the module's ``pytestmark``) and are
found by pytest's own collection, so an alias or a module-level mark counts like any other;
what code cannot prove (where servers stand, what sits in front of the app) is an operator's
check in policy/deployment-checks.yml. Collection imports the tests but runs none: no database
is needed. tests/privacy/test_conformance.py fails when a clause has neither a test nor a
check, when a marker names no clause, and when the committed document is not what this writes.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CLAUSES_FILE = ROOT / "policy" / "POLICY-CLAUSES.md"
CHECKS_FILE = ROOT / "policy" / "deployment-checks.yml"
DOCUMENT = ROOT / "docs" / "policy-conformance.md"

# a row of the clause table: | id | the policy says | the system must |
_ROW = re.compile(
    r"^\|\s*(?P<id>\d+\.(?:\d+|x)(?:\s*[–-]\s*\d+\.\d+)?)\s*\|(?P<says>.*)\|(?P<must>.*)\|\s*$"
)
_RANGE = re.compile(r"^(\d+)\.(\d+)\s*[–-]\s*(\d+)\.(\d+)$")


@dataclass(frozen=True, slots=True)
class Clause:
    id: str  # as the table writes it: "7.2", "2.x", "4.1–4.5"
    says: str
    must: str

    @property
    def names(self) -> frozenset[str]:
        """The ids a marker may use for this clause: its own, and for a range (4.1–4.5) each
        id in it, so a test can name the one purpose it proves."""
        found = _RANGE.match(self.id)
        if not found:
            return frozenset({self.id})
        section, first, last_section, last = (int(g) for g in found.groups())
        if section != last_section or last < first:
            raise ValueError(f"clause range {self.id!r} must stay within one section")
        return frozenset({self.id, *(f"{section}.{n}" for n in range(first, last + 1))})


@dataclass(frozen=True, slots=True)
class DeploymentCheck:
    clause: str
    verify: str
    where: str  # "docs/deploy.md#tls"


def read_clauses(path: Path = CLAUSES_FILE) -> list[Clause]:
    """The clause table's rows, in the table's order."""
    clauses = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = _ROW.match(line)
        if row:
            clauses.append(Clause(row["id"].strip(), row["says"].strip(), row["must"].strip()))
    if not clauses:
        raise ValueError(f"{path}: no clause table")
    duplicates = sorted({c.id for c in clauses if [d.id for d in clauses].count(c.id) > 1})
    if duplicates:
        raise ValueError(f"{path}: clause ids listed twice: {', '.join(duplicates)}")
    return clauses


def read_checks(path: Path = CHECKS_FILE) -> list[DeploymentCheck]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    checks = []
    for entry in data.get("checks") or []:
        if not isinstance(entry, dict) or set(entry) != {"clause", "verify", "where"}:
            raise ValueError(f"{path}: each check has exactly clause, verify and where: {entry!r}")
        checks.append(DeploymentCheck(str(entry["clause"]), " ".join(str(entry["verify"]).split()),
                                      str(entry["where"])))  # fmt: skip
    return checks


def heading_anchor(heading: str) -> str:
    """The anchor GitHub (and MkDocs' toc) gives a Markdown heading: lower case, punctuation
    dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def missing_target(where: str, root: Path = ROOT) -> str | None:
    """Why a check's ``where`` leads nowhere (no such file, or no such heading), else None."""
    path, _, anchor = where.partition("#")
    file = root / path
    if not file.is_file():
        return f"{where}: no file {path}"
    if anchor:
        headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", file.read_text(encoding="utf-8"), re.M)
        if anchor not in {heading_anchor(h) for h in headings}:
            return f"{where}: {path} has no heading with the anchor #{anchor}"
    return None


class _MarkerCollector:
    """A pytest plugin that keeps, after collection, each test's policy clauses."""

    def __init__(self) -> None:
        self.markers: dict[str, list[str]] = {}
        self.errors: list[str] = []

    def pytest_collection_finish(self, session: Any) -> None:
        for item in session.items:
            clauses = [str(arg) for mark in item.iter_markers("policy") for arg in mark.args]
            if clauses:
                test = test_id(item.nodeid)
                self.markers[test] = sorted({*self.markers.get(test, []), *clauses})

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext.strip().splitlines()[-1]}")


def test_id(nodeid: str) -> str:
    """``path::test`` without the parameters: a parametrized test proves its clause once."""
    return nodeid.split("[", 1)[0]


def collect_markers(root: Path = ROOT) -> dict[str, list[str]]:
    """Every test with a policy marker → its clause ids, by collecting the whole suite in this
    process (no test runs). Raises when collection fails: a missing test is not an empty one."""
    import pytest

    collector = _MarkerCollector()
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.chdir(root):
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
                           plugins=[collector])  # fmt: skip
    if code != 0 or collector.errors:
        problems = "\n".join(collector.errors) or output.getvalue()[-2000:]
        raise RuntimeError(f"collecting the tests failed (pytest exit {code}):\n{problems}")
    return dict(sorted(collector.markers.items()))


def tests_by_clause(
    clauses: Iterable[Clause], markers: Mapping[str, Iterable[str]]
) -> dict[str, list[str]]:
    """Clause id (as the table writes it) → the sorted tests that name it or an id in it."""
    owner = {name: clause.id for clause in clauses for name in clause.names}
    found: dict[str, set[str]] = {}
    for test, ids in markers.items():
        for clause_id in ids:
            if clause_id in owner:
                found.setdefault(owner[clause_id], set()).add(test)
    return {clause: sorted(tests) for clause, tests in found.items()}


def problems(clauses: list[Clause], markers: Mapping[str, Iterable[str]],
             checks: list[DeploymentCheck], root: Path = ROOT) -> list[str]:  # fmt: skip
    """Everything that keeps the document from being a proof, one line each: a clause with
    neither a test nor a deployment check, a marker or a check naming no clause, a check
    pointing nowhere."""
    known = {name for clause in clauses for name in clause.names}
    proven = tests_by_clause(clauses, markers)
    checked = {check.clause for check in checks}
    found = [f"clause {c.id} ({c.says}) has no test marked policy({c.id!r}) and no deployment "
             f"check in policy/deployment-checks.yml" for c in clauses
             if c.id not in proven and not (c.names & checked)]  # fmt: skip
    for test, ids in sorted(markers.items()):
        found += [f"{test} is marked policy({i!r}): POLICY-CLAUSES.md has no clause {i}"
                  for i in sorted(set(ids)) if i not in known]  # fmt: skip
    for check in checks:
        if check.clause not in known:
            found.append(f"deployment check for {check.clause!r}: there is no such clause")
        if (why := missing_target(check.where, root)) is not None:
            found.append(f"deployment check for {check.clause}: {why}")
    return found


def _link(test: str) -> str:
    path = test.split("::", 1)[0]
    return f"[`{test}`](../{path})"


def _where(where: str) -> str:
    path, _, anchor = where.partition("#")
    target = Path(path).relative_to("docs").as_posix() if path.startswith("docs/") else f"../{path}"
    return f"[{where}]({target}{'#' + anchor if anchor else ''})"


def render(clauses: list[Clause], markers: Mapping[str, Iterable[str]],
           checks: list[DeploymentCheck]) -> str:  # fmt: skip
    """The document: a summary table, then one section per clause in the table's order."""
    proven = tests_by_clause(clauses, markers)
    checks_of = {c.id: [k for k in checks if k.clause in c.names] for c in clauses}
    lines = [
        "# Privacy policy conformance",
        "",
        "<!-- Generated by tools/conformance.py (`make conformance`) from policy/POLICY-CLAUSES.md, "
        "the tests' @pytest.mark.policy markers and policy/deployment-checks.yml. Do not edit. -->",
        "",
        "Every promise of the privacy policy (the clauses of "
        "[policy/POLICY-CLAUSES.md](../policy/POLICY-CLAUSES.md)), with the tests that prove it "
        "and, where code cannot, what an operator verifies at deployment. "
        "`tests/privacy/test_conformance.py` fails when a clause has neither, when a test names "
        "a clause that does not exist, and when this file is not what `make conformance` writes.",
        "",
        "| clause | the policy says | tests | deployment check |",
        "|---|---|---|---|",
    ]
    for clause in clauses:
        count = len(proven.get(clause.id, []))
        check = "yes" if checks_of[clause.id] else "—"
        anchor = heading_anchor(f"Clause {clause.id}")
        lines.append(f"| [{clause.id}](#{anchor}) | {clause.says} | {count} | {check} |")
    for clause in clauses:
        lines += ["", f"## Clause {clause.id}", "", f"The policy says: {clause.says}.", "",
                  f"The system must: {clause.must}.", ""]  # fmt: skip
        tests = proven.get(clause.id, [])
        if tests:
            lines += ["Tests:", ""] + [f"- {_link(t)}" for t in tests]
        else:
            lines.append("Tests: none; see the deployment check.")
        for check in checks_of[clause.id]:
            lines += ["", f"Deployment check ({_where(check.where)}): {check.verify}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    markers = collect_markers()
    if "--markers" in argv:
        print(json.dumps(markers, ensure_ascii=False, indent=1))
        return 0
    clauses, checks = read_clauses(), read_checks()
    DOCUMENT.write_text(render(clauses, markers, checks), encoding="utf-8")
    found = problems(clauses, markers, checks)
    for problem in found:
        print(problem, file=sys.stderr)
    print(f"wrote {DOCUMENT.relative_to(ROOT)}: {len(clauses)} clauses, {len(markers)} marked tests"
          + (f", {len(found)} problems" if found else ""))  # fmt: skip
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
