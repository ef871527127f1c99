"""Alembic environment: runs with the owner DSN handed over by ``app.db.migrate``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db.urls import to_sqlalchemy
from app.models import Base

config = context.config
target_metadata = Base.metadata


def _do_run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(to_sqlalchemy(config.attributes["owner_url"]), poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_do_run)
    await engine.dispose()


if context.is_offline_mode():  # pragma: no cover - we always migrate against a live server
    raise SystemExit("offline migrations are not supported; use `pozapisi db upgrade`")
asyncio.run(_run_async())
