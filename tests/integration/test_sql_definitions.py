"""The files under app/db/sql are what the database runs: one file per function, trigger and
policy, each reproducing its object exactly, none missing and none left over.

Each file is executed in a transaction that is rolled back, between two readings of its object
as PostgreSQL describes it (``pg_get_functiondef`` and the function's privileges,
``pg_get_triggerdef``, the ``pg_policies`` row): both readings are normalized by the server, so
only a difference in meaning shows. Checked on a database migrated in one go and on one
upgraded a revision at a time from 0001, on every server the suite has.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import definitions, migrate
from app.db.bootstrap import DatabaseUrls
from app.db.definitions import Definition
from app.db.session import Database
from app.db.urls import to_libpq
from app.domain.audit import Actor
from app.domain.bookings import cancel_booking_in
from app.domain.outbox import Outgoing, enqueue
from app.models import Booking, Business
from app.models.bookings import LIVE_STATUSES
from tests.conftest import ServerHandle
from tests.factories import create_business
from tests.integration.test_migrations import empty_database, schema_snapshot
from tests.privacy.conftest import book, make_person

pytestmark = pytest.mark.both_servers

# how PostgreSQL describes each kind of object, for a file's object name
READ = {
    "functions": "SELECT pg_get_functiondef(p.oid) AS def, p.proacl::text AS acl FROM pg_proc p "
    "WHERE p.pronamespace = 'public'::regnamespace AND p.proname = $1 ORDER BY p.oid",
    "triggers": "SELECT pg_get_triggerdef(t.oid) AS def, t.tgenabled FROM pg_trigger t "
    "JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'public'::regnamespace "
    "AND NOT t.tgisinternal AND c.relname || '.' || t.tgname = $1",
    "policies": "SELECT cmd, roles::text[] AS roles, qual, with_check, permissive FROM pg_policies "
    "WHERE schemaname = 'public' AND tablename || '.' || policyname = $1",
}
# every such object in schema public, named as its file is
EXISTING = {
    "functions": "SELECT p.proname AS name FROM pg_proc p "
    "WHERE p.pronamespace = 'public'::regnamespace AND NOT EXISTS (SELECT 1 FROM pg_depend d "
    "WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')",
    "triggers": "SELECT c.relname || '.' || t.tgname AS name FROM pg_trigger t "
    "JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal",
    "policies": "SELECT tablename || '.' || policyname AS name FROM pg_policies "
    "WHERE schemaname = 'public'",
}


async def connect(owner: str) -> asyncpg.Connection:
    return await asyncpg.connect(to_libpq(owner))


async def read(conn: asyncpg.Connection, definition: Definition) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(READ[definition.kind], definition.object_name)]


async def differences(owner: str) -> dict[str, tuple[Any, Any]]:
    """Each file whose execution would change its object, or that names no object or more
    than one: name → (before, after)."""
    found = {}
    conn = await connect(owner)
    try:
        for definition in definitions.load():
            tx = conn.transaction()
            await tx.start()
            try:
                before = await read(conn, definition)
                await conn.execute("SET LOCAL check_function_bodies = off")
                await conn.execute(definition.text)
                after = await read(conn, definition)
            finally:
                await tx.rollback()
            # one object: a function whose arguments changed keeps its old signature beside
            # the new one until a migration drops it
            if len(before) != 1 or before != after:
                found[definition.name] = (before, after)
    finally:
        await conn.close()
    return found


async def unmatched(owner: str) -> dict[str, set[str]]:
    """Objects without a file (``+name``) and files without an object (``-name``), per kind."""
    files: dict[str, set[str]] = {kind: set() for kind in definitions.KINDS}
    for definition in definitions.load():
        files[definition.kind].add(definition.object_name)
    conn = await connect(owner)
    try:
        out = {}
        for kind, query in EXISTING.items():
            live = {r["name"] for r in await conn.fetch(query)}
            out[kind] = {f"+{n}" for n in live - files[kind]} | {
                f"-{n}" for n in files[kind] - live
            }
        return out
    finally:
        await conn.close()


# a call of one of our own functions inside a body (they all start so)
OWN_CALL = re.compile(r"\b((?:pz|app|audit|erase|notifications)_\w+)\s*\(")


async def calls_to_missing_functions(owner: str) -> set[str]:
    """``caller → callee`` for each of our functions a body calls that does not exist:
    PostgreSQL checks none of them when a function is created."""
    conn = await connect(owner)
    try:
        rows = await conn.fetch(
            "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        )
        # `INSERT INTO audit_log (…)` looks like a call too
        tables = {
            r["relname"]
            for r in await conn.fetch(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            )
        }
    finally:
        await conn.close()
    names = {r["proname"] for r in rows}
    called = {
        (r["proname"], m) for r in rows for m in OWN_CALL.findall(r["prosrc"]) if m not in tables
    }
    assert len(called) >= 10  # the pattern finds calls (it is not blind)
    return {f"{caller} → {callee}" for caller, callee in called if callee not in names}


async def upgraded_one_revision_at_a_time(server: ServerHandle) -> str:
    """A database taken from nothing to the head by `alembic upgrade` one revision at a time,
    then the definitions step, as an old installation that followed every release would be."""
    owner = await empty_database(server)
    config = migrate.alembic_config(owner)
    revisions = [s.revision for s in ScriptDirectory.from_config(config).walk_revisions()]
    assert len(revisions) >= 13 and revisions[-1] == "0001"
    for revision in reversed(revisions):
        await asyncio.to_thread(command.upgrade, config, revision)
    applied = await definitions.apply(owner)
    assert sorted(applied) == sorted(d.name for d in definitions.load())
    return owner


def test_the_files_name_one_object_each() -> None:
    found = definitions.load()
    counts = {kind: sum(1 for d in found if d.kind == kind) for kind in definitions.KINDS}
    # the schema as of migration 0013: 22 functions, 10 triggers, 64 policies (at least)
    assert counts["functions"] >= 22 and counts["triggers"] >= 10 and counts["policies"] >= 64
    for d in found:
        statement = {
            "functions": f"CREATE OR REPLACE FUNCTION {d.object_name}(",
            "triggers": "CREATE OR REPLACE TRIGGER {1} ",
            "policies": "DROP POLICY IF EXISTS {1} ON {0};",
        }[d.kind].format(*d.object_name.split("."))
        assert statement in d.text, d.name
        assert d.text.count("CREATE ") == 1, f"{d.name}: one object per file"


async def test_the_files_reproduce_a_fresh_database(any_server: ServerHandle) -> None:
    urls = await any_server.create_database()
    assert await unmatched(urls.owner) == {kind: set() for kind in definitions.KINDS}
    assert await differences(urls.owner) == {}
    assert await calls_to_missing_functions(urls.owner) == set()


async def test_the_files_reproduce_a_database_upgraded_one_revision_at_a_time(
    any_server: ServerHandle,
) -> None:
    owner = await upgraded_one_revision_at_a_time(any_server)
    assert await unmatched(owner) == {kind: set() for kind in definitions.KINDS}
    assert await differences(owner) == {}
    # and it is the same database as one migrated in one go
    fresh = await any_server.create_database()
    assert await schema_snapshot(owner) == await schema_snapshot(fresh.owner)


async def test_the_comparison_sees_a_changed_or_missing_object(any_server: ServerHandle) -> None:
    """Not blind: an object that drifted from its file, or has none, is reported."""
    urls = await any_server.create_database()
    conn = await connect(urls.owner)
    try:
        await conn.execute(
            "CREATE OR REPLACE FUNCTION pz_business_changed() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NEW; END $$"
        )
        await conn.execute("GRANT EXECUTE ON FUNCTION audit_verify() TO pozapisi_worker")
        await conn.execute(
            "CREATE FUNCTION pz_consent_ok(p_account_id bigint) RETURNS boolean "
            "LANGUAGE sql AS $$ SELECT true $$"
        )
        await conn.execute("DROP POLICY worker ON sessions")
        await conn.execute("CREATE POLICY stray ON sessions FOR SELECT USING (false)")
        await conn.execute(
            "ALTER TRIGGER notifications_wake ON notifications RENAME TO notifications_ping"
        )
    finally:
        await conn.close()
    assert set(await differences(urls.owner)) == {
        "functions/pz_business_changed.sql",
        "functions/audit_verify.sql",
        "functions/pz_consent_ok.sql",
        "policies/sessions.worker.sql",
        "triggers/notifications.notifications_wake.sql",
    }
    assert await unmatched(urls.owner) == {
        "functions": set(),
        "triggers": {"+notifications.notifications_ping", "-notifications.notifications_wake"},
        "policies": {"+sessions.stray", "-sessions.worker"},
    }


async def test_a_changed_file_is_applied_again_and_only_once(any_server: ServerHandle) -> None:
    urls = await any_server.create_database()
    files = definitions.load()
    (original,) = [d for d in files if d.name == "functions/pz_booking_recipients.sql"]
    marked = Definition(
        original.kind, original.name, original.text.replace("\n$$;", "\n  -- marked\n$$;", 1)
    )
    assert marked.text != original.text
    edited = [marked if d is original else d for d in files]
    source = "SELECT prosrc FROM pg_proc WHERE proname = 'pz_booking_recipients'"
    recorded = "SELECT checksum FROM schema_definitions WHERE name = $1"

    conn = await connect(urls.owner)
    try:
        assert await definitions.apply_on(conn) == []  # create_database applied every file
        assert await definitions.apply_on(conn, edited) == [original.name]
        assert "-- marked" in await conn.fetchval(source)
        assert await conn.fetchval(recorded, original.name) == marked.checksum
        assert await definitions.apply_on(conn, edited) == []  # the second run: nothing to do
        # the file as it is on disk goes back in, once
        assert await definitions.apply_on(conn) == [original.name]
        assert "-- marked" not in await conn.fetchval(source)
        assert (
            await conn.fetchval(recorded, original.name)
            == hashlib.sha256(original.text.encode()).hexdigest()
        )
        assert await definitions.apply_on(conn) == []
    finally:
        await conn.close()


async def test_a_file_postgresql_refuses_rolls_the_whole_step_back(
    any_server: ServerHandle,
) -> None:
    urls = await any_server.create_database()
    files = definitions.load()
    broken = Definition("policies", "policies/zz_nowhere.nothing.sql", "CREATE POLICY nothing;")
    touched = [
        Definition(d.kind, d.name, d.text + "\n-- touched\n") if d.kind == "functions" else d
        for d in files
    ]
    conn = await connect(urls.owner)
    try:
        with pytest.raises(definitions.DefinitionError, match=r"policies/zz_nowhere\.nothing\.sql"):
            await definitions.apply_on(conn, [*touched, broken])
        # the record is as it was: what ran before the failure was rolled back with it
        assert await definitions.pending(conn, files) == []
    finally:
        await conn.close()


async def test_after_a_downgrade_the_next_upgrade_applies_every_file(
    any_server: ServerHandle,
) -> None:
    urls = await any_server.create_database()
    everything = sorted(d.name for d in definitions.load())
    for target in ("-1", migrate.head_revision()):
        await asyncio.to_thread(migrate.downgrade, urls.owner, target)
        applied = await asyncio.to_thread(migrate.upgrade, urls.owner)
        assert sorted(applied) == everything, target
        assert await asyncio.to_thread(migrate.upgrade, urls.owner) == []
    assert await differences(urls.owner) == {}


async def test_a_downgrade_to_0012_leaves_the_functions_0012_had(any_server: ServerHandle) -> None:
    """Migration 0013 came with pz_live_statuses and pz_notification_key; going back to 0012
    puts back the functions that call them as 0012 had them, so nothing calls a function that
    is gone, and the database is the one 0012 built."""
    urls = await any_server.create_database()
    await asyncio.to_thread(migrate.downgrade, urls.owner, "0012")
    assert await calls_to_missing_functions(urls.owner) == set()
    at_0012 = await empty_database(any_server)
    await asyncio.to_thread(command.upgrade, migrate.alembic_config(at_0012), "0012")
    assert await schema_snapshot(urls.owner) == await schema_snapshot(at_0012)


# ---------------------------------------------------------------- each rule once, in SQL


async def test_the_live_statuses_are_defined_once(database: DatabaseUrls) -> None:
    conn = await connect(database.owner)
    try:
        assert await conn.fetchval("SELECT pz_live_statuses()") == list(LIVE_STATUSES)
        # the one predicate that cannot call it spells out the same list
        exclusion = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'bookings'::regclass AND conname = 'no_double_booking'"
        )
        where = exclusion.split(" WHERE ", 1)[1]
        assert re.findall(r"'(\w+)'", where) == list(LIVE_STATUSES)
        # and no function body lists them itself
        listing = await conn.fetch(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
            "AND prosrc ~ $1 AND proname <> 'pz_live_statuses'",
            "'confirmed'",
        )
        assert listing == []
    finally:
        await conn.close()


async def test_the_outbox_writes_the_key_pz_notification_key_builds(
    db: Database, database: DatabaseUrls, owner_session: AsyncSession
) -> None:
    """Python queues messages without building keys: the database's one rule names them."""
    moment = datetime(2026, 12, 1, 10, 15, 30, 987654, tzinfo=UTC)
    messages = [
        Outgoing(event="booking.created", scheduled_at=moment, account_id=41, booking_id=7),
        Outgoing(event="staff.booking.cancelled", scheduled_at=moment, account_id=5, booking_id=9),
        Outgoing(event="booking.reminder", scheduled_at=moment - timedelta(days=1), account_id=3,
                 booking_id=12, channel="sms"),
        Outgoing(event="otp.code", scheduled_at=moment, address="+77010000000", channel="sms"),
    ]  # fmt: skip
    expected = [
        "booking.created:7:auto:a41:2026-12-01T10:15:30+00:00",
        "staff.booking.cancelled:9:auto:a5:2026-12-01T10:15:30+00:00",
        "booking.reminder:12:sms:a3:2026-11-30T10:15:30+00:00",
        "otp.code:-:sms:x+77010000000:2026-12-01T10:15:30+00:00",
    ]
    conn = await connect(database.owner)
    try:
        for m, key in zip(messages, expected, strict=True):
            in_sql = await conn.fetchval(
                "SELECT pz_notification_key($1, $2, $3, $4, $5, $6)",
                m.event, m.booking_id, m.channel, m.account_id, m.address, m.scheduled_at,
            )  # fmt: skip
            assert in_sql == key
    finally:
        await conn.close()
    # and the outbox's own INSERT writes that key: Python builds none
    business = await create_business(owner_session)
    await owner_session.commit()
    person = await make_person(owner_session)
    booking_id = await book(db, business, person.id, days_ahead=3)
    note = Outgoing(event="probe", scheduled_at=moment, account_id=person.id,
                    business_id=business.id, booking_id=booking_id)  # fmt: skip
    async with db.transaction(business_id=business.id) as session:
        await enqueue(session, [note])
        written = await session.scalar(
            text("SELECT idempotency_key FROM notifications WHERE event = 'probe'")
        )
        await session.rollback()
    assert written == f"probe:{booking_id}:auto:a{person.id}:2026-12-01T10:15:30+00:00"


