"""Scale-out as production runs it, on this machine: two app processes and two workers behind
PgBouncer (transaction pooling, ``DATABASE_POOLER=transaction``), the queue on Redis.

* two ``pozapisi run --no-worker`` processes on their own ports, ``DATABASE_APP_URL`` through
  PgBouncer (migrations ran on the direct owner URL, as ``pozapisi run`` does them);
* two ``pozapisi worker`` processes: ``DATABASE_WORKER_URL`` through PgBouncer, their LISTEN on
  a direct connection (``DATABASE_LISTEN_URL``), SAQ's jobs on a private ``redis-server``;
* a loopback Telegram stub as the provider.

Through them: 50 clients race for one slot, alternating between the two app servers (exactly
one wins), and bookings made through both are each told to their client and their business
exactly once. Skipped only when pgbouncer or redis-server is not installed (``make test``
installs both).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import time as clock
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.urls import to_sqlalchemy
from tests.conftest import BOT_TOKEN, ROOT, SECRET_KEY, ServerHandle, free_port
from tests.factories import local_start, new_business
from tests.helpers import TelegramUser, assert_error, booking_body, grant_consent
from tests.support import pgbouncer as bouncer_support
from tests.support import redis_server as redis_support
from tests.workers.provider_stub import ProviderStub

RACERS = 50
BOOKINGS = 24  # part (b): distinct clients, distinct slots, half through each app server
SLOT_TIMES = (clock(9), clock(10, 15), clock(11, 30), clock(14), clock(15, 15), clock(16, 30))


@dataclass
class Process:
    """A ``pozapisi`` subprocess with its output in a file (read on failure)."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Cluster:
    urls: DatabaseUrls
    bouncer: bouncer_support.Bouncer
    stub: ProviderStub
    apps: list[str]  # the two app servers' base URLs
    workers: list[Process] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> Process:
    log_path = logs / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Process(name, proc, log_path)


def _wait_healthy(process: Process, url: str) -> None:
    deadline = time.monotonic() + 90  # only catches a server that never comes up
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise AssertionError(f"{process.name} exited during start-up:\n{process.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{process.name} never became healthy:\n{process.output()}")


@pytest.fixture(scope="module")
async def scale_db(main_server: ServerHandle) -> DatabaseUrls:
    """A database of this module's own: the workers take every due row of the outbox."""
    return await main_server.create_database()


