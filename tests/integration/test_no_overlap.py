"""The database, not the application, prevents double booking: the ``no_double_booking``
exclusion constraint over (master, blocked_period) for live bookings.

Rows are inserted directly as the app role with its tenant set, as the booking service does; the
HTTP path (409 ``slot_taken``) is tested with the API.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.urls import to_libpq, to_sqlalchemy
from tests.conftest import ServerHandle
from tests.factories import BusinessFixture, create_business

pytestmark = pytest.mark.both_servers

SLOT_TAKEN = ("23P01", "40P01")  # exclusion violation, or the deadlock a gist race can give
_codes = itertools.count(1)
DAY = datetime(2031, 6, 2, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


@pytest.fixture(scope="module", params=["main", "other"])
async def any_server(
    request: pytest.FixtureRequest, servers: dict[str, ServerHandle], main_server: ServerHandle
) -> ServerHandle:
    """conftest's ``any_server``, module-scoped: one database per server for this module."""
    if request.param not in servers:
        pytest.skip("only one PostgreSQL server here (set TEST_DATABASE_URL for a second)")
    return servers[request.param]


@pytest.fixture(scope="module")
async def urls(any_server: ServerHandle) -> DatabaseUrls:
    return await any_server.create_database()


@dataclass
class Salon:
    urls: DatabaseUrls
    business: BusinessFixture
    client_id: int

    @property
    def master(self) -> int:
        return self.business.staff_ids[0]

    @property
    def other_master(self) -> int:
        return self.business.staff_ids[1]


