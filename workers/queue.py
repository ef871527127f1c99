"""The SAQ queue: ``QUEUE_URL``, by default the app's own PostgreSQL (SAQ's Postgres queue).

SAQ's Postgres queue would create its tables on connect, which needs CREATE on the schema; the
worker role has none. Migration 0003 creates them as the owner (``pozapisi db upgrade``), so
here connecting only *checks* that they are there and current, and says what to run if not.
A ``QUEUE_URL`` naming another PostgreSQL database is treated as SAQ's own: created on connect
when the role may. ``redis://`` works too when the Redis client is installed (``saq[redis]``).

Behind a transaction pooler (``DATABASE_POOLER=transaction``) SAQ's Postgres queue cannot use
the pooled worker URL: it LISTENs for jobs and takes session advisory locks, which live as long
as a server connection the pooler hands to someone else after each transaction. It then needs
``QUEUE_URL`` (``redis://`` or a direct ``postgresql://`` URL), and the wake-up LISTEN
``DATABASE_LISTEN_URL``; ``session_problem`` says so before anything starts.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier
from psycopg_pool import AsyncConnectionPool
from saq import Queue
from saq.queue.postgres import PostgresQueue
from saq.queue.postgres_migrations import get_migrations

from app.db.urls import to_libpq
from app.settings import Settings

QUEUE_NAME = "pozapisi"


class QueueSetupError(RuntimeError):
    """The queue cannot be used as configured; the message says what to do."""


def schema_version() -> int:
    migrations = get_migrations(
        jobs_table=Identifier("saq_jobs"), stats_table=Identifier("saq_stats")
    )
    return int(migrations[-1][0])


class CheckedPostgresQueue(PostgresQueue):
    """SAQ's Postgres queue that expects its tables to exist instead of creating them."""

    async def connect(self) -> None:
        try:
            await super().connect()
        except BaseException:
            if self._manage_pool_lifecycle:
                await self.pool.close()  # no pool tasks left behind by a refused start
            raise

    async def init_db(self) -> None:
        version = await self._installed_version()
        if version == schema_version():
            return
        if version is not None:
            raise QueueSetupError(
                f"the queue tables are at version {version}, this SAQ needs {schema_version()}: "
                "run `pozapisi db upgrade`"
            )
        try:
            await super().init_db()  # a database of the queue's own (QUEUE_URL)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise QueueSetupError(
                "the queue tables are missing and this role may not create them: "
                "run `pozapisi db upgrade`"
            ) from exc

    async def _installed_version(self) -> int | None:
        query = SQL("SELECT max(version) FROM {}").format(self.versions_table)
        async with self.pool.connection() as conn, conn.cursor() as cursor:
            try:
                await cursor.execute(query)
            except psycopg.errors.UndefinedTable:
                return None
            row = await cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else None


def session_problem(settings: Settings, worker_url: str) -> str | None:
    """Why a worker cannot start behind a transaction pooler as configured, or None."""
    if not settings.transaction_pooler:
        return None
    queue_url = settings.queue_url or worker_url
    if not queue_url.startswith(("redis://", "rediss://")) and (
        not settings.queue_url or queue_url == worker_url
    ):
        return (
            "DATABASE_POOLER=transaction: SAQ's Postgres queue needs a session of its own (it "
            "LISTENs and takes session advisory locks), which a transaction pooler does not "
            "keep. Set QUEUE_URL to redis://… or to a direct postgresql:// URL of the database "
            "(not through the pooler)"
        )
    if not settings.database_listen_url or settings.database_listen_url == worker_url:
        return (
            "DATABASE_POOLER=transaction: the workers' LISTEN for new notifications needs a "
            "session of its own, which a transaction pooler does not keep. Set "
            "DATABASE_LISTEN_URL to a direct postgresql:// URL of the database (the worker role, "
            "not through the pooler)"
        )
    return None


def build_queue(
    queue_url: str | None,
    worker_url: str,
    *,
    max_connections: int = 4,
    max_idle_s: float = 30.0,
    name: str = QUEUE_NAME,
) -> Queue:
    """The queue named by QUEUE_URL, else SAQ's Postgres queue on the app's database."""
    url = queue_url or worker_url
    if url.startswith(("redis://", "rediss://")):
        try:
            import redis  # noqa: F401
        except ModuleNotFoundError as exc:
            raise QueueSetupError(
                "QUEUE_URL is a redis:// URL but the Redis client is not installed "
                '(add "saq[redis]" to the dependencies)'
            ) from exc
        return Queue.from_url(url, name=name)
    kwargs: dict[str, Any] = {"autocommit": True, "application_name": "pozapisi-worker"}
    pool = AsyncConnectionPool(
        to_libpq(url),
        kwargs=kwargs,
        min_size=1,
        max_size=max_connections,
        max_idle=max_idle_s,  # connections beyond min_size close when idle this long
        open=False,
        check=AsyncConnectionPool.check_connection,
    )
    return CheckedPostgresQueue(
        pool=pool,
        name=name,
        manage_pool_lifecycle=True,
        min_size=1,
        max_size=max_connections,
    )
