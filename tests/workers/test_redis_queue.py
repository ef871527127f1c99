"""``QUEUE_URL=redis://…``: real ``pozapisi worker`` processes on SAQ's Redis queue.

The outbox stays in PostgreSQL; only the jobs (the relay kicks and the cron ticks) move to
Redis. Two workers on one private ``redis-server`` still deliver each row exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from saq import Queue
from saq.queue.redis import RedisQueue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.support.redis_server import without_sweep_race
from tests.workers.conftest import poll
from tests.workers.provider_stub import ProviderStub
from tests.workers.test_worker_processes import _sent_by, all_sent, code_of, queue_codes
from workers.queue import QUEUE_NAME, build_queue

ROWS = 1000


async def test_workers_on_a_redis_queue_deliver_each_row_once(
    redis_url: str,  # first: the server outlives the workers, which stop before it
    spawn_worker: Any,
    wowner: AsyncEngine,
    owner: AsyncSession,
    stub: ProviderStub,
) -> None:
    queue = build_queue(redis_url, "postgresql://unused@127.0.0.1/unused")
    assert isinstance(queue, RedisQueue)
    await queue.connect()
    try:
        # Redis hands each job to the dequeuer that has waited longest, so a worker with more
        # free slots than there are relay jobs (4 per worker) would run them all: 4 slots each
        workers = [spawn_worker(4, QUEUE_URL=redis_url) for _ in range(2)]

        async def both_up() -> bool:
            info = await queue.info()  # SAQ's worker stats, kept in Redis
            async with wowner.connect() as conn:
                listening = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = 'pozapisi-wake'"
                    )
                )
            return len(info["workers"]) >= 2 and int(listening or 0) >= 2

        await poll(both_up)
        stub.delay_s = 0.05  # ~6 s for one worker alone: longer than the other one's cron tick
        codes, ids = await queue_codes(wowner, owner, ROWS, "6")
        await poll(lambda: all_sent(wowner, ids), timeout_s=120)
        await asyncio.sleep(2.5)  # nothing more arrives after the outbox says "sent"

        delivered = Counter(code_of(c.text) for c in stub.accepted())
        assert sorted(delivered) == codes, "every row delivered"
        assert set(delivered.values()) == {1}, "a row was sent twice"
        shares = [_sent_by(w.output()) for w in workers]
        print(f"rows sent by each worker: {shares}")
        assert sum(shares) == ROWS and min(shares) > 0, "both workers took part"

        # the jobs ran on Redis: both processes are SAQ workers there, the cron ticks are jobs
        # there (the relay jobs are forgotten once finished) …
        info = await queue.info()
        pids = {(w["metadata"] or {}).get("pid") for w in info["workers"].values()}
        assert pids == {w.proc.pid for w in workers}
        keys = await _job_keys(queue)
        assert {"cron:outbox_tick", "cron:recover_stalled"} <= keys, keys
        # … and none of them went to SAQ's queue in PostgreSQL
        async with wowner.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM saq_jobs")) == 0
        for worker in workers:
            assert "Traceback" not in without_sweep_race(worker.output()), worker.output()
    finally:
        await queue.disconnect()


async def _job_keys(queue: Queue) -> set[str]:
    redis = queue.redis  # type: ignore[attr-defined]
    prefix = f"saq:job:{QUEUE_NAME}:"
    return {key.decode()[len(prefix) :] async for key in redis.scan_iter(match=f"{prefix}*")}
