"""Find (or start) the database, migrate it, keep policy versions in step with the landing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date

import asyncpg

from app.db import migrate
from app.db.embedded import EmbeddedServer, embedded_server
from app.db.plans import sync_plans
from app.db.policy_versions import check_publication, policy_today, read_versions, versions_file
from app.db.urls import APP_ROLE, WORKER_ROLE, to_libpq, with_user
from app.settings import Settings


@dataclass
class DatabaseUrls:
    owner: str
    app: str
    worker: str
    embedded: EmbeddedServer | None = None


def resolve(settings: Settings) -> DatabaseUrls:
    """The owner DSN from DATABASE_URL, else an embedded server under DATA_DIR (started here)."""
    server = None
    if settings.database_url:
        owner = settings.database_url
    else:
        server = embedded_server(settings.data_dir)
        owner = server.start()
    return DatabaseUrls(
        owner=owner,
        app=settings.database_app_url or with_user(owner, APP_ROLE),
        worker=settings.database_worker_url or with_user(owner, WORKER_ROLE),
        embedded=server,
    )


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(to_libpq(dsn))


async def sync_policy_versions(owner_url: str, today: date | None = None) -> int:
    """Publish the versions file: one ``policy_versions`` row per version, new ones inserted,
    unpublished ones brought up to date. A published version that the file changes, or a
    material one too late for its 30 days' notice, stops the upgrade with a message saying
    what to do (``app.db.policy_versions.check_publication``), and nothing is written."""
    path = versions_file()
    if not path.exists():
        return 0
    versions = read_versions(path)
    conn = await _connect(owner_url)
    try:
        async with conn.transaction():
            # one publication at a time: two upgrades must not both judge a version new
            await conn.execute(_PUBLISH_LOCK)
            stored = {
                row["version"]: {
                    **dict(row),
                    "digests": json.loads(row["digests"]),
                    "summary": json.loads(row["summary"]),
                }
                for row in await conn.fetch(_STORED)
            }
            anyone = bool(await conn.fetchval(_ANYONE))
            check_publication(
                stored, versions, today=today or policy_today(), anyone_to_tell=anyone
            )
            for v in versions:
                await conn.execute(
                    "INSERT INTO policy_versions (version, digests, purposes, published_at, "
                    "effective_at, material, summary) "
                    "VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7::jsonb) "
                    "ON CONFLICT (version) DO UPDATE SET digests = EXCLUDED.digests, "
                    "purposes = EXCLUDED.purposes, published_at = EXCLUDED.published_at, "
                    "effective_at = EXCLUDED.effective_at, material = EXCLUDED.material, "
                    "summary = EXCLUDED.summary",
                    v.version,
                    json.dumps(v.digests, sort_keys=True),
                    v.purposes,
                    v.published_at,
                    v.effective_at,
                    v.material,
                    json.dumps(v.summary, sort_keys=True, ensure_ascii=False),
                )
    finally:
        await conn.close()
    return len(versions)


_PUBLISH_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('pozapisi.policy_versions', 0))"
_STORED = (
    "SELECT version, digests::text AS digests, purposes, published_at, effective_at, material, "
    "summary::text AS summary FROM policy_versions"
)
_ANYONE = "SELECT EXISTS (SELECT 1 FROM accounts WHERE deleted_at IS NULL)"


async def upgrade(owner_url: str) -> list[str]:
    """`pozapisi db upgrade`: migrations (tables, roles, RLS), the changed function, trigger and
    policy files (``app.db.definitions``), then policy versions and plans. Returns the files applied."""
    applied = await asyncio.to_thread(migrate.upgrade, owner_url)
    await sync_policy_versions(owner_url)
    await sync_plans(owner_url)
    return applied
