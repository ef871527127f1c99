"""Database functions, triggers and row-level-security policies, each read from its own file.

``app/db/sql/`` holds the current definition of every function, trigger and policy in schema
``public``, one object per file, named after it:

- ``functions/<function>.sql``: ``CREATE OR REPLACE FUNCTION``, then the function's privileges
  (``REVOKE ALL … FROM PUBLIC, pozapisi_app, pozapisi_worker`` and the ``GRANT EXECUTE`` it
  needs). Who may call a function is part of what the function is, so it lives beside the body
  and a reader sees both at once; revoking from both runtime roles first makes the file the
  whole truth about them. A function executable by everybody (PostgreSQL's default) has no
  GRANT and says so.
- ``triggers/<table>.<trigger>.sql``: ``CREATE OR REPLACE TRIGGER`` (PostgreSQL 14 and later).
- ``policies/<table>.<policy>.sql``: ``DROP POLICY IF EXISTS …; CREATE POLICY …`` (a policy has no
  OR REPLACE). ``ALTER TABLE … ENABLE/FORCE ROW LEVEL SECURITY`` is not in them: whether a table
  is guarded at all is a property of the table, like its columns, and stays with the versioned
  migrations (0002, 0012) — removing or renaming a policy file must never be able to switch a
  table's protection off.

Comments at the head of a file say why the object exists; comments inside a body are stored
with it. ``pozapisi db upgrade`` runs Alembic, then :func:`apply`, in the manner of Flyway's
repeatable migrations: each file whose checksum (sha256 of its text) differs from the one
recorded in ``schema_definitions`` (created by migration 0013) is executed, functions first,
then triggers, then policies, all in one transaction with ``check_function_bodies`` off (as
pg_dump restores do), so one function may call another defined later in the same run. Changing
a function is editing its file; the migrations no longer carry copies of it.

What still needs a versioned migration: creating or dropping a table and everything structural,
dropping an object (a file that disappears leaves its object in place, and
``tests/integration/test_sql_definitions.py`` fails until a migration drops it), and a change
``CREATE OR REPLACE`` cannot make (a function's return type or argument names: drop the old one
in a migration; the file creates the new one). Old migrations keep literal copies of the text
they ran: they are history, and must replay exactly from 0001.

After ``alembic downgrade`` the recorded checksums no longer describe the database, so
:func:`forget` (called by ``app.db.migrate.downgrade``) clears the record and the next upgrade
applies every file again.

Why not ``alembic_utils``: it declares each function, trigger and policy as a Python object
for Alembic's autogenerate, which then writes the whole new definition into a migration
(``op.replace_entity``) every time one changes, and the old one into its downgrade — the very
copies, and the "which migration replaced it last" hunt, that these files end. The source would
also be Python strings rather than ``.sql`` files an editor and ``psql -f`` understand. Applying
files by checksum needs nothing but the files, one table and this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.db.urls import to_libpq

SQL_DIR = Path(__file__).parent / "sql"
KINDS = ("functions", "triggers", "policies")  # the order they are applied in
RECORD = "schema_definitions"
# one upgrade at a time: two `pozapisi db upgrade` started together must not both apply a file
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('pozapisi.schema_definitions', 0))"


@dataclass(frozen=True, slots=True)
class Definition:
    """One file of ``app/db/sql``: ``name`` is its path there (``functions/pz_blocked.sql``)."""

    kind: str
    name: str
    text: str

    @property
    def object_name(self) -> str:
        """The object it defines: a function's name, or ``<table>.<trigger or policy>``."""
        return self.name.split("/", 1)[1].removesuffix(".sql")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def load(directory: Path = SQL_DIR) -> list[Definition]:
    """Every definition file, in the order they are applied (by kind, then by name)."""
    found = []
    for kind in KINDS:
        for path in sorted((directory / kind).glob("*.sql")):
            found.append(Definition(kind, f"{kind}/{path.name}", path.read_text(encoding="utf-8")))
    return found


async def _recorded(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch(f"SELECT name, checksum FROM {RECORD}")
    return {row["name"]: row["checksum"] for row in rows}


async def pending(conn: asyncpg.Connection, definitions: Sequence[Definition]) -> list[Definition]:
    """The definitions whose text differs from what was last applied (or never was)."""
    recorded = await _recorded(conn)
    return [d for d in definitions if recorded.get(d.name) != d.checksum]


async def apply_on(
    conn: asyncpg.Connection, definitions: Sequence[Definition] | None = None
) -> list[str]:
    """Apply every changed definition in one transaction; the names of those applied."""
    definitions = load() if definitions is None else definitions
    async with conn.transaction():
        await conn.execute(_LOCK)
        await conn.execute("SET LOCAL check_function_bodies = off")
        changed = await pending(conn, definitions)
        for definition in changed:
            try:
                await conn.execute(definition.text)
            except asyncpg.PostgresError as exc:
                raise DefinitionError(f"{definition.name}: {exc}") from exc
        await conn.executemany(
            f"INSERT INTO {RECORD} (name, checksum, applied_at) VALUES ($1, $2, now()) "
            "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, "
            "applied_at = EXCLUDED.applied_at",
            [(d.name, d.checksum) for d in changed],
        )
        # a file that is gone is no longer recorded (its object is a migration's to drop)
        await conn.execute(
            f"DELETE FROM {RECORD} WHERE name <> ALL($1::text[])",
            [d.name for d in definitions],
        )
    return [d.name for d in changed]


async def apply(owner_url: str) -> list[str]:
    """``pozapisi db upgrade``'s last step, with the owner DSN (after ``alembic upgrade head``)."""
    conn = await asyncpg.connect(to_libpq(owner_url))
    try:
        return await apply_on(conn)
    finally:
        await conn.close()


async def forget(owner_url: str) -> None:
    """After a downgrade: nothing recorded, so the next upgrade applies every file again."""
    conn = await asyncpg.connect(to_libpq(owner_url))
    try:
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", RECORD):
            await conn.execute(f"DELETE FROM {RECORD}")
    finally:
        await conn.close()


class DefinitionError(RuntimeError):
    """A definition file PostgreSQL refused; the message names the file."""