async def test_erasure_writes_the_key_the_booking_path_writes_for_the_same_event(
    db: Database, owner_session: AsyncSession
) -> None:
    """A client who cancels and a client who erases their account tell the business the same
    thing, `staff.booking.cancelled`: one event, one key, whichever path wrote it (a retry that
    crosses the two queues it once)."""
    business = await create_business(owner_session)
    await owner_session.commit()
    person = await make_person(owner_session)
    booking_id = await book(db, business, person.id, days_ahead=3)
    now = datetime.now(UTC).replace(microsecond=654321)
    told = text(
        "SELECT account_id, idempotency_key FROM notifications "
        "WHERE booking_id = :b AND event = 'staff.booking.cancelled' ORDER BY account_id"
    )
    async with db.transaction(business_id=business.id, account_id=person.id) as session:
        biz = await session.get(Business, business.id)
        booking = await session.get(Booking, booking_id)
        assert biz is not None and booking is not None
        # the booking path: the client cancels at `now` (in a savepoint rolled back after, so
        # the erasure finds the visit still live)
        savepoint = await session.begin_nested()
        await cancel_booking_in(
            session, biz, booking, by="client",
            actor=Actor(kind="client", account_id=person.id), now=now,
        )  # fmt: skip
        by_cancelling = (await session.execute(told, {"b": booking_id})).all()
        await savepoint.rollback()
        assert (await session.execute(told, {"b": booking_id})).all() == []
        # the erasure, at the same moment
        await session.execute(
            text("SELECT erase_account_data(:a, :now)"), {"a": person.id, "now": now}
        )
        by_erasing = (await session.execute(told, {"b": booking_id})).all()

    assert [a for a, _ in by_erasing] == [business.owner_account_id]
    assert by_erasing == by_cancelling
