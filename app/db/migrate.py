"""Apply migrations with the owner DSN (`pozapisi db upgrade`), then the definition files.

Alembic brings the tables to a revision; ``app.db.definitions`` then applies the functions,
triggers and policies under ``app/db/sql`` whose text changed. Those files describe the schema
at the head revision, so they are applied only when the database is there.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from app.db import definitions

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(owner_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["owner_url"] = owner_url
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("unused")).get_current_head()
    assert head is not None
    return head


def upgrade(owner_url: str, revision: str = "head") -> list[str]:
    """Migrate, then apply the changed definition files (only when that reaches the head);
    the names of the files applied. Blocking: run it in a thread from async code (Alembic's
    env runs its own event loop, and so does this)."""
    command.upgrade(alembic_config(owner_url), revision)
    if revision not in ("head", head_revision()):
        return []
    return asyncio.run(definitions.apply(owner_url))


def downgrade(owner_url: str, revision: str) -> None:
    """Migrate down; the definitions applied no longer describe the database, so the record of
    them is cleared and the next upgrade applies every file again."""
    command.downgrade(alembic_config(owner_url), revision)
    asyncio.run(definitions.forget(owner_url))