@pytest.fixture(scope="module")
def cluster(scale_db: DatabaseUrls) -> Iterator[Cluster]:
    missing = [
        reason
        for found, reason in (
            (bouncer_support.pgbouncer_executable(), bouncer_support.SKIP_REASON),
            (redis_support.redis_server_executable(), redis_support.SKIP_REASON),
        )
        if found is None
    ]
    if missing:
        pytest.skip("; ".join(missing))
    logs = Path(tempfile.mkdtemp(prefix="pz-scale-out-"))
    stub = ProviderStub(bot_token=BOT_TOKEN).start()
    with (
        bouncer_support.private_pgbouncer(scale_db.owner, pool_size=20) as bouncer,
        redis_support.private_redis() as redis_url,
    ):
        base = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DATABASE_", "TEST_DATABASE", "QUEUE_URL"))
            },
            "POZAPISI_ENV": "test",
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "SECRET_KEY": SECRET_KEY,
            "LANDING_BASE_URL": "https://pozapisi.kz",
            "DATA_DIR": str(logs / "data"),
            "TELEGRAM_API_URL": stub.telegram_url,
            "PUBLIC_BASE_URL": "https://app.pozapisi.test",
            # migrations and the connection budget: the direct owner URL, never the pooler
            "DATABASE_URL": scale_db.owner,
            "DATABASE_POOLER": "transaction",
            "DATABASE_APP_URL": bouncer.url(scale_db.app),
            "DATABASE_WORKER_URL": bouncer.url(scale_db.worker),
            "DATABASE_LISTEN_URL": scale_db.worker,  # direct: LISTEN keeps its session
            "QUEUE_URL": redis_url,
            # every request here comes from 127.0.0.1: the per-network sign-in limit would
            # count a crowd of distinct clients as one
            "RATE_LIMIT_SIGN_IN_IP": "100000/minute",
            "NOTIFY_TIMEOUT_SECONDS": "5",
            "NOTIFY_LEASE_SECONDS": "8",
        }
        cluster = Cluster(scale_db, bouncer, stub, apps=[])
        try:
            # one after the other: each `pozapisi run` checks migrations and the demo first
            for n in range(2):
                port = free_port()
                app = _spawn(
                    f"app-{n}",
                    ["run", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
                    base,
                    logs,
                )
                cluster.processes.append(app)
                url = f"http://127.0.0.1:{port}"
                _wait_healthy(app, url)
                cluster.apps.append(url)
            for n in range(2):
                worker = _spawn(f"worker-{n}", ["worker", "--concurrency", "4"], base, logs)
                cluster.processes.append(worker)
                cluster.workers.append(worker)
            yield cluster
        finally:
            for process in cluster.processes:
                if process.proc.poll() is None:
                    process.proc.terminate()  # all at once: each may take its grace period
            for process in cluster.processes:
                process.stop()
            stub.stop()
    for process in cluster.processes:
        output = redis_support.without_sweep_race(process.output())
        assert "Traceback" not in output, f"{process.name}:\n{output}"


@pytest.fixture(scope="module")
async def scale_owner(scale_db: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(to_sqlalchemy(scale_db.owner), poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture
async def owner_db(scale_owner: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(scale_owner, expire_on_commit=False) as session:
        yield session
        await session.rollback()


def _http() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=120,  # only catches a hang
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=0),
    )


async def _consent(http: httpx.AsyncClient, cluster: Cluster, count: int) -> list[TelegramUser]:
    users = [TelegramUser() for _ in range(count)]
    for i, user in enumerate(users):
        http.base_url = httpx.URL(cluster.apps[i % 2])  # set before each request is built
        await grant_consent(http, user)
    return users


async def _post(
    http: httpx.AsyncClient, base: str, slug: str, body: dict[str, Any], user: TelegramUser
) -> httpx.Response:
    """The booking request, sent again while the server answers 503, as a client would. Here a
    503 means no pooled connection came free in time (the designed answer when 50 racers crowd
    two servers on a busy machine, seen in CI): answered before any statement was sent."""
    for _attempt in range(40):
        response = await http.post(
            f"{base}/api/v1/businesses/{slug}/bookings", json=body, headers=user.headers()
        )
        if response.status_code != 503:
            return response
        await asyncio.sleep(0.25)
    return response


async def test_fifty_racers_over_two_app_servers_leave_exactly_one_booking(
    cluster: Cluster, owner_db: AsyncSession
) -> None:
    business = await new_business(owner_db)
    start = local_start(business, days_ahead=5, at=clock(11))
    master = business.staff_ids[0]
    body = booking_body(business.service_id, start, master)
    async with _http() as http:
        users = await _consent(http, cluster, RACERS)
        responses = await asyncio.gather(
            *(
                _post(http, cluster.apps[i % 2], business.slug, body, user)
                for i, user in enumerate(users)
            )
        )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: RACERS - 1}, (statuses, [r.text for r in responses][:3])
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "slot_taken")
    # both servers answered: the race really ran across the two processes
    by_server = Counter(
        str(r.request.url).split("/api/")[0] for r in responses if r.status_code in (201, 409)
    )
    assert set(by_server) == set(cluster.apps) and set(by_server.values()) == {RACERS // 2}
    winner = next(r for r in responses if r.status_code == 201).json()
    rows = (
        await owner_db.execute(
            text(
                "SELECT id, staff_id, lower(period) AS s FROM bookings WHERE business_id = :b "
                "AND status IN ('pending', 'confirmed')"
            ),
            {"b": business.id},
        )
    ).all()
    assert [(r.id, r.staff_id, r.s) for r in rows] == [(winner["id"], master, start)]


async def test_bookings_through_both_servers_are_told_exactly_once(
    cluster: Cluster, owner_db: AsyncSession, scale_owner: AsyncEngine
) -> None:
    await _both_workers_up(cluster, scale_owner)
    business = await new_business(owner_db, masters=1)
    starts = [
        local_start(
            business, days_ahead=7 + n // len(SLOT_TIMES), at=SLOT_TIMES[n % len(SLOT_TIMES)]
        )
        for n in range(BOOKINGS)
    ]
    cluster.stub.delay_s = 0.02  # a provider that takes a moment, so both workers get a share
    async with _http() as http:
        users = await _consent(http, cluster, BOOKINGS)
        responses = await asyncio.gather(
            *(
                _post(
                    http,
                    cluster.apps[i % 2],
                    business.slug,
                    booking_body(business.service_id, start, business.staff_ids[0]),
                    user,
                )
                for i, (user, start) in enumerate(zip(users, starts, strict=True))
            )
        )
    assert [r.status_code for r in responses] == [201] * BOOKINGS, [r.text for r in responses]
    ids = [r.json()["id"] for r in responses]
    codes = dict(
        (
            await owner_db.execute(
                text("SELECT id, public_code FROM bookings WHERE id = ANY(:ids)"), {"ids": ids}
            )
        ).all()
    )
    assert len(codes) == BOOKINGS

    due = text(
        "SELECT n.id, n.status, n.attempts, a.telegram_id, b.public_code FROM notifications n "
        "JOIN accounts a ON a.id = n.account_id JOIN bookings b ON b.id = n.booking_id "
        "WHERE n.business_id = :b AND n.scheduled_at <= now()"
    )

    async def all_delivered() -> list[Any] | None:
        async with scale_owner.connect() as conn:
            rows = (await conn.execute(due, {"b": business.id})).all()
        return rows if rows and all(r.status == "sent" for r in rows) else None

    rows = await _poll(all_delivered)
    await asyncio.sleep(2.5)  # nothing more arrives after the outbox says "sent"

    # every booking is told to its client and to the business's owner: one row each …
    assert {r.public_code for r in rows} == set(codes.values())
    assert len(rows) == 2 * BOOKINGS, [(r.telegram_id, r.public_code) for r in rows]
    assert {r.attempts for r in rows} == {1}
    # … and each row reached Telegram exactly once: per chat, per booking code
    expected = Counter((str(r.telegram_id), r.public_code) for r in rows)
    # (the stub also holds the messages of other tests' bookings: each names its booking)
    calls = [
        (call.address, code)
        for call in cluster.stub.accepted("telegram")
        for code in codes.values()
        if code in call.text
    ]
    assert len(calls) == len(rows), "a message was sent twice, or one went missing"
    delivered = Counter(calls)
    assert delivered == expected
    # the roles' work went through PgBouncer; only the two LISTENs went straight to PostgreSQL
    sessions = await _sessions(scale_owner)
    assert sessions[("pozapisi_worker", "pozapisi-wake")] == 2, sessions
    # (every session the app and the workers name; the connection budget's check names none)
    direct = {
        k: n for k, n in sessions.items() if k[1].startswith("pozapisi") and "via" not in k[1]
    }
    assert direct == {("pozapisi_worker", "pozapisi-wake"): 2}, sessions
    assert sessions[("pozapisi_app", "pozapisi via pgbouncer")] > 0, sessions
    assert sessions[("pozapisi_worker", "pozapisi via pgbouncer")] > 0, sessions
    assert set(delivered.values()) == {1}
    shares = [
        sum(map(int, re.findall(r"relay\.drained +sent=(\d+)", w.output())))
        for w in cluster.workers
    ]
    print(f"rows sent by each worker: {shares}")


async def _sessions(engine: AsyncEngine) -> Counter[tuple[str, str]]:
    """This database's sessions by role and application_name ("… via pgbouncer" when PgBouncer
    opened them: it appends the client's address, application_name_add_host)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT usename, regexp_replace(application_name, ' - 127\\.0\\.0\\.1:[0-9]+$', "
                "' via pgbouncer') FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        )
        return Counter((str(user), str(name)) for user, name in rows)


async def _both_workers_up(cluster: Cluster, engine: AsyncEngine) -> None:
    """Both workers listen before the rows arrive, directly: a session through PgBouncer would
    show as "pozapisi-wake - 127.0.0.1:<port>" (application_name_add_host)."""

    async def listening() -> bool:
        for worker in cluster.workers:
            if worker.proc.poll() is not None:
                raise AssertionError(f"{worker.name} exited:\n{worker.output()}")
        async with engine.connect() as conn:
            found = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'pozapisi-wake'"
                )
            )
        return int(found or 0) >= 2

    await _poll(listening)


async def _poll(predicate: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s  # only catches a hang
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached (the workers seem stuck)")
        await asyncio.sleep(0.1)
