"""Wake the relay the moment notifications are committed (``LISTEN pozapisi_outbox``).

Migration 0003's trigger sends ``NOTIFY pozapisi_outbox`` on every insert into
``notifications``; PostgreSQL delivers it only when the inserting transaction commits, so a
woken relay always finds the rows. The cron tick (every 2 s) stays as the safety net for
scheduled rows, retries and a lost connection; this only removes the wait — a sign-in code
should not sit for two seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from app.db.urls import to_libpq

CHANNEL = "pozapisi_outbox"
DEBOUNCE_S = 0.02  # a burst of commits becomes one wake-up
RECONNECT_S = 2.0
CHECK_S = 5.0

log = structlog.get_logger("pozapisi.wake")


class OutboxWake:
    def __init__(self, dsn: str, on_wake: Callable[[], Awaitable[Any]]) -> None:
        self._dsn = to_libpq(dsn)
        self._on_wake = on_wake
        self._signal = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pozapisi-outbox-wake")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notified(self, *_args: Any) -> None:
        self._signal.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server restarted, the network blinked
                log.warning("outbox_wake.reconnecting", error=type(exc).__name__)
            await asyncio.sleep(RECONNECT_S)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": "pozapisi-wake"}
        )
        try:
            await conn.add_listener(CHANNEL, self._notified)
            while not conn.is_closed():
                try:
                    await asyncio.wait_for(self._signal.wait(), timeout=CHECK_S)
                except TimeoutError:
                    await conn.execute("SELECT 1")  # notices a dead connection
                    continue
                await asyncio.sleep(DEBOUNCE_S)
                self._signal.clear()
                try:
                    await self._on_wake()
                except Exception:
                    log.exception("outbox_wake.kick_failed")
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
