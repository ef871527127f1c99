"""Migrations: from nothing to head, back to base and up again, idempotent, and equal to the models.

Also the policy versions that ``pozapisi db upgrade`` syncs from ``policy/versions.yml``, and the
database's guarantee that a material policy change is announced 30 days ahead (policy 11.1).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db import bootstrap, definitions, migrate
from app.db.urls import APP_ROLE, WORKER_ROLE, to_libpq, to_sqlalchemy, with_database
from app.models import Base
from tests.conftest import ROOT, ServerHandle

pytestmark = pytest.mark.both_servers

ROLES = [APP_ROLE, WORKER_ROLE]
NOT_MODELLED = ("saq_jobs", "saq_stats", "saq_versions", definitions.RECORD)


def head_revision() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config("unused")).get_current_head()
    assert head is not None
    return head


async def empty_database(server: ServerHandle) -> str:
    """A brand-new database with nothing in it (dropped with the others at the end)."""
    name = f"pozapisi_test_{uuid4().hex[:12]}"
    conn = await asyncpg.connect(to_libpq(server.base_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    server.created.append(name)
    return with_database(server.base_url, name)


async def fetch(owner: str, query: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(to_libpq(owner))
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def version_rows(owner: str) -> list[str]:
    return [r["version_num"] for r in await fetch(owner, "SELECT version_num FROM alembic_version")]


def _sorted(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


async def schema_snapshot(owner: str) -> dict[str, list[str]]:
    """Everything the migrations create in schema public, in comparable form."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, udt_name, is_nullable, "
        "column_default, character_maximum_length, is_identity FROM information_schema.columns "
        "WHERE table_schema = 'public'",
        "constraints": "SELECT conrelid::regclass::text AS tbl, conname, "
        "pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public'",
        "rls": "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
        "policies": "SELECT tablename, policyname, permissive, roles::text[] AS roles, cmd, "
        "qual, with_check FROM pg_policies WHERE schemaname = 'public'",
        "functions": "SELECT proname, pg_get_function_identity_arguments(oid) AS args, "
        "prosecdef, md5(prosrc) AS src, proconfig, proacl::text[] AS acl FROM pg_proc "
        "WHERE pronamespace = 'public'::regnamespace",
        "triggers": "SELECT tgrelid::regclass::text AS tbl, tgname, pg_get_triggerdef(oid) AS def "
        "FROM pg_trigger WHERE NOT tgisinternal",
        "table_grants": "SELECT table_name, grantee, privilege_type "
        "FROM information_schema.role_table_grants "
        "WHERE table_schema = 'public' AND grantee = ANY($1::text[])",
        "sequence_grants": "SELECT c.relname, r.rolname, "
        "has_sequence_privilege(r.oid, c.oid, 'USAGE') AS usage FROM pg_class c, pg_roles r "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S' "
        "AND r.rolname = ANY($1::text[])",
        "schema_usage": "SELECT rolname, has_schema_privilege(oid, 'public', 'USAGE') AS usage "
        "FROM pg_roles WHERE rolname = ANY($1::text[])",
    }
    snapshot = {}
    for key, query in queries.items():
        args = [ROLES] if "$1" in query else []
        snapshot[key] = _sorted(await fetch(owner, query, *args))
    return snapshot


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # SAQ's tables and the record of applied definition files are in no model, on purpose
    return not (type_ == "table" and name is not None and name in NOT_MODELLED)


