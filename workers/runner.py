"""SAQ settings: the queue, the functions, the cron jobs — and the two ways a worker runs.

* ``pozapisi worker``: a worker process (``run_worker``), as many as you like;
* ``pozapisi run``: one worker inside the web process for the demo (``in_process_worker``, a
  Litestar lifespan), so a newcomer sees messages without starting anything else.

SAQ's web UI is not mounted: it shows job arguments and results to whoever can reach it, and
PoZapisi has no operator authentication in front of it yet. Operators read the queue from
``saq_jobs`` and the outbox from ``notifications``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast

import structlog
from saq import CronJob, Queue, Worker
from saq.types import PartialTimersDict

from app.settings import Settings
from workers import billing, jobs
from workers.queue import QueueSetupError, build_queue, session_problem

log = structlog.get_logger("pozapisi.worker")

FUNCTIONS: list[Callable[..., Any]] = [jobs.relay_outbox]
# sweep often: a dead worker's relay job (and its slot key) is released within seconds
TIMERS: PartialTimersDict = {"schedule": 1, "worker_info": 10, "sweep": 10, "abort": 1}


class GracefulWorker(Worker[Any]):
    """Stops by letting the jobs that are running finish (up to ``drain_s``), then the rest.

    SAQ's own grace period waits on every task, idle ones included, so it always costs its
    full length; a relay mid-batch is what deserves the wait (its sends then repeat nothing).
    """

    drain_s: float = 0.0

    async def stop(self) -> None:
        self.event.set()
        running = [c["task"] for c in self.job_task_contexts.values() if not c["task"].done()]
        if running and self.drain_s > 0:
            await asyncio.wait(running, timeout=self.drain_s)
        await super().stop()


def cron_jobs(settings: Settings) -> list[CronJob[Any]]:
    """Seconds are the sixth cron field; SAQ runs each cron job once per tick across workers."""
    recover_every = max(1, min(30, int(settings.notify_lease_s // 2)))
    scheduled: list[CronJob[Any]] = [
        CronJob(jobs.outbox_tick, cron="* * * * * */2", timeout=30),
        CronJob(jobs.recover_stalled, cron=f"* * * * * */{recover_every}", timeout=30),
        CronJob(jobs.reminders_sweep, cron="*/5 * * * *", timeout=120),
        CronJob(jobs.expire_pending, cron="* * * * *", timeout=120),  # every minute
        CronJob(jobs.purge_expired, cron="17 * * * *", timeout=300),
        CronJob(jobs.enforce_retention, cron="41 3 * * *", timeout=600),  # daily, 03:41 UTC
        # a run longer than 5 minutes meeting the next is harmless: each notice goes once
        CronJob(jobs.announce_policy, cron="*/5 * * * *", timeout=1800),
        # daily, 03:05 UTC (08:05 in Kazakhstan, before the working day): requests due (8.6)
        CronJob(jobs.ops_requests_due, cron="5 3 * * *", timeout=300),
        # daily, 01:10 UTC (06:10 in Kazakhstan, the billing day's start): renewals and grace
        CronJob(billing.billing_daily, cron="10 1 * * *", timeout=1800),
    ]
    if settings.backups_configured:  # daily, 02:23 UTC (07:23 in Kazakhstan), before retention
        scheduled.append(CronJob(jobs.backup_daily, cron="23 2 * * *", timeout=6 * 3600))
    return scheduled


def build_worker(
    settings: Settings,
    worker_url: str,
    *,
    concurrency: int = 10,
    handle_signals: bool = True,
    graceful: bool = True,
    queue: Queue | None = None,
) -> Worker[Any]:
    """A SAQ worker wired to PoZapisi's jobs; the runtime opens in its startup hook.

    ``graceful``: on SIGTERM, running jobs may finish their sends (a deploy then repeats no
    message); the demo's in-process worker stops at once instead."""
    if problem := session_problem(settings, worker_url):
        raise QueueSetupError(problem)
    queue = queue or build_queue(
        settings.queue_url,
        worker_url,
        max_connections=settings.queue_pool_size,
        max_idle_s=settings.db_pool_idle_s,
    )

    async def startup(ctx: dict[str, Any]) -> None:
        runtime = jobs.Runtime.open(settings, worker_url, queue, str(ctx["worker"].id))
        ctx["runtime"] = runtime
        if runtime.wake is not None:
            runtime.wake.start()
        await runtime.kick()  # catch up at once: rows may have waited while no worker ran

    async def shutdown(ctx: dict[str, Any]) -> None:
        runtime = ctx.pop("runtime", None)
        if runtime is not None:
            await runtime.close()

    worker = GracefulWorker(
        queue,
        functions=cast(Any, FUNCTIONS),
        concurrency=concurrency,
        cron_jobs=cron_jobs(settings),
        startup=cast(Any, startup),
        shutdown=cast(Any, shutdown),
        timers=TIMERS,
        metadata={"service": "pozapisi", "pid": os.getpid()},
    )
    worker.drain_s = settings.notify_timeout_s + 2 if graceful else 0.0
    if not handle_signals:
        worker.SIGNALS = []  # inside uvicorn: its signal handlers stay in charge
    return worker


async def _serve(worker: Worker[Any]) -> None:
    try:
        await worker.queue.connect()
        await worker.start()
    finally:
        await worker.queue.disconnect()


def _quiet_saq(level: int = logging.INFO) -> None:
    """SAQ logs every job at INFO and warns on every stop that idle tasks were cancelled;
    its errors (a failing job, a failing upkeep task) are what an operator needs."""
    logging.getLogger("saq").setLevel(logging.DEBUG if level <= logging.DEBUG else logging.ERROR)


def configure_logging(level: str) -> None:
    """A worker process's logs: structlog at LOG_LEVEL; SAQ's per-job lines only when debugging."""
    numeric = logging.getLevelNamesMapping().get(level, logging.INFO)
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _quiet_saq(numeric)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(numeric))


def run_worker(settings: Settings, worker_url: str, *, concurrency: int = 10) -> int:
    """``pozapisi worker``: run until SIGINT/SIGTERM; exit 2 when the queue is unusable."""
    configure_logging(settings.log_level)
    try:
        worker = build_worker(settings, worker_url, concurrency=concurrency)
        asyncio.run(_serve(worker))
    except QueueSetupError as exc:
        print(f"pozapisi worker: {exc}")
        return 2
    return 0


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker.crashed", error=repr(task.exception()))


def in_process_worker(
    settings: Settings, worker_url: str
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A Litestar lifespan running one worker beside the web app (``pozapisi run``)."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        _quiet_saq()
        worker = build_worker(
            settings, worker_url, concurrency=4, handle_signals=False, graceful=False
        )
        await worker.queue.connect()
        task = asyncio.create_task(worker.start(), name="pozapisi-worker")
        task.add_done_callback(_report_crash)

        async def queue_ok(timeout_s: float = settings.health_timeout_s) -> bool:
            try:
                async with asyncio.timeout(timeout_s):
                    await worker.queue.count("queued")
            except Exception:
                return False
            return True

        app.state.queue_check = queue_ok
        try:
            yield
        finally:
            await worker.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.queue.disconnect()

    return lifespan
