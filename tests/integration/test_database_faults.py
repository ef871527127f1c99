"""Database trouble is 503 ``unavailable`` with Retry-After, never a 500, and the app heals.

The faults happen to a PostgreSQL server of these tests' own (``tests/support/private_pg``):
stopped and started under concurrent requests, started with too few connections for the
pools, or with every pooled connection held. Requests are bounded in number; waits are
bounded only to catch a hang, and nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db import bootstrap, budget
from app.db.bootstrap import DatabaseUrls
from app.db.faults import DatabaseUnavailable, is_unavailable
from app.db.urls import to_sqlalchemy
from app.main import create_app
from tests.conftest import BOT_TOKEN, ROOT, SECRET_KEY, free_port, make_settings, wait_for
from tests.factories import BusinessFixture, create_business, new_business
from tests.helpers import CYRILLIC, TelegramUser, assert_error, booking_body, grant_consent
from tests.support.private_pg import PrivateServer, private_server

RETRY_AFTER = "7"
KAZAKH = "Қызмет уақытша қолжетімсіз"  # "the service is briefly unavailable", in Kazakh
LOAD_TASKS = 6
REQUESTS_PER_TASK = 300  # the bound on the load, whatever happens to the server


@dataclass
class Answer:
    kind: str  # "availability" or "booking"
    phase: str  # "before", "down" or "after" (the server was started again)
    status: int
    body: dict[str, Any]
    retry_after: str | None
    key: str | None = None
    sent: dict[str, Any] | None = None  # the booking's body


@pytest.fixture
async def private() -> AsyncIterator[tuple[PrivateServer, DatabaseUrls]]:
    async with private_server() as server:
        yield server, await server.create_database()


@pytest.fixture
async def private_owner(private: tuple[PrivateServer, DatabaseUrls]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(to_sqlalchemy(private[1].owner), poolclass=NullPool)
    yield engine
    await engine.dispose()


def _app(app_url: str, **overrides: str) -> Any:
    return create_app(
        make_settings(DB_RETRY_AFTER_SECONDS=RETRY_AFTER, **overrides), app_url=app_url
    )


def _starts(business: BusinessFixture) -> list[tuple[datetime, int]]:
    """Distinct (start, master) pairs, so no booking of the load competes with another."""
    zone = ZoneInfo(business.timezone)
    today = datetime.now(zone).date()
    times = (time(9), time(10, 15), time(11, 30), time(14), time(15, 15), time(16, 30))
    return [
        (datetime.combine(today + timedelta(days=days), at, tzinfo=zone), staff)
        for days in range(2, 40)
        for at in times
        for staff in business.staff_ids
    ]


def assert_unavailable(response: httpx.Response) -> None:
    body = assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == RETRY_AFTER
    assert CYRILLIC.search(body["detail"]), body  # the caller's language: Russian here


async def test_a_restart_under_load_is_503_then_serves_again_and_loses_no_booking(
    private: tuple[PrivateServer, DatabaseUrls], private_owner: AsyncEngine
) -> None:
    server, urls = private
    async with AsyncSession(private_owner, expire_on_commit=False) as session:
        business = await create_business(session, max_active=100)
        await session.commit()
    app = _app(urls.app)
    answers: list[Answer] = []
    phase = "before"
    done = asyncio.Event()
    free = iter(_starts(business))
    day = (datetime.now(ZoneInfo(business.timezone)) + timedelta(days=3)).date()

    async with AsyncTestClient(app, base_url="https://testserver.local") as http:
        users = [TelegramUser(language_code="ru") for _ in range(LOAD_TASKS)]
        for user in users:
            await grant_consent(http, user)

        async def load(number: int, user: TelegramUser) -> None:
            for i in range(REQUESTS_PER_TASK):
                if done.is_set():
                    return
                key, sent = None, None
                if i % 5 == 0:  # at most 60 bookings a person: within the cap of 100
                    start, staff = next(free)
                    key, sent = (
                        f"load-{number}-{i}",
                        booking_body(business.service_id, start, staff),
                    )
                    response = await http.post(
                        f"/api/v1/businesses/{business.slug}/bookings",
                        json=sent,
                        headers=user.headers(**{"Idempotency-Key": key}),
                    )
                else:
                    response = await http.get(
                        f"/api/v1/businesses/{business.slug}/availability",
                        params={"service": business.service_id, "staff": "any",
                                "date_from": str(day), "date_to": str(day)},
                        headers={"Accept-Language": "ru"},
                    )  # fmt: skip
                kind = "availability" if key is None else "booking"
                answers.append(
                    Answer(kind, phase, response.status_code, response.json(),
                           response.headers.get("retry-after"), key, sent)
                )  # fmt: skip
                await asyncio.sleep(0.005)

        async def seen(wanted_phase: str, status: int, count: int) -> bool:
            return (
                sum(1 for a in answers if a.phase == wanted_phase and a.status == status) >= count
            )

        tasks = [asyncio.create_task(load(n, user)) for n, user in enumerate(users)]
        try:
            await wait_for(lambda: seen("before", 201, 5))
            phase = "down"
            await server.stop()
            await wait_for(lambda: seen("down", 503, 10))
            # a page answers the short page in the person's language, not a 500
            page = await http.get(f"/app/b/{business.slug}", headers={"Accept-Language": "kk"})
            assert page.status_code == 503 and page.headers["retry-after"] == RETRY_AFTER
            assert KAZAKH in page.text and "text/html" in page.headers["content-type"]
            await server.start()
            phase = "after"
            await wait_for(lambda: seen("after", 201, 5))
            await wait_for(lambda: seen("after", 200, 10))
        finally:
            done.set()
            await asyncio.gather(*tasks)

        # never a 500 or another error: 2xx, or 503 while the server was away
        assert {a.status for a in answers} <= {200, 201, 503}, {a.status for a in answers}
        unavailable = [a for a in answers if a.status == 503]
        assert unavailable, "the stop was never seen"
        for answer in unavailable:
            assert answer.body["error"] == "unavailable" and answer.body["fields"] == {}
            assert answer.retry_after == RETRY_AFTER
            assert CYRILLIC.search(answer.body["detail"])

        # a client retrying a booking that got 503 with its key gets the booking that was
        # made (200, a replay) or, if none was, the one made now (201): never a second one
        retried: dict[str, int] = {}
        for answer in (a for a in unavailable if a.kind == "booking"):
            assert answer.key is not None
            number = int(answer.key.split("-")[1])
            again = await http.post(
                f"/api/v1/businesses/{business.slug}/bookings",
                json=answer.sent,
                headers=users[number].headers(**{"Idempotency-Key": answer.key}),
            )
            assert again.status_code in (200, 201), again.text
            retried[answer.key] = again.json()["id"]

    made = {a.key or "": a.body["id"] for a in answers if a.status == 201}
    async with private_owner.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT idempotency_key, id FROM bookings WHERE business_id = :b"),
                {"b": business.id},
            )
        ).all()
    by_key: dict[str, list[int]] = {}
    for key, booking_id in rows:
        by_key.setdefault(key or "", []).append(booking_id)
    # every booking answered 201 is there after the restart, and no key made two
    assert {key: by_key.get(key) for key in made} == {key: [i] for key, i in made.items()}
    assert {key: by_key.get(key) for key in retried} == {key: [i] for key, i in retried.items()}
    assert all(len(ids) == 1 for ids in by_key.values()), by_key


async def test_b_an_exhausted_pool_is_503_and_health_says_busy_not_down(
    database: DatabaseUrls, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session)
    app = _app(
        database.app,
        DB_POOL_SIZE="1",
        DB_POOL_OVERFLOW="0",
        DB_HOT_POOL_SIZE="1",
        DB_POOL_TIMEOUT_SECONDS="0.2",
    )
    db = app.state.db
    day = (datetime.now(ZoneInfo(business.timezone)) + timedelta(days=2)).date()
    query: dict[str, Any] = {
        "service": business.service_id,
        "date_from": str(day),
        "date_to": str(day),
    }
    async with AsyncTestClient(app, base_url="https://testserver.local") as http:
        assert (await http.get("/healthz")).json()["database"] == "ok"
        # the app serves from the test client's own event loop: hold its connections there
        held, release = threading.Event(), threading.Event()

        async def hold_every_connection() -> None:
            hot = await db._raw_pool()
            async with hot.acquire(), db.engine.connect():
                held.set()
                for _ in range(2000):  # the bound only catches a test that forgot to release
                    if release.is_set():
                        return
                    await asyncio.sleep(0.01)

        holder = http.blocking_portal.start_task_soon(hold_every_connection)

        async def holding() -> bool:
            return held.is_set()

        await wait_for(holding)
        try:
            availability = await http.get(
                f"/api/v1/businesses/{business.slug}/availability",
                params=query,
                headers={"Accept-Language": "ru"},
            )
            assert_unavailable(availability)
            policy = await http.get("/api/v1/policy", headers={"Accept-Language": "ru"})
            assert_unavailable(policy)
            page = await http.get(f"/app/b/{business.slug}", headers={"Accept-Language": "kk"})
            assert page.status_code == 503 and KAZAKH in page.text
            health = await http.get("/healthz")
            assert health.status_code == 200, health.text  # busy is not down
            assert health.json()["database"] == "busy"
        finally:
            release.set()
            await asyncio.wrap_future(holder)
        # the connections are back: served again
        assert (await http.get(f"/api/v1/businesses/{business.slug}/availability",
                               params=query)).status_code == 200  # fmt: skip
        assert (await http.get("/api/v1/policy")).status_code == 200


async def test_d_health_is_ok_then_503_naming_the_database_then_ok_again(
    private: tuple[PrivateServer, DatabaseUrls],
) -> None:
    server, urls = private
    app = _app(urls.app)
    async with AsyncTestClient(app, base_url="https://testserver.local") as http:
        ok = await http.get("/healthz")
        assert ok.status_code == 200
        assert ok.json() == {"status": "ok", "database": "ok", "queue": "ok"}
        await server.stop()
        down = await http.get("/healthz")
        assert down.status_code == 503
        assert down.json()["database"] == "down" and down.json()["status"] == "down"
        assert down.headers["retry-after"] == RETRY_AFTER
        await server.start()

        async def healthy() -> bool:
            return (await http.get("/healthz")).status_code == 200

        await wait_for(healthy)  # no restart of the app: its pools heal by themselves


async def test_the_first_statement_after_a_restart_is_served_on_a_fresh_connection(
    private: tuple[PrivateServer, DatabaseUrls], private_owner: AsyncEngine
) -> None:
    """A read that meets a pooled connection the restart killed goes again on a new one: the
    caller never sees the restart it slept through."""
    server, urls = private
    async with AsyncSession(private_owner, expire_on_commit=False) as session:
        business = await create_business(session)
        await session.commit()
    app = _app(urls.app)
    day = (datetime.now(ZoneInfo(business.timezone)) + timedelta(days=2)).date()
    query: dict[str, Any] = {
        "service": business.service_id,
        "date_from": str(day),
        "date_to": str(day),
    }
    async with AsyncTestClient(app, base_url="https://testserver.local") as http:
        path = f"/api/v1/businesses/{business.slug}/availability"
        assert (await http.get(path, params=query)).status_code == 200  # pools hold one each
        assert (await http.get("/api/v1/policy")).status_code == 200
        await server.stop()
        await server.start()
        assert (await http.get(path, params=query)).status_code == 200
        assert (await http.get("/api/v1/policy")).status_code == 200


def _cli(command: list[str], owner_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DB_"))},
        "POZAPISI_ENV": "test",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": owner_url,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *command],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_c_run_and_worker_refuse_to_start_when_the_pools_cannot_fit() -> None:
    async with private_server(max_connections=12) as server:
        owner = server.server.owner_url
        allowed, why = await budget.server_allows(owner)
        assert allowed == 12 - 3 and "superuser_reserved_connections 3" in why

        run = await asyncio.to_thread(_cli, ["run", "--port", str(free_port())], owner)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "DB_POOL_SIZE 5" in run.stderr and "DB_HOT_POOL_SIZE 10" in run.stderr
        assert "max_connections 12" in run.stderr
        assert "may open up to 35" in run.stderr  # 20 for the app + 15 for its worker

        await bootstrap.upgrade(owner)  # the worker connects as its own role
        worker = await asyncio.to_thread(_cli, ["worker"], owner)
        assert worker.returncode == 2, worker.stdout + worker.stderr
        assert "WORKER_POOL_SIZE 5" in worker.stderr and "QUEUE_POOL_SIZE 4" in worker.stderr

        # the same server fits a smaller budget: the check passes it
        small = make_settings(WORKER_POOL_SIZE="2", WORKER_POOL_OVERFLOW="0", QUEUE_POOL_SIZE="2")
        assert await budget.check(owner, "pozapisi worker", budget.for_worker(small)) is None
        two = budget.for_run(
            make_settings(DB_POOL_SIZE="2", DB_POOL_OVERFLOW="0", DB_HOT_POOL_SIZE="2"),
            web_workers=2,
            with_worker=False,
        )
        assert two.total == 8 and two.breakdown.startswith("2 × (")
        assert await budget.check(owner, "pozapisi run", two) is None


def test_what_counts_as_the_database_being_away() -> None:
    import asyncpg
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    away = [
        DatabaseUnavailable("no connection"),
        PoolTimeout("QueuePool limit reached"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        # seen once under a restart: the protocol still busy with the operation cut off
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        ConnectionRefusedError(111, "Connection refused"),
        FileNotFoundError(2, "No such file or directory"),
    ]
    for error in away:
        assert is_unavailable(error), error
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = asyncpg.AdminShutdownError("terminating connection")
    assert is_unavailable(wrapped)
    caller_errors = [
        asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed"),
        asyncpg.ExclusionViolationError("conflicting key value"),
        asyncpg.DataError("invalid input"),
        ValueError("bad"),
    ]
    for error in caller_errors:
        assert not is_unavailable(error), error
    assert not is_unavailable(asyncpg.InternalClientError("unexpected message type"))