async def model_differences(owner: str, metadata: MetaData = Base.metadata) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _include,
            },
        )
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(to_sqlalchemy(owner), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_to_head_then_again_is_a_noop(any_server: ServerHandle) -> None:
    owner = await empty_database(any_server)
    await asyncio.to_thread(migrate.upgrade, owner)
    assert await version_rows(owner) == [head_revision()]
    migrated = await schema_snapshot(owner)
    tables = {json.loads(c)["table_name"] for c in migrated["columns"]}
    assert set(Base.metadata.tables) <= tables

    await bootstrap.upgrade(owner)  # `pozapisi db upgrade`: migrations, then policy versions
    synced = await fetch(owner, "SELECT * FROM policy_versions ORDER BY id")
    await bootstrap.upgrade(owner)  # and once more: nothing changes
    assert await version_rows(owner) == [head_revision()]
    assert await schema_snapshot(owner) == migrated
    assert await fetch(owner, "SELECT * FROM policy_versions ORDER BY id") == synced


async def test_models_match_migrations(any_server: ServerHandle) -> None:
    urls = await any_server.create_database()
    assert await model_differences(urls.owner) == []

    # the comparison is not blind: a column the migrations lack is reported
    altered = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(altered)
    altered.tables["clients"].append_column(Column("nickname", String(40)))
    diffs = await model_differences(urls.owner, altered)
    assert [(d[0], d[2], d[3].name) for d in diffs] == [("add_column", "clients", "nickname")]


async def test_downgrade_to_base_and_upgrade_again(any_server: ServerHandle) -> None:
    urls = await any_server.create_database()
    before = await schema_snapshot(urls.owner)

    await asyncio.to_thread(migrate.downgrade, urls.owner, "base")
    assert await version_rows(urls.owner) == []
    left = await fetch(
        urls.owner,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind IN ('r', 'v', 'm', 'S', 'f', 'p') AND relname <> 'alembic_version'",
    )
    assert left == []
    functions = "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
    assert await fetch(urls.owner, functions) == []
    assert await fetch(urls.owner, "SELECT policyname FROM pg_policies") == []

    await asyncio.to_thread(migrate.upgrade, urls.owner)
    assert await version_rows(urls.owner) == [head_revision()]
    assert await schema_snapshot(urls.owner) == before
    assert await model_differences(urls.owner) == []


def _expected_versions() -> list[dict[str, Any]]:
    """Read policy/versions.yml and hash the texts here, independently of app.db.policy_versions."""
    path = Path(os.environ.get("POLICY_VERSIONS_FILE", ROOT / "policy" / "versions.yml"))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for item in data["versions"]:
        assert set(item["files"]) == {"en", "ru", "kk"}, item["version"]
        out.append(
            {
                "version": str(item["version"]),
                "digests": {
                    lang: hashlib.sha256((path.parent.parent / rel).read_bytes()).hexdigest()
                    for lang, rel in item["files"].items()
                },
                "purposes": [str(p) for p in item["purposes"]],
                "published_at": date.fromisoformat(str(item["published_at"])),
                "effective_at": date.fromisoformat(str(item["effective_at"])),
                "material": bool(item.get("material", False)),
            }
        )
    return out


async def test_policy_versions_are_synced_from_the_versions_file(any_server: ServerHandle) -> None:
    expected = _expected_versions()
    assert expected, "policy/versions.yml lists no version"
    urls = await any_server.create_database()  # runs `db upgrade`, which syncs the file
    for _ in range(2):  # a second sync changes nothing and adds no row
        rows = await fetch(
            urls.owner,
            "SELECT version, digests, purposes, published_at, effective_at, material "
            "FROM policy_versions ORDER BY version",
        )
        for row in rows:
            row["digests"] = json.loads(row["digests"])
        assert rows == sorted(expected, key=lambda v: v["version"])
        await bootstrap.sync_policy_versions(urls.owner)
    for row in rows:
        assert len(set(row["digests"].values())) == len(row["digests"]) == 3  # a text per language


@pytest.mark.policy("11.1")
async def test_material_change_needs_30_days_notice(any_server: ServerHandle) -> None:
    urls = await any_server.create_database()
    published = date(2031, 1, 10)
    insert = (
        "INSERT INTO policy_versions (version, digests, purposes, published_at, effective_at, "
        "material) VALUES ($1, '{}', '{booking}', $2, $3, $4)"
    )
    conn = await asyncpg.connect(to_libpq(urls.owner))
    try:
        for days in (10, 29):
            with pytest.raises(asyncpg.CheckViolationError) as exc:
                await conn.execute(
                    insert, f"m-{days}", published, published + timedelta(days=days), True
                )
            assert exc.value.sqlstate == "23514"
            assert exc.value.constraint_name == "ck_policy_versions_material_notice_30_days"
        # exactly 30 days is enough; a non-material change may take effect at once
        await conn.execute(insert, "m-30", published, published + timedelta(days=30), True)
        await conn.execute(insert, "minor", published, published, False)
        # nor can an existing version be turned material without the notice
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE policy_versions SET material = true WHERE version = 'minor'")
        versions = await conn.fetch(
            "SELECT version FROM policy_versions WHERE version IN ('m-10', 'm-29', 'm-30', 'minor')"
        )
        assert sorted(r["version"] for r in versions) == ["m-30", "minor"]
    finally:
        await conn.close()
