"""A PostgreSQL server of a test's own, to stop and start: faults never disturb other tests.

Started from the same binaries as the embedded server (``app.db.embedded``), in a temporary
directory, listening on a unix socket only: nothing but this machine can reach it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.db.bootstrap import DatabaseUrls
from app.db.embedded import EmbeddedServer, find_bindir
from tests.conftest import ServerHandle


class PrivateServer:
    def __init__(self, *, max_connections: int = 200) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pz-fault-pg-"))
        self.server = EmbeddedServer(
            root=self.root, bindir=find_bindir(), max_connections=max_connections
        )
        self.handle = ServerHandle("private", self.server.owner_url, self.server)

    async def start(self) -> None:
        """Start (or start again): pg_ctl waits until the server accepts connections."""
        await asyncio.to_thread(self.server.start)

    async def stop(self) -> None:
        """A fast shutdown: sessions are ended (57P01), the socket goes away."""
        await asyncio.to_thread(self.server.stop)

    async def create_database(self) -> DatabaseUrls:
        return await self.handle.create_database()

    def remove(self) -> None:
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@asynccontextmanager
async def private_server(*, max_connections: int = 200) -> AsyncIterator[PrivateServer]:
    private = PrivateServer(max_connections=max_connections)
    try:
        await private.start()
        yield private
    finally:
        await asyncio.to_thread(private.remove)
