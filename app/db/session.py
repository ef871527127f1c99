"""Engines and the one transaction helper.

Every unit of work runs in ``db.transaction(business_id=…, account_id=…)``: the tenant and the
signed-in person are set with ``set_config(…, true)``, i.e. for that transaction only, so a
pooled connection never carries them over to the next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
from sqlalchemy import event, exc, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings

from .faults import DatabaseUnavailable, is_unavailable, was_not_sent
from .urls import to_libpq, to_sqlalchemy

_SET_CONTEXT = text(
    "SELECT set_config('app.business_id', :business_id, true), "
    "set_config('app.account_id', :account_id, true)"
)


_SET_ONE = text("SELECT set_config(:name, :value, true)")


# the hot-path statements that write nothing (their set_config(…, true) lasts the statement):
# one that met a dead connection may be sent again on a fresh one. pz_booking_insert may not.
_READ_ONLY = ("SELECT pz_availability(", "SELECT pz_booking_context(")


@dataclass(frozen=True, slots=True)
class Pools:
    """Sizes and waits of one process's connections to the database (README "Connections")."""

    size: int = 5  # SQLAlchemy: kept open
    overflow: int = 5  # SQLAlchemy: opened under load, closed when returned
    hot_size: int = 10  # asyncpg, the hot paths
    idle_s: float = 30.0  # an idle hot-path connection is closed after this
    timeout_s: float = 5.0  # a request waits this long for a pooled connection, then 503
    connect_timeout_s: float = 2.0
    # DATABASE_POOLER=transaction: no statement stays prepared past its own round trip
    transaction_pooler: bool = False

    @classmethod
    def of_app(cls, settings: Settings) -> Pools:
        return cls(
            size=settings.db_pool_size,
            overflow=settings.db_pool_overflow,
            hot_size=settings.db_hot_pool_size,
            idle_s=settings.db_pool_idle_s,
            timeout_s=settings.db_pool_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
            transaction_pooler=settings.transaction_pooler,
        )

    @classmethod
    def of_worker(cls, settings: Settings) -> Pools:
        return cls(
            size=settings.worker_pool_size,
            overflow=settings.worker_pool_overflow,
            hot_size=0,
            idle_s=settings.db_pool_idle_s,
            timeout_s=settings.db_pool_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
            transaction_pooler=settings.transaction_pooler,
        )

    @property
    def connections(self) -> int:
        """The most this process may hold open at once."""
        return self.size + self.overflow + self.hot_size


def pooler_connect_args(transaction_pooler: bool) -> dict[str, Any]:
    """asyncpg's arguments for a connection that may meet a transaction pooler.

    PgBouncer 1.18 in ``pool_mode = transaction`` hands each transaction — and each statement
    outside one — to whichever server connection is free: a statement prepared by name on one
    is unknown on the next. So no name at all: asyncpg's own cache off (``statement_cache_size
    = 0``) makes every statement, SQLAlchemy's ``prepare()`` included, the unnamed one, sent
    again with its Bind/Execute before one Sync (asyncpg#1065), and SQLAlchemy keeps none
    (``prepared_statement_cache_size = 0``). Its documented alternative, a unique
    ``prepared_statement_name_func``, is not used: a named statement prepared outside a
    transaction (the relay records outcomes in autocommit) is executed on another server
    connection than the one that knows it (``test_transaction_pooler`` shows the failure), and
    the statements it does run may stay prepared on the servers."""
    if not transaction_pooler:
        return {}
    return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}


def make_engine(
    dsn: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout_s: float = 5.0,
    connect_timeout_s: float = 2.0,
    transaction_pooler: bool = False,
) -> AsyncEngine:
    engine = create_async_engine(
        to_sqlalchemy(dsn),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        # no pre-ping: a round trip per checkout. A connection the server closed is seen
        # without one (_closed_at_checkout); one that breaks in use invalidates the pool
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={
            "server_settings": {"application_name": "pozapisi"},
            "timeout": connect_timeout_s,
            **pooler_connect_args(transaction_pooler),
        },
    )
    event.listen(engine.sync_engine, "checkout", _closed_at_checkout)
    event.listen(engine.sync_engine, "handle_error", _dead_connection)
    return engine


