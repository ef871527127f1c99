"""Notification throughput beside SAQ's own, measured in one run on one machine.

* **SAQ no-op jobs/s**: two worker processes running nothing but ``noop`` jobs from SAQ's
  Postgres queue (concurrency 10 each); N jobs enqueued, timed until all are complete.
* **Notifications delivered/s**: two real ``pozapisi worker`` processes (worker role, the same
  queue kind) relaying N committed ``notifications`` rows to a loopback Telegram Bot API stub,
  timed from the commit until every row is ``sent``.
* **ratio** = notifications/s ÷ no-op jobs/s. Above 1 means the relay costs less per message
  than SAQ costs per empty job: the relay takes rows in batches (one claim, one job, many
  messages), so the queue is not the ceiling.

``run()`` returns the figures; ``bench/__main__.py`` prints them. Environment:
BENCH_NOTIFY_ROWS (default 3000), BENCH_NOOP_JOBS (default 2000); the database is chosen like
the rest of the benchmark (``bench.fixtures.open_database``) and dropped at the end.

    python -m bench.notifications          # this benchmark alone
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from app.db.urls import WORKER_ROLE, to_libpq, with_user
from bench import fixtures
from tests.workers.provider_stub import ProviderStub

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "123456:BENCH-bot-token-for-pozapisi"  # noqa: S105 - a loopback stub's token
SECRET_KEY = "bench-secret-key-0123456789abcdef-0123456789"  # noqa: S105
NOOP_QUEUE = "bench-noop"
WORKERS = 2
CONCURRENCY = 10
TIMEOUT_S = 600.0  # only catches a hang


def _int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


async def _wait(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not await predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"benchmark stuck: {what}")
        await asyncio.sleep(0.02)


async def _scalar(owner: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(to_libpq(owner))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def _workers_alive(owner: str, queue: str, count: int) -> None:
    async def alive() -> bool:
        n = await _scalar(
            owner,
            "SELECT count(*) FROM saq_stats WHERE queue_key = $1 "
            "AND expire_at >= extract(epoch FROM now())",
            queue,
        )
        return int(n or 0) >= count

    await _wait(alive, f"{count} workers on queue {queue}")


async def measure_saq_noop(owner: str, env: dict[str, str], jobs: int) -> dict[str, float]:
    from workers.queue import build_queue

    worker_url = with_user(owner, WORKER_ROLE)
    processes = [
        _spawn(["-m", "bench.notifications", "noop-worker", worker_url], env)
        for _ in range(WORKERS)
    ]
    queue = build_queue(None, worker_url, name=NOOP_QUEUE)
    try:
        await _workers_alive(owner, NOOP_QUEUE, WORKERS)
        await queue.connect()
        started = time.perf_counter()
        for n in range(jobs):
            await queue.enqueue("noop", key=f"noop:{n}")

        async def done() -> bool:
            complete = await _scalar(
                owner,
                "SELECT count(*) FROM saq_jobs WHERE queue = $1 AND status = 'complete'",
                NOOP_QUEUE,
            )
            return int(complete or 0) >= jobs

        await _wait(done, "no-op jobs")
        elapsed = time.perf_counter() - started
    finally:
        await queue.disconnect()
        _stop(processes)
    return {"saq_noop_jobs": jobs, "saq_noop_s": elapsed, "saq_noop_jobs_per_s": jobs / elapsed}


async def measure_relay(owner: str, env: dict[str, str], rows: int) -> dict[str, float]:
    processes = [
        _spawn(["-m", "app.cli", "worker", "--concurrency", str(CONCURRENCY)], env)
        for _ in range(WORKERS)
    ]
    try:
        await _workers_alive(owner, "pozapisi", WORKERS)
        conn = await asyncpg.connect(to_libpq(owner))
        try:
            account_id = await conn.fetchval(
                "INSERT INTO accounts (name, telegram_id, allows_write_to_pm) "
                "VALUES ('Bench', 900000001, true) RETURNING id"
            )
            records = [
                (account_id, "otp.code", json.dumps({"code": f"{n:06d}", "ttl_min": 60}),
                 f"bench:{n}")
                for n in range(rows)
            ]  # fmt: skip
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO notifications (account_id, event, payload, idempotency_key) "
                    "VALUES ($1, $2, $3::jsonb, $4)",
                    records,
                )
                started = time.perf_counter()  # the commit is where delivery can begin
        finally:
            await conn.close()

        async def delivered() -> bool:
            left = await _scalar(owner, "SELECT count(*) FROM notifications WHERE status <> 'sent'")
            return int(left or 0) == 0

        await _wait(delivered, "notifications")
        elapsed = time.perf_counter() - started
    finally:
        _stop(processes)
    return {"notify_rows": rows, "notify_s": elapsed, "notify_rows_per_s": rows / elapsed}


async def _run(rows: int, jobs: int) -> dict[str, Any]:
    database = await fixtures.open_database()
    stub = ProviderStub(bot_token=BOT_TOKEN).start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TEST_DATABASE"))},
        "POZAPISI_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": SECRET_KEY,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_URL": stub.telegram_url,
        "PUBLIC_BASE_URL": "https://app.pozapisi.test",
        "DATABASE_URL": database.owner,
    }
    try:
        noop = await measure_saq_noop(database.owner, env, jobs)
        relay = await measure_relay(database.owner, env, rows)
        accepted = len(stub.accepted("telegram"))
    finally:
        stub.stop()
        await database.close()
    return {
        "workers": WORKERS,
        **relay,
        **noop,
        "ratio": relay["notify_rows_per_s"] / noop["saq_noop_jobs_per_s"],
        "stub_accepted": accepted,
        "database": database.kind,
    }


def run() -> dict[str, Any]:
    """Notifications/s (2 workers, loopback Telegram stub), SAQ no-op jobs/s, and their ratio."""
    return asyncio.run(_run(_int("BENCH_NOTIFY_ROWS", 3000), _int("BENCH_NOOP_JOBS", 2000)))


async def _noop(_ctx: dict[str, Any]) -> None:
    return None


def _noop_worker(worker_url: str) -> None:
    """A SAQ worker that runs only ``noop``: the queue's own cost per job."""
    from saq import Worker

    from workers.queue import build_queue

    queue = build_queue(None, worker_url, name=NOOP_QUEUE)
    worker: Worker[Any] = Worker(queue, functions=[("noop", _noop)], concurrency=CONCURRENCY)

    async def serve() -> None:
        await queue.connect()
        try:
            await worker.start()
        finally:
            await queue.disconnect()

    asyncio.run(serve())


def _print(result: dict[str, Any]) -> None:
    print(
        f"notifications: {result['notify_rows']} rows in {result['notify_s']:.2f} s = "
        f"{result['notify_rows_per_s']:.0f}/s with {result['workers']} workers\n"
        f"SAQ no-op:     {result['saq_noop_jobs']} jobs in {result['saq_noop_s']:.2f} s = "
        f"{result['saq_noop_jobs_per_s']:.0f}/s with {result['workers']} workers\n"
        f"ratio notifications/no-op: {result['ratio']:.2f}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["noop-worker"]:
        _noop_worker(sys.argv[2])
    else:
        _print(run())
