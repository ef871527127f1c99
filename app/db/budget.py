"""Connections are a budget: what each process may open must fit the server's limit.

PostgreSQL refuses connections past ``max_connections`` (less the slots kept for superusers),
and a pool that cannot grow turns into failed requests or a worker that never gets a
connection. So ``pozapisi run`` and ``pozapisi worker`` add up, before they start, the most
their pools may hold (every pool's size is a setting) and refuse to start when that cannot fit,
naming the settings to lower.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from app.settings import Settings

from .urls import to_libpq

WAKE_LISTENER = 1  # workers/wake.py holds one connection for LISTEN


@dataclass(frozen=True, slots=True)
class Need:
    """The most connections one command may hold, and how that number is made up."""

    total: int
    breakdown: str


def _worker_part(settings: Settings) -> tuple[int, str]:
    count = settings.worker_pool_size + settings.worker_pool_overflow + WAKE_LISTENER
    parts = (
        f"WORKER_POOL_SIZE {settings.worker_pool_size} + "
        f"WORKER_POOL_OVERFLOW {settings.worker_pool_overflow}"
    )
    queue_url = settings.queue_url or ""
    if not queue_url.startswith(("redis://", "rediss://")):  # SAQ's queue in PostgreSQL
        count += settings.queue_pool_size
        parts += f" + QUEUE_POOL_SIZE {settings.queue_pool_size}"
    return count, parts + f" + {WAKE_LISTENER} listener"


def for_run(settings: Settings, *, web_workers: int, with_worker: bool) -> Need:
    """``pozapisi run``: each uvicorn worker has the app's pools (and, unless ``--no-worker``,
    a notification worker of its own)."""
    app = settings.db_pool_size + settings.db_pool_overflow + settings.db_hot_pool_size
    parts = (
        f"DB_POOL_SIZE {settings.db_pool_size} + DB_POOL_OVERFLOW {settings.db_pool_overflow} + "
        f"DB_HOT_POOL_SIZE {settings.db_hot_pool_size}"
    )
    if with_worker:
        worker, worker_parts = _worker_part(settings)
        app += worker
        parts += f" + {worker_parts}"
    total = app * web_workers
    return Need(total, f"{web_workers} × ({parts})" if web_workers > 1 else parts)


def for_worker(settings: Settings) -> Need:
    """``pozapisi worker``: the worker's pool, SAQ's queue pool and the wake-up listener."""
    total, parts = _worker_part(settings)
    return Need(total, parts)


async def server_allows(url: str, timeout_s: float = 10.0) -> tuple[int, str]:
    """How many connections ordinary roles may open on this server, and why that many."""
    # no named statement: the URL may be a transaction pooler's (DATABASE_POOLER)
    connection = await asyncpg.connect(to_libpq(url), timeout=timeout_s, statement_cache_size=0)
    try:
        rows = await connection.fetch(
            "SELECT name, setting::int AS value FROM pg_settings WHERE name IN "
            "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
        )
    finally:
        await connection.close()
    values = {row["name"]: row["value"] for row in rows}
    allowed = values["max_connections"]
    why = f"max_connections {allowed}"
    for reserved in ("superuser_reserved_connections", "reserved_connections"):  # 16+: the latter
        if values.get(reserved):
            allowed -= values[reserved]
            why += f" − {reserved} {values[reserved]}"
    return allowed, why


def refusal(command: str, need: Need, allowed: int, why: str) -> str | None:
    """The message to stop with, or None when the budget fits."""
    if need.total <= allowed:
        return None
    return (
        f"`{command}` may open up to {need.total} database connections ({need.breakdown}), "
        f"but the server allows {allowed} ({why}). Lower those settings or raise the server's "
        "max_connections; other clients of the server need some too."
    )


async def check(url: str, command: str, need: Need) -> str | None:
    """Why ``command`` must not start (the budget does not fit, or the server cannot be asked),
    or None."""
    try:
        allowed, why = await server_allows(url)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        return f"cannot reach PostgreSQL to check the connection budget: {error}"
    return refusal(command, need, allowed, why)
