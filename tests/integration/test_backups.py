"""Encrypted backups that restore (privacy policy 6.2, 10.5; app.domain.backups).

A seeded database is backed up, restored into a new database and compared table by table
(row count and a checksum of every row); a flipped byte, a cut file and another key are refused
by verify and restore, which then leave the target empty; BACKUP_DIR is refused inside DATA_DIR
and on the database's volume; rotation keeps no backup past BACKUP_KEEP_DAYS (30 at most).

The test server's data directory is on this machine's one volume, like the temporary folders
the tests write backups to: the tests that make backups say ``database_dir=None`` (the volume
check is tested on its own, below).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.urls import to_libpq, to_sqlalchemy, with_database
from app.domain import backups
from app.domain.backup_seal import HEADER_SIZE, SealError, Tampered, Truncated, WrongKey
from app.settings import SettingsError, load_settings
from tests.conftest import ROOT, ServerHandle, make_settings
from tests.factories import create_business

KEY = bytes.fromhex("6f1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff0")
OTHER_KEY = bytes.fromhex("00112233445566778899aabbccddeeff6f1d2c3b4a5968778695a4b3c2d1e0f0")
KEY_B64 = base64.b64encode(KEY).decode()  # as `openssl rand -base64 32` prints a key
OTHER_KEY_B64 = base64.b64encode(OTHER_KEY).decode()

pytestmark = [pytest.mark.policy("6.2"), pytest.mark.policy("10.5")]


async def _tables(url: str) -> dict[str, tuple[int, str]]:
    """Every table in public: (row count, md5 of its rows in a fixed order)."""
    conn = await asyncpg.connect(to_libpq(url))
    try:
        names = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        found = {}
        for name in names:
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' "
                f"ORDER BY t::text), '')) AS digest FROM public.\"{name}\" t"
            )
            found[name] = (row["n"], row["digest"])
        return found
    finally:
        await conn.close()


async def _empty_database(server: ServerHandle) -> str:
    name = f"pozapisi_restore_{uuid4().hex[:12]}"
    conn = await asyncpg.connect(to_libpq(server.base_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    server.created.append(name)  # dropped with the run's databases
    return with_database(server.base_url, name)


async def _drop(server: ServerHandle, url: str) -> None:
    name = url.rsplit("/", 1)[-1].split("?", 1)[0]
    conn = await asyncpg.connect(to_libpq(server.base_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def seeded(main_server: ServerHandle) -> AsyncIterator[DatabaseUrls]:
    """A database of its own: two test businesses and the demo salon (bookings, clients,
    messages, the audit chain)."""
    from app.domain.demo import load_demo

    urls = await main_server.create_database()
    engine = create_async_engine(to_sqlalchemy(urls.owner), poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            await create_business(session)
            await create_business(session, masters=3)
            await load_demo(session)
    finally:
        await engine.dispose()
    yield urls
    await _drop(main_server, urls.owner)


@pytest.fixture
def config(tmp_path: Path) -> backups.BackupConfig:
    return backups.BackupConfig(directory=tmp_path / "backups", key=KEY, data_dir=tmp_path / "data")


@pytest.fixture(scope="module")
async def made(seeded: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory) -> backups.Backup:
    """One backup of the seeded database, shared by the tests that only read it."""
    directory = tmp_path_factory.mktemp("made")
    cfg = backups.BackupConfig(directory=directory / "backups", key=KEY)
    return await backups.create(cfg, seeded.owner, database_dir=None)


def _copy(backup: backups.Backup, folder: Path, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / backup.path.name
    path.write_bytes(data)
    return path


async def test_a_backup_restores_into_a_new_database_table_for_table(
    seeded: DatabaseUrls, made: backups.Backup, main_server: ServerHandle
) -> None:
    assert made.path.stat().st_mode & 0o777 == 0o600
    assert made.path.read_bytes()[:8] == b"PZBACKUP"
    assert b"PGDMP" not in made.path.read_bytes()  # nothing of the archive in the clear
    cfg = backups.BackupConfig(directory=made.path.parent, key=KEY)
    assert backups.verify(cfg, made.path) > 0
    before = await _tables(seeded.owner)
    assert len(before) > 20
    assert before["bookings"][0] > 0 and before["audit_log"][0] > 0
    target = await _empty_database(main_server)
    try:
        restored = await backups.restore(cfg, made.path, target)
        after = await _tables(target)
    finally:
        await _drop(main_server, target)
    assert restored.tables == len(before)
    assert after == before  # every table: the same rows, byte for byte


async def test_restore_refuses_a_database_that_is_not_empty(
    seeded: DatabaseUrls, made: backups.Backup
) -> None:
    cfg = backups.BackupConfig(directory=made.path.parent, key=KEY)
    before = await _tables(seeded.owner)
    with pytest.raises(backups.BackupError, match="not empty"):
        await backups.restore(cfg, made.path, seeded.owner)
    assert await _tables(seeded.owner) == before


def _damaged(made: backups.Backup) -> dict[str, tuple[bytes, type[SealError]]]:
    data = made.path.read_bytes()

    def flip(at: int) -> bytes:
        changed = bytearray(data)
        changed[at] ^= 0x01
        return bytes(changed)

    return {
        "a flipped byte in the middle": (flip(len(data) // 2), SealError),
        "a flipped byte in the header": (flip(HEADER_SIZE - 2), SealError),
        "a flipped byte of the magic": (flip(1), Tampered),
        "a flipped last byte": (flip(len(data) - 1), SealError),
        "cut short by one byte": (data[:-1], Truncated),
        "cut in half": (data[: len(data) // 2], Truncated),
        "only the header left": (data[:HEADER_SIZE], Truncated),
    }


@pytest.mark.parametrize(
    "damage",
    ["a flipped byte in the middle", "a flipped byte in the header", "a flipped byte of the magic",
     "a flipped last byte",
     "cut short by one byte", "cut in half", "only the header left"],
)  # fmt: skip
async def test_verify_and_restore_refuse_a_damaged_file(
    made: backups.Backup, main_server: ServerHandle, tmp_path: Path, damage: str
) -> None:
    data, error = _damaged(made)[damage]
    path = _copy(made, tmp_path, data)
    cfg = backups.BackupConfig(directory=tmp_path, key=KEY)
    with pytest.raises(error):
        backups.verify(cfg, path)
    target = await _empty_database(main_server)
    try:
        with pytest.raises(error):
            await backups.restore(cfg, path, target)
        assert await _tables(target) == {}  # nothing half-restored
    finally:
        await _drop(main_server, target)


async def test_verify_and_restore_refuse_another_key(
    made: backups.Backup, main_server: ServerHandle
) -> None:
    cfg = backups.BackupConfig(directory=made.path.parent, key=OTHER_KEY)
    with pytest.raises(WrongKey, match="sealed with another key"):
        backups.verify(cfg, made.path)
    target = await _empty_database(main_server)
    try:
        with pytest.raises(WrongKey):
            await backups.restore(cfg, made.path, target)
        assert await _tables(target) == {}
    finally:
        await _drop(main_server, target)


# --- the key and the folder, refused at start ---------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["not base64 at all!", "c2hvcnQ=", KEY_B64[:-4], "A" * 44, KEY_B64 + "AAAA"],
)
def test_a_bad_key_is_refused_at_start(bad: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="BACKUP_KEY"):
        load_settings({"BACKUP_KEY": bad, "BACKUP_DIR": str(tmp_path / "b")})


def test_a_good_key_and_folder_are_taken(tmp_path: Path) -> None:
    settings = load_settings(
        {"BACKUP_KEY": KEY_B64, "BACKUP_DIR": str(tmp_path / "b"), "DATA_DIR": str(tmp_path / "d")}
    )
    assert backups.BackupConfig.from_settings(settings).key == KEY
    assert settings.backups_configured


@pytest.mark.parametrize("inside", ["backups", ".", "x/../backups", "deep/er/backups"])
def test_a_backup_dir_inside_data_dir_is_refused(tmp_path: Path, inside: str) -> None:
    data_dir = tmp_path / "data"
    env = {"DATA_DIR": str(data_dir), "BACKUP_DIR": f"{data_dir}/{inside}", "BACKUP_KEY": KEY_B64}
    with pytest.raises(SettingsError, match="inside DATA_DIR"):
        load_settings(env)
    with pytest.raises(backups.BackupError, match="inside DATA_DIR"):
        backups.check_directory(Path(env["BACKUP_DIR"]), data_dir=data_dir, database_dir=None)


def test_a_backup_dir_without_key_or_outside_the_region_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="BACKUP_KEY is not"):
        load_settings({"BACKUP_DIR": str(tmp_path / "b")})
    with pytest.raises(SettingsError, match="BACKUP_REGION"):
        load_settings({"BACKUP_KEY": KEY_B64, "BACKUP_REGION": "eu"})


def test_a_backup_dir_on_the_database_volume_is_refused(tmp_path: Path) -> None:
    database_dir = tmp_path / "pgdata"
    database_dir.mkdir()
    with pytest.raises(backups.BackupError, match="same volume"):
        backups.check_directory(
            tmp_path / "elsewhere" / "b", data_dir=None, database_dir=database_dir
        )
    with pytest.raises(backups.BackupError, match="overlaps"):
        backups.check_directory(database_dir / "b", data_dir=None, database_dir=database_dir)


async def test_create_refuses_the_database_volume_before_dumping(
    seeded: DatabaseUrls, config: backups.BackupConfig, tmp_path: Path
) -> None:
    (tmp_path / "pgdata").mkdir()
    with pytest.raises(backups.BackupError, match="same volume"):
        await backups.create(config, seeded.owner, database_dir=tmp_path / "pgdata")
    assert backups.list_backups(config.directory) == []


def test_keeping_backups_longer_than_the_policy_is_refused() -> None:
    with pytest.raises(SettingsError, match="within 30 days"):
        load_settings({"BACKUP_KEEP_DAYS": "31"})
    assert load_settings({"BACKUP_KEEP_DAYS": "7"}).backup_keep_days == 7


# --- rotation, the daily job, status ------------------------------------------------------


def _fake(directory: Path, created: datetime) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / backups.backup_name(created)
    path.write_bytes(b"PZBACKUP")
    return path


def test_rotation_removes_a_backup_older_than_30_days(config: backups.BackupConfig) -> None:
    now = datetime(2026, 12, 6, 2, 23, tzinfo=UTC)
    old = _fake(config.directory, now - timedelta(days=31))
    last_day = _fake(config.directory, now - timedelta(days=29, hours=1))  # 30 by the next run
    young = _fake(config.directory, now - timedelta(days=28))
    today = _fake(config.directory, now - timedelta(minutes=5))
    stale_partial = config.directory / f".{backups.backup_name(now - timedelta(days=2))}.partial"
    stale_partial.write_bytes(b"x")
    stranger = config.directory / "notes.txt"
    stranger.write_text("not ours")
    removed = backups.rotate(config, now)
    assert sorted(removed) == sorted([old, last_day, stale_partial])
    assert [b.path for b in backups.list_backups(config.directory)] == [today, young]
    assert stranger.exists()
    # what is left would still be within 30 days at the next daily run
    next_run = now + backups.ROTATION_INTERVAL
    assert all(
        next_run - b.created_at <= timedelta(days=30)
        for b in backups.list_backups(config.directory)
    )


def test_rotation_follows_a_shorter_keep(tmp_path: Path) -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    cfg = backups.BackupConfig(directory=tmp_path, key=KEY, keep_days=7)
    week_old = _fake(tmp_path, now - timedelta(days=7))
    fresh = _fake(tmp_path, now - timedelta(days=2))
    assert backups.rotate(cfg, now) == [week_old]
    assert fresh.exists()


async def test_the_daily_job_backs_up_rotates_and_records_a_failure(
    seeded: DatabaseUrls, config: backups.BackupConfig, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    expired = _fake(config.directory, now - timedelta(days=40))
    run = await backups.run_scheduled(config, seeded.owner, now=now, database_dir=None)
    assert run.error is None and run.backup is not None
    assert run.removed == [expired]
    status = backups.read_status(config.directory)
    assert status.last_good == run.backup and status.last_failure is None
    assert backups.verify(config, run.backup.path) > 0

    later = now + timedelta(days=1)
    (tmp_path / "pgdata").mkdir()
    failed = await backups.run_scheduled(
        config, seeded.owner, now=later, database_dir=tmp_path / "pgdata"
    )
    assert failed.backup is None and "same volume" in (failed.error or "")
    status = backups.read_status(config.directory)
    assert status.last_good == run.backup  # the last GOOD one
    assert status.last_failure is not None and status.last_failure.at == later

    recovered = await backups.run_scheduled(
        config, seeded.owner, now=later + timedelta(hours=1), database_dir=None
    )
    assert recovered.backup is not None
    assert backups.read_status(config.directory).last_failure is None


def test_the_daily_job_is_scheduled_only_when_backups_are_configured(tmp_path: Path) -> None:
    from workers.runner import cron_jobs

    def names(settings: Any) -> set[str]:
        return {job.function.__name__ for job in cron_jobs(settings)}

    assert "backup_daily" not in names(make_settings())
    configured = make_settings(BACKUP_DIR=str(tmp_path / "b"), BACKUP_KEY=KEY_B64)
    assert "backup_daily" in names(configured)


async def test_healthz_details_show_the_last_good_backup(
    database: DatabaseUrls, tmp_path: Path, client: Any
) -> None:
    from app.main import create_app

    settings = make_settings(BACKUP_DIR=str(tmp_path / "b"), BACKUP_KEY=KEY_B64)
    now = datetime.now(UTC).replace(microsecond=0)
    good = _fake(tmp_path / "b", now - timedelta(hours=3))
    async with AsyncTestClient(
        create_app(settings, app_url=database.app), base_url="https://testserver.local"
    ) as http:
        plain = await http.get("/healthz")
        assert plain.json() == {"status": "ok", "database": "ok", "queue": "ok"}  # pinned
        detailed = (await http.get("/healthz", params={"details": "1"})).json()
        assert detailed["status"] == "ok"
        assert detailed["details"]["backup"] == {
            "last_good_at": (now - timedelta(hours=3)).isoformat(),
            "last_good_size": good.stat().st_size,
            "last_failure_at": None,
        }
        failed_at = now - timedelta(hours=1)
        (tmp_path / "b" / backups.FAILURE_FILE).write_text(
            json.dumps({"at": failed_at.isoformat(), "error": "pg_dump failed (1): /secret/path"})
        )
        detailed = (await http.get("/healthz", params={"details": "1"})).json()
        backup = detailed["details"]["backup"]
        assert backup["last_failure_at"] == failed_at.isoformat()
        assert backup["last_good_at"] == (now - timedelta(hours=3)).isoformat()
        assert "secret" not in json.dumps(detailed)  # the message stays in the worker's log
    # without backups configured the details say so
    unconfigured = (await client.get("/healthz?details=1")).json()
    assert unconfigured["details"] == {"backup": None}


# --- the command -----------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "backup", *args],
        cwd=ROOT, env={**os.environ, "POZAPISI_ENV": "test", **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_command_refuses_a_bad_key_and_a_damaged_file(
    made: backups.Backup, seeded: DatabaseUrls, tmp_path: Path
) -> None:
    base = {"DATABASE_URL": seeded.owner, "DATA_DIR": str(tmp_path / "data")}
    bad = _cli(["list"], {**base, "BACKUP_DIR": str(tmp_path / "b"), "BACKUP_KEY": "c2hvcnQ="})
    assert bad.returncode == 2 and "BACKUP_KEY" in bad.stderr

    env = {**base, "BACKUP_DIR": str(made.path.parent), "BACKUP_KEY": KEY_B64}
    ok = _cli(["verify", made.path.name], env)
    assert ok.returncode == 0, ok.stderr
    assert "authentic and complete" in ok.stdout
    listed = _cli(["list"], env)
    assert made.path.name in listed.stdout

    cut = _copy(made, tmp_path / "cut", made.path.read_bytes()[:-10])
    refused = _cli(["verify", str(cut)], env)
    assert refused.returncode == 1
    assert "REFUSED" in refused.stderr and "cut short" in refused.stderr
    other = _cli(["verify", str(made.path)], {**env, "BACKUP_KEY": OTHER_KEY_B64})
    assert other.returncode == 1 and "sealed with another key" in other.stderr


def test_the_command_restores_into_an_empty_database_only(
    made: backups.Backup, seeded: DatabaseUrls, main_server: ServerHandle, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": seeded.owner,
        "DATA_DIR": str(tmp_path / "data"),
        "BACKUP_DIR": str(made.path.parent),
        "BACKUP_KEY": KEY_B64,
    }
    refused = _cli(["restore", made.path.name], env)  # DATABASE_URL: the seeded, full one
    assert refused.returncode == 1 and "not empty" in refused.stderr

    async def restore_into_new() -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        target = await _empty_database(main_server)
        try:
            done = _cli(["restore", made.path.name, "--into", target], env)
            return done, await _tables(target)
        finally:
            await _drop(main_server, target)

    import asyncio

    done, tables = asyncio.run(restore_into_new())
    assert done.returncode == 0, done.stderr
    assert f"restored {len(tables)} tables" in done.stdout
    assert tables["bookings"][0] > 0


async def test_the_daily_worker_job_backs_up_or_names_the_shared_volume(
    seeded: DatabaseUrls, tmp_path: Path
) -> None:
    """The job as SAQ runs it, which looks for the database's volume itself: on this machine
    the server may share the temporary folder's volume, and then the job must refuse."""
    from types import SimpleNamespace

    from workers import jobs

    folder = tmp_path / "b"
    settings = make_settings(
        DATABASE_URL=seeded.owner, BACKUP_DIR=str(folder), BACKUP_KEY=KEY_B64,
        DATA_DIR=str(tmp_path / "data"),
    )  # fmt: skip
    database_dir = await backups.database_directory(seeded.owner)
    shared = database_dir is not None and os.stat(database_dir).st_dev == os.stat(tmp_path).st_dev
    result = await jobs.backup_daily({"runtime": SimpleNamespace(settings=settings)})
    status = backups.read_status(folder)
    if shared:
        assert "same volume" in result["error"]
        assert status.last_good is None and status.last_failure is not None
    else:
        assert result["error"] is None and result["size"] > 0
        assert status.last_good is not None and status.last_failure is None


def test_client_tools_of_another_major_version_are_refused_by_name() -> None:
    with pytest.raises(backups.BackupError, match="no pg_dump/pg_restore of PostgreSQL 9 "):
        backups.client_tools(9)


def test_the_command_without_backups_configured_says_what_to_set(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none", "DATA_DIR": str(tmp_path)}
    unconfigured = _cli(["list"], {**env, "BACKUP_DIR": "", "BACKUP_KEY": ""})
    assert unconfigured.returncode == 2
    assert "BACKUP_DIR" in unconfigured.stderr and "BACKUP_KEY" in unconfigured.stderr