def _closed_at_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection whose server went away (a restart, an admin's terminate) is known
    closed by asyncpg as soon as the event loop read the goodbye: a local check, no round trip.
    SQLAlchemy's pool replaces it with a fresh connection."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def _dead_connection(context: ExceptionContext) -> None:
    """A statement failed because of its connection (reset, shutdown, "another operation is in
    progress"): throw it away, and with it every connection opened before (the server they
    talk to may have restarted), instead of lending it to the next request."""
    if context.connection is not None and is_unavailable(context.original_exception):
        context.is_disconnect = True


async def _reset_after_statement(connection: asyncpg.Connection) -> None:
    """What a connection needs before its next user: nothing but leaving a transaction.

    The pool's statements leave no session state behind (the ``pz_*`` functions set the tenant
    with ``set_config(…, true)``, for their own transaction; no SET, LISTEN, cursor or session
    advisory lock), so asyncpg's default reset (``RESET ALL`` and friends: one more round trip
    per request, as costly here as the statement itself) is skipped. ``test_hot_paths`` checks
    that a reused connection carries no tenant."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class Database:
    """The runtime (non-owner, RLS-bound) engine and its sessions, and a plain asyncpg pool for
    the hot paths: one statement (a ``pz_*`` function, see migration 0006) per round trip, in
    its own implicit transaction, with asyncpg's prepared-statement cache (off behind a
    transaction pooler: ``pooler_connect_args``) and no ORM.

    When the server is out of reach a call raises an error ``app.db.faults.is_unavailable``
    recognizes (answered 503); the pools heal by themselves once it is back."""

    def __init__(
        self, app_url: str, pools: Pools | None = None, *, pool_size: int | None = None
    ) -> None:
        """``pool_size`` alone (tests): both pools of that size."""
        self.url = app_url
        self.pools = pools or Pools()
        if pool_size is not None:
            self.pools = replace(self.pools, size=pool_size, hot_size=pool_size)
        self.engine = make_engine(
            app_url,
            pool_size=self.pools.size,
            max_overflow=self.pools.overflow,
            pool_timeout_s=self.pools.timeout_s,
            connect_timeout_s=self.pools.connect_timeout_s,
            transaction_pooler=self.pools.transaction_pooler,
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    async def _raw_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        to_libpq(self.url),
                        min_size=0,
                        max_size=self.pools.hot_size,
                        max_inactive_connection_lifetime=self.pools.idle_s,
                        timeout=self.pools.connect_timeout_s,
                        server_settings={"application_name": "pozapisi"},
                        reset=_reset_after_statement,
                        # behind a transaction pooler, the unnamed statement only: see
                        # pooler_connect_args (one statement per call, in autocommit, still
                        # one Parse/Bind/Execute/Sync, so it stays on one server connection)
                        statement_cache_size=0 if self.pools.transaction_pooler else 100,
                    )
        return self._pool

    async def _acquire(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        # a bound on the wait costs a task per acquire (asyncio.wait_for): only pay it when
        # the pool is full and this request would queue behind the others
        full = pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size()
        try:
            connection: asyncpg.Connection = await pool.acquire(
                timeout=self.pools.timeout_s if full else None
            )
        except TimeoutError as error:
            raise DatabaseUnavailable("no connection to the database in time") from error
        return connection

    async def fetchval(self, sql: str, *args: Any, read: bool = False) -> Any:
        """One statement on its own (autocommit): the function it calls sets the tenant for that
        statement only, so nothing carries over to the connection's next user.

        A connection that fails as a connection is closed, never reused; the statement is sent
        once more on a fresh one when that cannot do it twice (``read``, a known read-only function,
        or it never left)."""
        pool = await self._raw_pool()
        for attempt in (1, 2):
            connection = await self._acquire(pool)
            try:
                return await connection.fetchval(sql, *args)
            except Exception as error:
                if not is_unavailable(error):
                    raise
                connection.terminate()
                resend = read or sql.startswith(_READ_ONLY) or was_not_sent(error)
                if attempt == 2 or not resend:
                    raise
            finally:
                await pool.release(connection)
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self, timeout_s: float = 0.8) -> str:
        """``ok``, ``busy`` (every pooled connection is in use, but the server answers) or
        ``down`` (the server does not answer in ``timeout_s``), for ``/healthz``."""
        try:
            async with asyncio.timeout(timeout_s):
                pool = await self._raw_pool()
                if pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
                    return await _probe(self.url, timeout_s, self.pools.transaction_pooler)
                await self.fetchval("SELECT 1", read=True)
        except Exception:
            return "down"
        return "ok"

    @asynccontextmanager
    async def transaction(
        self, *, business_id: int | None = None, account_id: int | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One transaction with the tenant and account set for its duration only."""
        session = await self._begin(business_id, account_id)
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
        finally:
            await session.close()

    async def _begin(self, business_id: int | None, account_id: int | None) -> AsyncSession:
        """A session in a transaction with its context set. Setting the context is the first
        statement and writes nothing, so when it meets a dead connection (the server restarted
        since it was pooled) it is tried once more on a fresh one."""
        for attempt in (1, 2):
            session = self._sessions()
            try:
                await session.begin()
                await set_context(session, business_id=business_id, account_id=account_id)
            except BaseException as error:
                await session.close()
                if attempt == 2 or not is_unavailable(error) or _waited(error):
                    raise
                continue
            return session
        raise AssertionError("unreachable")  # pragma: no cover

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()


def _waited(error: BaseException) -> bool:
    """An exhausted pool or a connect that timed out: trying again would only wait again."""
    return isinstance(error, exc.TimeoutError | DatabaseUnavailable | TimeoutError)


async def _probe(url: str, timeout_s: float, transaction_pooler: bool = False) -> str:
    """A connection of its own, outside the (full) pool: does the server answer at all?"""
    try:
        connection = await asyncpg.connect(
            to_libpq(url),
            timeout=timeout_s,
            statement_cache_size=0 if transaction_pooler else 100,
        )
    except asyncpg.TooManyConnectionsError:
        return "busy"  # it answered: full, not down
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()
    return "busy"


async def set_context(
    session: AsyncSession, *, business_id: int | None = None, account_id: int | None = None
) -> None:
    """Set the tenant and/or the signed-in account for the rest of this transaction.

    The one tenant setter: used when they are only known inside the transaction (a business
    found by its slug, an account found by its Telegram id).
    """
    if business_id is not None and account_id is not None:
        await session.execute(
            _SET_CONTEXT, {"business_id": str(business_id), "account_id": str(account_id)}
        )
    elif business_id is not None:
        await session.execute(_SET_ONE, {"name": "app.business_id", "value": str(business_id)})
    elif account_id is not None:
        await session.execute(_SET_ONE, {"name": "app.account_id", "value": str(account_id)})
