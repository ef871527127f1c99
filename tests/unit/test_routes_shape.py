"""Routes parse, are authorized by dependencies, make one domain call and present the result:
no SQL, ORM queries, transactions or tenant context in ``app/routes/`` (import-linter keeps
the ORM models out; this keeps the database's own verbs out)."""

from __future__ import annotations

import re
from pathlib import Path

ROUTES = Path(__file__).resolve().parents[2] / "app" / "routes"
FORBIDDEN = {
    "SQL text": re.compile(r"\btext\(|\bSELECT\b|\bINSERT\b|\bUPDATE\b|\bDELETE FROM\b"),
    "an ORM query": re.compile(r"\bselect\(|\.execute\(|\.scalar\(|\.scalars\("),
    "the hot-path pool": re.compile(r"\.fetchval\(|\.fetchrow\(|\.fetch\("),
    "a transaction": re.compile(r"\.transaction\(|\.begin_nested\(|\.commit\("),
    "the tenant context": re.compile(r"\bset_context\b|set_config"),
}


def test_no_database_work_in_routes() -> None:
    found = [
        f"{path.name}:{number}: {what}: {line.strip()}"
        for path in sorted(ROUTES.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for what, pattern in FORBIDDEN.items()
        if pattern.search(line)
    ]
    assert found == []


def test_the_check_sees_database_work() -> None:
    """The patterns catch what they are for (the check itself can fail)."""
    lines = [
        "await session.execute(select(Booking).where(Booking.id == 1))",
        'raw = await db.fetchval("SELECT pz_booking_context($1)")',
        "async with db.transaction() as session:",
        "await set_context(session, business_id=1)",
    ]
    for line in lines:
        assert any(p.search(line) for p in FORBIDDEN.values()), line
