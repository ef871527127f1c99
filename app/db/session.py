"""Engines and the one transaction helper.

Every unit of work runs in ``db.transaction(business_id=…, account_id=…)``: the tenant and the
signed-in person are set with ``set_config(…, true)``, i.e. for that transaction only, so a
pooled connection never carries them over to the next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .urls import to_libpq, to_sqlalchemy

_SET_CONTEXT = text(
    "SELECT set_config('app.business_id', :business_id, true), "
    "set_config('app.account_id', :account_id, true)"
)


_SET_ONE = text("SELECT set_config(:name, :value, true)")


def make_engine(dsn: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        to_sqlalchemy(dsn),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": "pozapisi"}},
    )


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
    its own implicit transaction, with asyncpg's prepared-statement cache and no ORM."""

    def __init__(self, app_url: str, *, pool_size: int = 10) -> None:
        self.url = app_url
        self.pool_size = pool_size
        self.engine = make_engine(app_url, pool_size=pool_size)
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
                        max_size=self.pool_size,
                        max_inactive_connection_lifetime=300,
                        server_settings={"application_name": "pozapisi"},
                        reset=_reset_after_statement,
                    )
        return self._pool

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """One statement on its own (autocommit): the function it calls sets the tenant for that
        statement only, so nothing carries over to the connection's next user."""
        pool = await self._raw_pool()
        async with pool.acquire() as connection:
            return await connection.fetchval(sql, *args)

    async def ping(self, timeout_s: float = 3) -> bool:
        """Whether the database answers a trivial statement in time."""
        try:
            async with asyncio.timeout(timeout_s), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    @asynccontextmanager
    async def transaction(
        self, *, business_id: int | None = None, account_id: int | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One transaction with the tenant and account set for its duration only."""
        async with self._sessions() as session, session.begin():
            await set_context(session, business_id=business_id, account_id=account_id)
            yield session

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()


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
