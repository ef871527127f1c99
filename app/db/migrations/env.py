"""Alembic environment: runs with the owner DSN handed over by ``app.db.migrate``."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db import definitions
from app.db.urls import to_sqlalchemy
from app.models import Base

config = context.config
target_metadata = Base.metadata


# tables that are in the database but not in the models, on purpose: SAQ's queue and the record
# of applied definition files (app.db.definitions); autogenerate must not propose dropping them
NOT_MODELLED = ("saq_jobs", "saq_stats", "saq_versions", definitions.RECORD)


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name in NOT_MODELLED)


def _do_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_object=_include,
    )
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