@pytest.fixture
async def salon(urls: DatabaseUrls) -> Salon:
    """A fresh business per test (so tests never share a master), arranged as the owner."""
    engine = create_async_engine(to_sqlalchemy(urls.owner), poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            business = await create_business(session)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(to_libpq(urls.owner))
    try:
        client_id = await conn.fetchval(
            "INSERT INTO clients (business_id, name) VALUES ($1, 'Aigerim') RETURNING id",
            business.id,
        )
    finally:
        await conn.close()
    return Salon(urls=urls, business=business, client_id=client_id)


@asynccontextmanager
async def app_connection(salon: Salon) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(to_libpq(salon.urls.app))
    try:
        yield conn
    finally:
        await conn.close()


INSERT = (
    "INSERT INTO bookings (business_id, public_code, client_id, staff_id, service_id, period, "
    "blocked_period, status, source, pending_expires_at, service_name, duration_min, price_tiyn) "
    "VALUES ($1, $2, $3, $4, $5, tstzrange($6, $7), tstzrange($8, $9), $10::text, 'api', "
    "CASE WHEN $10::text = 'pending' THEN now() + interval '2 hours' END, '{\"ru\": \"Стрижка\"}', "
    "60, 500000) RETURNING id"
)


async def book_on(
    conn: asyncpg.Connection,
    salon: Salon,
    start: datetime,
    end: datetime,
    *,
    staff_id: int | None = None,
    before_min: int = 0,
    after_min: int = 0,
    status: str = "confirmed",
) -> int:
    """Insert one booking in its own transaction, tenant set, on ``conn`` (the app role)."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.business_id', $1, true)", str(salon.business.id))
        return int(
            await conn.fetchval(
                INSERT,
                salon.business.id,
                f"NO{next(_codes):08d}",
                salon.client_id,
                staff_id or salon.master,
                salon.business.service_id,
                start,
                end,
                start - timedelta(minutes=before_min),
                end + timedelta(minutes=after_min),
                status,
            )
        )


async def book(salon: Salon, start: datetime, end: datetime, **kwargs: object) -> int:
    async with app_connection(salon) as conn:
        return await book_on(conn, salon, start, end, **kwargs)  # type: ignore[arg-type]


async def live_rows(salon: Salon, staff_id: int | None = None) -> list[tuple[datetime, datetime]]:
    """As the owner: the master's live bookings (blocked periods)."""
    conn = await asyncpg.connect(to_libpq(salon.urls.owner))
    try:
        rows = await conn.fetch(
            "SELECT lower(blocked_period) AS s, upper(blocked_period) AS e FROM bookings "
            "WHERE staff_id = $1 AND status IN ('pending', 'confirmed') ORDER BY 1",
            staff_id or salon.master,
        )
    finally:
        await conn.close()
    return [(r["s"], r["e"]) for r in rows]


async def assert_refused(salon: Salon, start: datetime, end: datetime, **kwargs: object) -> None:
    with pytest.raises(asyncpg.ExclusionViolationError) as exc:
        await book(salon, start, end, **kwargs)
    assert exc.value.sqlstate == "23P01"
    assert exc.value.constraint_name == "no_double_booking"


async def test_same_period_twice_is_refused(salon: Salon) -> None:
    await book(salon, at(10), at(11))
    await assert_refused(salon, at(10), at(11))
    assert await live_rows(salon) == [(at(10), at(11))]


async def test_overlap_with_a_different_start_is_refused(salon: Salon) -> None:
    await book(salon, at(10), at(11))
    await assert_refused(salon, at(10, 30), at(11, 30))  # starts inside
    await assert_refused(salon, at(9, 30), at(10, 30))  # ends inside
    await assert_refused(salon, at(9), at(12))  # covers it
    await assert_refused(salon, at(10, 15), at(10, 45))  # lies within
    assert await live_rows(salon) == [(at(10), at(11))]


async def test_touching_periods_are_allowed(salon: Salon) -> None:
    await book(salon, at(10), at(11))
    await book(salon, at(11), at(12))  # starts when the first ends: [) ranges
    await book(salon, at(9), at(10))  # ends when the first starts
    assert await live_rows(salon) == [(at(9), at(10)), (at(10), at(11)), (at(11), at(12))]


async def test_different_masters_may_work_at_the_same_time(salon: Salon) -> None:
    await book(salon, at(10), at(11), staff_id=salon.master)
    await book(salon, at(10), at(11), staff_id=salon.other_master)
    assert await live_rows(salon, salon.master) == [(at(10), at(11))]
    assert await live_rows(salon, salon.other_master) == [(at(10), at(11))]


async def test_pending_booking_holds_its_slot(salon: Salon) -> None:
    await book(salon, at(10), at(11), status="pending")
    await assert_refused(salon, at(10), at(11))


async def test_cancelled_booking_frees_its_slot(salon: Salon) -> None:
    first = await book(salon, at(10), at(11))
    await assert_refused(salon, at(10), at(11))  # held while live
    async with app_connection(salon) as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.business_id', $1, true)", str(salon.business.id))
        status = await conn.execute(
            "UPDATE bookings SET status = 'cancelled', cancelled_by = 'client' WHERE id = $1", first
        )
        assert status == "UPDATE 1"
    second = await book(salon, at(10), at(11))
    assert second != first
    assert await live_rows(salon) == [(at(10), at(11))]
    # finished visits do not hold the time either (the constraint covers live statuses only)
    async with app_connection(salon) as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.business_id', $1, true)", str(salon.business.id))
        await conn.execute("UPDATE bookings SET status = 'completed' WHERE id = $1", second)
    await book(salon, at(10), at(11))


async def test_buffer_overlap_is_refused(salon: Salon) -> None:
    # 10:00–11:00 with 10 minutes of clean-up after: the master is blocked until 11:10
    await book(salon, at(10), at(11), after_min=10)
    # 11:00–12:00 does not overlap the visit, but overlaps the clean-up
    await assert_refused(salon, at(11), at(12))
    # nor may a later booking's preparation time reach back into the visit
    await assert_refused(salon, at(11, 10), at(12), before_min=15)
    # right after the buffer is fine
    await book(salon, at(11, 10), at(12, 10))
    assert await live_rows(salon) == [(at(10), at(11, 10)), (at(11, 10), at(12, 10))]


async def test_fifty_concurrent_inserts_for_one_slot_leave_exactly_one(salon: Salon) -> None:
    """50 connections, each in its own transaction, race for overlapping times of one master."""
    n = 50
    connections = await asyncio.gather(
        *(asyncpg.connect(to_libpq(salon.urls.app)) for _ in range(n))
    )

    async def begin(conn: asyncpg.Connection) -> asyncpg.transaction.Transaction:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("SELECT set_config('app.business_id', $1, true)", str(salon.business.id))
        return transaction

    async def attempt(
        conn: asyncpg.Connection, transaction: asyncpg.transaction.Transaction, i: int
    ) -> int:
        start = at(10, i % 30)  # every pair of these 60-minute visits overlaps
        try:
            booking_id = await conn.fetchval(
                INSERT, salon.business.id, f"RC{next(_codes):08d}", salon.client_id,
                salon.master, salon.business.service_id, start, start + timedelta(hours=1),
                start, start + timedelta(hours=1, minutes=10), "confirmed",
            )  # fmt: skip
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
        return int(booking_id)

    try:
        # every connection is inside its transaction, tenant set, before any INSERT is sent
        transactions = await asyncio.gather(*(begin(conn) for conn in connections))
        results = await asyncio.gather(
            *(
                attempt(c, t, i)
                for i, (c, t) in enumerate(zip(connections, transactions, strict=True))
            ),
            return_exceptions=True,
        )
    finally:
        await asyncio.gather(*(conn.close() for conn in connections))

    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if not isinstance(r, int)]
    assert len(winners) == 1, results
    unexpected = [r for r in losers if getattr(r, "sqlstate", None) not in SLOT_TAKEN]
    assert unexpected == [], unexpected
    assert len(losers) == n - 1
    assert len(await live_rows(salon)) == 1
