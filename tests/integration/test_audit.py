"""The audit log (policy 10.4): append-only, one hash chain per business, checked by the CLI.

The hashes are recomputed here in Python from the documented formula, so a chain that merely
agrees with ``audit_verify()`` is not enough to pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.session import Database
from app.db.urls import to_libpq, to_sqlalchemy
from app.domain import bookings
from app.domain.audit import Actor
from app.models import Business
from tests.conftest import ROOT
from tests.factories import BusinessFixture, create_business, local_start

pytestmark = pytest.mark.policy("10.4")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENESIS = bytes(32)
STAFF = Actor(kind="staff", ip="198.51.100.4", user_agent="audit-test", request_id="req-audit")


@pytest.fixture
async def owner_db(owner_engine: Any) -> Any:
    async with AsyncSession(owner_engine, expire_on_commit=False) as session:
        yield session
        await session.rollback()


def entry_hash(row: Any) -> bytes:
    """``audit_entry_hash`` written out independently: sha256(prev || 'a|b|…' as UTF-8)."""
    micros = (row["at"] - EPOCH) // timedelta(microseconds=1)
    parts = [
        str(row["chain_key"]),
        str(row["seq"]),
        str(micros),
        "" if row["actor_account_id"] is None else str(row["actor_account_id"]),
        row["actor_kind"],
        row["action"],
        row["entity"],
        "" if row["entity_id"] is None else str(row["entity_id"]),
        row["before_digest"].hex() if row["before_digest"] is not None else "",
        row["after_digest"].hex() if row["after_digest"] is not None else "",
        row["request_id"] or "",
    ]
    return hashlib.sha256(bytes(row["prev_hash"]) + "|".join(parts).encode()).digest()


async def chain_rows(conn: asyncpg.Connection, chain_key: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT a.*, d.after::text AS after_text FROM audit_log a "
        "LEFT JOIN audit_details d ON d.audit_id = a.id WHERE a.chain_key = $1 ORDER BY a.seq",
        chain_key,
    )


async def book_walk_ins(
    app_url: str, business: BusinessFixture, starts: list[datetime]
) -> list[int]:
    """One booking per start, each in its own transaction, all at once."""
    database = Database(app_url, pool_size=len(starts))
    try:

        async def one(start: datetime) -> int:
            async with database.transaction(business_id=business.id) as session:
                found = await session.execute(select(Business).where(Business.id == business.id))
                booking, _ = await bookings.create_booking_in(
                    session, found.scalar_one(),
                    bookings.BookingRequest(service_id=business.short_service_id, staff_id=None,
                                            start=start, source="walk_in", client_name="Walk-in"),
                    account=None, actor=STAFF,
                )  # fmt: skip
                return booking.id

        return list(await asyncio.gather(*(one(s) for s in starts)))
    finally:
        await database.dispose()


def short_service_starts(business: BusinessFixture, count: int) -> list[datetime]:
    """Non-overlapping 30 min starts for the first master, day after day from 3 days ahead."""
    starts: list[datetime] = []
    day = 3
    while len(starts) < count:
        for opens in (9, 14):
            for half_hour in range(8):
                minutes = opens * 60 + 30 * half_hour
                starts.append(local_start(business, day, time(minutes // 60, minutes % 60)))
        day += 1
    return starts[:count]


# ---------------------------------------------------------------- rights


async def test_app_role_may_append_but_never_write_the_log(database, owner_db):
    business = await create_business(owner_db)
    other = await create_business(owner_db)
    await owner_db.commit()
    conn = await asyncpg.connect(to_libpq(database.app))
    try:
        await conn.execute("SELECT set_config('app.business_id', $1, false)", str(business.id))
        audit_id = await conn.fetchval(
            "SELECT audit_append($1, NULL, 'system', 'test.append', 'test', 7, NULL, "
            "'{\"a\": 1}'::jsonb, 'req-1', '203.0.113.9'::inet, 'agent')",
            business.id,
        )
        assert isinstance(audit_id, int)
        refused = [
            "INSERT INTO audit_log (chain_key, seq, business_id, actor_kind, action, entity, "
            f"prev_hash, hash) VALUES ({business.id}, 99, {business.id}, 'system', 'forged', "
            "'test', '\\x00', '\\x00')",
            f"UPDATE audit_log SET action = 'forged' WHERE id = {audit_id}",
            f"DELETE FROM audit_log WHERE id = {audit_id}",
            "TRUNCATE audit_log",
            f"UPDATE audit_chain_heads SET seq = 0 WHERE chain_key = {business.id}",
            f"DELETE FROM audit_details WHERE audit_id = {audit_id}",
            f"UPDATE audit_details SET after = NULL WHERE audit_id = {audit_id}",
            # another tenant's chain, and the verifier, are not the app's either
            f"SELECT audit_append({other.id}, NULL, 'system', 'x', 'test', NULL, NULL, NULL, "
            "NULL, NULL, NULL)",
            "SELECT * FROM audit_verify()",
        ]
        for statement in refused:
            with pytest.raises(asyncpg.PostgresError) as denied:
                await conn.execute(statement)
            assert denied.value.sqlstate == "42501", (statement, denied.value)
    finally:
        await conn.close()

    worker = await asyncpg.connect(to_libpq(database.worker))
    try:
        with pytest.raises(asyncpg.PostgresError) as denied:
            await worker.execute(f"DELETE FROM audit_log WHERE id = {audit_id}")
        assert denied.value.sqlstate == "42501"
    finally:
        await worker.close()

    owner = await asyncpg.connect(to_libpq(database.owner))
    try:
        stored = await owner.fetchrow("SELECT * FROM audit_log WHERE id = $1", audit_id)
        assert (stored["chain_key"], stored["action"], stored["entity_id"]) == (
            business.id,
            "test.append",
            7,
        )
        details = await owner.fetchrow(
            "SELECT host(ip) AS ip, user_agent, after::text AS after FROM audit_details "
            "WHERE audit_id = $1",
            audit_id,
        )
        assert tuple(details) == ("203.0.113.9", "agent", '{"a": 1}')
        assert bytes(stored["after_digest"]) == hashlib.sha256(b'{"a": 1}').digest()
        # even the owner cannot rewrite history without switching the trigger off
        with pytest.raises(asyncpg.PostgresError) as denied:
            await owner.execute("UPDATE audit_log SET action = 'x' WHERE id = $1", audit_id)
        assert denied.value.sqlstate == "42501"
    finally:
        await owner.close()


# ---------------------------------------------------------------- concurrent writers


async def test_concurrent_bookings_make_one_unbroken_chain(database, owner_db):
    business = await create_business(owner_db)
    await owner_db.commit()
    starts = short_service_starts(business, 20)
    booking_ids = await book_walk_ins(database.app, business, starts)
    assert len(set(booking_ids)) == 20

    conn = await asyncpg.connect(to_libpq(database.owner))
    try:
        rows = await chain_rows(conn, business.id)
        assert [r["seq"] for r in rows] == list(range(1, 21))  # no gaps, no duplicates
        assert {r["entity_id"] for r in rows} == set(booking_ids)
        assert {r["action"] for r in rows} == {"booking.create"}
        previous = GENESIS
        for r in rows:  # each entry points at the one before: no fork
            assert bytes(r["prev_hash"]) == previous, r["seq"]
            assert bytes(r["hash"]) == entry_hash(r), r["seq"]
            assert bytes(r["after_digest"]) == hashlib.sha256(r["after_text"].encode()).digest()
            assert r["request_id"] == "req-audit" and r["actor_kind"] == "staff"
            previous = bytes(r["hash"])
        head = await conn.fetchrow(
            "SELECT seq, hash FROM audit_chain_heads WHERE chain_key = $1", business.id
        )
        assert (head["seq"], bytes(head["hash"])) == (20, previous)
        problems = await conn.fetch(
            "SELECT * FROM audit_verify() WHERE chain_key = $1", business.id
        )
        assert problems == []
    finally:
        await conn.close()


# ---------------------------------------------------------------- `pozapisi audit verify`


def run_verify(owner_url: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("pozapisi")
    command = (
        [str(script), "audit", "verify"]
        if script.exists()
        else [sys.executable, "-m", "app.cli", "audit", "verify"]
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "TEST_DATABASE"))
    }
    env.update({"DATABASE_URL": owner_url, "POZAPISI_ENV": "test"})
    return subprocess.run(  # the timeout only catches a hang
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


async def verify(owner_url: str) -> tuple[int, str]:
    done = await asyncio.to_thread(run_verify, owner_url)
    return done.returncode, done.stdout + done.stderr


async def test_cli_detects_altered_and_deleted_entries(main_server):
    urls = await main_server.create_database()  # a database of its own: we break it on purpose
    engine = create_async_engine(to_sqlalchemy(urls.owner), poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            business = await create_business(session)
            await session.commit()
    finally:
        await engine.dispose()
    for start in short_service_starts(business, 5):  # one after another: seq 1..5
        await book_walk_ins(urls.app, business, [start])

    code, output = await verify(urls.owner)
    assert (code, output.strip()) == (0, "audit log: every chain holds")

    owner = await asyncpg.connect(to_libpq(urls.owner))
    try:
        ids = {
            r["seq"]: r["id"]
            for r in await owner.fetch(
                "SELECT seq, id FROM audit_log WHERE chain_key = $1", business.id
            )
        }
        assert sorted(ids) == [1, 2, 3, 4, 5]
        await owner.execute("SET session_replication_role = replica")  # the trigger sleeps

        await owner.execute(
            "UPDATE audit_log SET action = 'booking.cancelled' WHERE id = $1", ids[3]
        )
        code, output = await verify(urls.owner)
        assert code == 1, output
        assert f"business {business.id}, entry #3 (row id {ids[3]}): content altered" in output

        await owner.execute("UPDATE audit_log SET action = 'booking.create' WHERE id = $1", ids[3])
        code, output = await verify(urls.owner)
        assert code == 0, output

        await owner.execute("DELETE FROM audit_details WHERE audit_id = $1", ids[5])
        await owner.execute("DELETE FROM audit_log WHERE id = $1", ids[5])
        code, output = await verify(urls.owner)
        assert code == 1, output
        assert f"business {business.id}, entry #5" in output
        assert "newest rows missing" in output

        await owner.execute("DELETE FROM audit_details WHERE audit_id = $1", ids[2])
        await owner.execute("DELETE FROM audit_log WHERE id = $1", ids[2])
        code, output = await verify(urls.owner)
        assert code == 1, output
        assert f"entry #3 (row id {ids[3]}): rows missing before this one" in output
        assert "... and 1 more" in output
    finally:
        await owner.close()
