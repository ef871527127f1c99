"""``DATABASE_POOLER=transaction``: the app's connections through PgBouncer 1.18 in transaction mode.

PgBouncer gives each transaction — and each statement outside one — whichever server connection
is free. Both of the app's ways to the database must hold under concurrency through it: the
hot paths (one statement, autocommit, on plain asyncpg) and SQLAlchemy, in its transactions and
in the relay's autocommit writes. The same calls without the setting fail through it: the test
can tell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database, Pools, make_engine
from tests.factories import local_start, new_business
from tests.support.pgbouncer import SKIP_REASON, Bouncer, pgbouncer_executable, private_pgbouncer

CALLS = 400
# what these tests prove is where statements go, not how long a crowd waits for a connection:
# a generous wait, so a busy machine cannot turn the crowd into "no connection in time"
WAIT_S = 60.0
_TENANT = "SELECT coalesce(current_setting('app.business_id', true), '')"


@pytest.fixture(scope="module")
def bouncer(database: DatabaseUrls) -> Iterator[Bouncer]:
    if pgbouncer_executable() is None:
        pytest.skip(SKIP_REASON)
    # fewer server connections than clients: statements of one client meet many servers
    with private_pgbouncer(database.owner, pool_size=4) as running:
        yield running


async def _hot_path_calls(db: Database) -> list[Any]:
    async def one(i: int) -> Any:
        return await db.fetchval("SELECT $1::int + length($2::text)", i, "x" * (i % 5))

    return await asyncio.gather(*(one(i) for i in range(CALLS)), return_exceptions=True)


async def test_hot_paths_through_pgbouncer_in_transaction_mode(database, bouncer) -> None:
    pooled = Database(
        bouncer.url(database.app), Pools(hot_size=10, timeout_s=WAIT_S, transaction_pooler=True)
    )
    try:
        results = await _hot_path_calls(pooled)
    finally:
        await pooled.dispose()
    assert results == [i + i % 5 for i in range(CALLS)]


async def test_without_the_setting_prepared_statements_go_astray(database, bouncer) -> None:
    """The control: asyncpg's named statements (its default) meet servers that never saw them."""
    plain = Database(bouncer.url(database.app), Pools(hot_size=10, timeout_s=WAIT_S))
    try:
        results = await _hot_path_calls(plain)
    finally:
        await plain.dispose()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures, "named prepared statements survived transaction pooling"
    assert all("prepared statement" in str(f) for f in failures), failures[:3]


async def test_transactions_keep_their_tenant_and_leave_none_behind(
    database, bouncer, owner_session
) -> None:
    businesses = [await new_business(owner_session) for _ in range(3)]
    pooled = Database(
        bouncer.url(database.app),
        Pools(size=8, overflow=0, hot_size=4, timeout_s=WAIT_S, transaction_pooler=True),
    )

    async def one(i: int) -> tuple[str, str, str]:
        business = businesses[i % len(businesses)]
        async with pooled.transaction(business_id=business.id) as session:
            seen = await session.scalar(text(_TENANT))
            await asyncio.sleep(0)  # let the others interleave inside this transaction
            # what RLS reads, later in the same transaction (the same server connection)
            policy = await session.scalar(text("SELECT app_business_id()::text"))
        async with pooled.transaction() as session:
            after = await session.scalar(text(_TENANT))
        return str(seen), str(policy), str(after)

    try:
        results = await asyncio.gather(*(one(i) for i in range(CALLS // 2)))
        # and a hot path on the same pooled servers afterwards: no tenant left over either
        leftovers = await asyncio.gather(*(pooled.fetchval(_TENANT) for _ in range(40)))
    finally:
        await pooled.dispose()
    for i, (seen, policy, after) in enumerate(results):
        assert seen == policy == str(businesses[i % len(businesses)].id)
        assert after == ""
    assert set(leftovers) == {""}


async def _autocommit_writes(engine: AsyncEngine) -> list[Any]:
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")  # as the relay records

    async def one(i: int) -> Any:
        async with autocommit.connect() as conn:
            return await conn.scalar(text("SELECT CAST(:i AS int) * 2"), {"i": i})

    return await asyncio.gather(*(one(i) for i in range(CALLS)), return_exceptions=True)


async def test_sqlalchemy_autocommit_through_pgbouncer(database, bouncer) -> None:
    engine = make_engine(
        bouncer.url(database.worker),
        pool_size=10,
        max_overflow=0,
        pool_timeout_s=WAIT_S,
        transaction_pooler=True,
    )
    try:
        results = await _autocommit_writes(engine)
    finally:
        await engine.dispose()
    assert results == [i * 2 for i in range(CALLS)]


async def test_a_booking_through_pgbouncer(client_through, owner_session) -> None:
    """The booking hot path itself (pz_booking_insert) in pooler mode, over the app's API."""
    from tests.helpers import TelegramUser, booking_body, grant_consent

    business = await new_business(owner_session)
    user = TelegramUser()
    await grant_consent(client_through, user)
    start = local_start(business, days_ahead=4)
    slots = await client_through.get(
        f"/api/v1/businesses/{business.slug}/availability",
        params={"service": business.service_id, "date_from": start.date().isoformat(),
                "date_to": start.date().isoformat()},
    )  # fmt: skip
    assert slots.status_code == 200, slots.text
    assert start.isoformat() in {slot["start"] for slot in slots.json()["slots"]}
    response = await client_through.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, start, business.staff_ids[0]),
        headers=user.headers(),
    )
    assert response.status_code == 201, response.text


@pytest.fixture
async def client_through(database, bouncer, settings) -> Any:
    """The app in this process with DATABASE_POOLER=transaction and its URL through PgBouncer."""
    import msgspec
    from litestar.testing import AsyncTestClient

    from app.main import create_app

    pooled = msgspec.structs.replace(settings, database_pooler="transaction")
    app = create_app(pooled, app_url=bouncer.url(database.app))
    async with AsyncTestClient(app, base_url="https://testserver.local") as http:
        yield http
