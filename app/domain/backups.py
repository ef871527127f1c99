"""Encrypted backups (privacy policy 6.2 and 10.5): `pozapisi backup create | list | verify |
restore`, and the daily worker job (``run_scheduled``).

* ``create`` streams ``pg_dump --format=custom`` through AES-256-GCM (``app.domain.backup_seal``)
  into ``BACKUP_DIR``: a temporary file (mode 0600) renamed into place once complete, named by
  its UTC time so names sort by age. Nothing unencrypted touches the disk.
* ``BACKUP_DIR`` must lie apart from what it protects: never inside ``DATA_DIR`` (checked with
  the settings, at start) nor on the volume of the database's data directory when that is on
  this machine (checked before each backup); a dead disk must not take both.
* ``rotate`` keeps a backup at most ``BACKUP_KEEP_DAYS`` (30 at most): a person erased today is
  in no backup 30 days from now. The daily job rotates even when its backup fails.
* ``verify`` authenticates every byte; ``restore`` does too before it touches the target, which
  must be an empty database, then restores in one transaction and checks the result (every
  table of the archive present, the audit chains intact).
* ``status`` — the last good backup's time and size, and the last failure — is what
  ``/healthz?details=1`` shows (and the operator console will).

``pg_dump``/``pg_restore`` come from the same PostgreSQL major version as the server: the
embedded server's binaries first, then the machine's, and a clear refusal when none matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Literal
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import asyncpg

from app.db.embedded import EmbeddedServerError, find_bindir
from app.db.urls import to_libpq
from app.domain.backup_seal import CHUNK_SIZE, Sealer, SealError, unseal
from app.settings import BACKUP_MAX_KEEP_DAYS, Settings, decode_backup_key

SUFFIX = ".pzbackup"
_NAME = re.compile(r"^pozapisi-(\d{8}T\d{6}Z)" + re.escape(SUFFIX) + "$")
_STAMP = "%Y%m%dT%H%M%SZ"
FAILURE_FILE = "last-failure.json"
PARTIAL_KEPT = timedelta(days=1)  # a crashed run's temporary file, removed by rotation
# the daily job rotates once a day: a backup is removed on the last run before it would
# outlive BACKUP_KEEP_DAYS, so none is ever older than that
ROTATION_INTERVAL = timedelta(days=1)
_DUMP_MAGIC = b"PGDMP"
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA )(\S+) (\S+) (\S+)$", re.M)

# roles are cluster-wide and pg_dump does not carry them: a restore onto a new server creates
# them as migration 0002 does (passwords are set by the operator, docs/deploy.md)
_ROLES_SQL = """
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['pozapisi_app', 'pozapisi_worker'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
    END IF;
  END LOOP;
END $$;
"""


class BackupError(Exception):
    """A backup operation is refused or failed; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class BackupConfig:
    directory: Path
    key: bytes
    keep_days: int = BACKUP_MAX_KEEP_DAYS
    data_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BackupConfig:
        if settings.backup_dir is None or not settings.backup_key:
            raise BackupError(
                "backups are not configured: set BACKUP_DIR (a folder on another volume) and "
                "BACKUP_KEY (`openssl rand -base64 32`, stored apart from the backups)"
            )
        return cls(
            directory=settings.backup_dir,
            key=decode_backup_key(settings.backup_key),
            keep_days=settings.backup_keep_days,
            data_dir=settings.data_dir,
        )


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    created_at: datetime
    size: int


@dataclass(frozen=True, slots=True)
class Failure:
    at: datetime
    error: str


@dataclass(frozen=True, slots=True)
class BackupStatus:
    last_good: Backup | None
    last_failure: Failure | None  # only when it came after the last good backup


@dataclass(frozen=True, slots=True)
class Restored:
    tables: int
    plaintext_size: int


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    backup: Backup | None
    removed: list[Path]
    error: str | None


# --- names and the folder -------------------------------------------------------------------


def backup_name(moment: datetime) -> str:
    return f"pozapisi-{moment.astimezone(UTC).strftime(_STAMP)}{SUFFIX}"


def created_at_of(path: Path) -> datetime | None:
    match = _NAME.match(path.name)
    if match is None:
        return None
    return datetime.strptime(match[1], _STAMP).replace(tzinfo=UTC)


def list_backups(directory: Path) -> list[Backup]:
    """The complete backups in ``directory``, newest first (temporary files are not listed)."""
    if not directory.is_dir():
        return []
    found = []
    for entry in os.scandir(directory):
        created = created_at_of(Path(entry.name))
        if created is not None and entry.is_file():
            found.append(Backup(Path(entry.path), created, entry.stat().st_size))
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_directory(directory: Path, *, data_dir: Path | None, database_dir: Path | None) -> None:
    """Refuse a BACKUP_DIR that would fall with the data: inside DATA_DIR, inside (or holding)
    the database's data directory, or on that directory's volume (same ``st_dev``)."""
    if data_dir is not None and _inside(directory, data_dir):
        raise BackupError(
            f"BACKUP_DIR {directory} is inside DATA_DIR ({data_dir}): store backups apart from "
            "the data they protect, on another volume"
        )
    if database_dir is None:
        return
    if _inside(directory, database_dir) or _inside(database_dir, directory):
        raise BackupError(
            f"BACKUP_DIR {directory} overlaps the database's data directory ({database_dir})"
        )
    try:
        database_device = database_dir.stat().st_dev
    except OSError:
        return  # not readable from here: the operator's check (docs/deploy.md)
    if _existing_ancestor(directory).stat().st_dev == database_device:
        raise BackupError(
            f"BACKUP_DIR {directory} is on the same volume as the database's data directory "
            f"({database_dir}): a failed disk would take both; mount another volume for backups"
        )


def _is_local(owner_url: str) -> bool:
    parts = urlsplit(to_libpq(owner_url))
    hosts = parse_qs(parts.query).get("host", [])
    if hosts:
        return all(h.startswith("/") or h in ("localhost", "127.0.0.1", "::1") for h in hosts)
    return parts.hostname in (None, "", "localhost", "127.0.0.1", "::1")


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(to_libpq(url))


async def database_directory(owner_url: str) -> Path | None:
    """The server's data directory when the server runs on this machine and says where it is
    (``SHOW data_directory`` needs a superuser or pg_read_all_settings); None otherwise."""
    if not _is_local(owner_url):
        return None
    conn = await _connect(owner_url)
    try:
        value = await conn.fetchval("SHOW data_directory")
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()
    path = Path(value)
    return path if await asyncio.to_thread(path.exists) else None


# --- pg_dump and pg_restore of the server's version -----------------------------------------


def _major_of(binary: Path) -> int | None:
    try:
        out = subprocess.run(  # noqa: S603 - a PostgreSQL binary we located
            [str(binary), "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\)\s+(\d+)", out)
    return int(match[1]) if match else None


def _candidate_bindirs() -> Iterator[Path]:
    with contextlib.suppress(EmbeddedServerError):
        embedded = find_bindir()  # PG_BINDIR, else the wheel's newest server
        yield embedded
        yield from sorted(embedded.parent.parent.glob("pginstall*/bin"))
    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    on_path = shutil.which("pg_dump")
    if on_path:
        yield Path(on_path).resolve().parent


def client_tools(server_major: int) -> Path:
    """The folder of a ``pg_dump`` and ``pg_restore`` of the server's major version."""
    seen = []
    for bindir in _candidate_bindirs():
        dump, restore = bindir / "pg_dump", bindir / "pg_restore"
        if not (dump.exists() and restore.exists()):
            continue
        major = _major_of(dump)
        seen.append(f"{bindir} ({major})")
        if major == server_major:
            return bindir
    raise BackupError(
        f"no pg_dump/pg_restore of PostgreSQL {server_major} (the server's version) found; "
        f"looked in: {', '.join(seen) or 'nowhere with both'}. Install that version's client "
        f"tools or point PG_BINDIR at them"
    )


def _libpq_env(url: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password (which goes in PGPASSWORD, out of the process list)."""
    parts = urlsplit(to_libpq(url))
    env = dict(os.environ)
    env.pop("PGDATA", None)
    netloc = parts.netloc
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), env


async def _server_facts(url: str) -> tuple[int, bool, int]:
    """(server major version, may this role read past row-level security, tables in public)."""
    conn = await _connect(url)
    try:
        version = int(await conn.fetchval("SHOW server_version_num"))
        bypass = bool(
            await conn.fetchval(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
        )
        tables = int(
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        )
    finally:
        await conn.close()
    return version // 10000, bypass, tables


def _stderr_text(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode(errors="replace").strip()[-2000:]


# --- create ----------------------------------------------------------------------------------


def _dump_sealed(bindir: Path, owner_url: str, key: bytes, target: Path) -> None:
    dsn, env = _libpq_env(owner_url)
    partial = target.with_name(f".{target.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            tempfile.TemporaryFile() as errors,
            subprocess.Popen(  # noqa: S603 - pg_dump of the server's version
                [str(bindir / "pg_dump"), "--format=custom", "--no-password", "--dbname", dsn],
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
            ) as dump,
        ):
            assert dump.stdout is not None
            sealer = Sealer(key, out)
            while piece := dump.stdout.read(CHUNK_SIZE):
                sealer.write(piece)
            if dump.wait() != 0:
                raise BackupError(f"pg_dump failed ({dump.returncode}): {_stderr_text(errors)}")
            if sealer.plaintext_size == 0:
                raise BackupError("pg_dump wrote nothing")
            sealer.finish()
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


async def create(
    config: BackupConfig,
    owner_url: str,
    *,
    now: datetime | None = None,
    database_dir: Path | Literal["detect"] | None = "detect",
) -> Backup:
    """One encrypted backup of the whole database into ``config.directory``."""
    if database_dir == "detect":
        database_dir = await database_directory(owner_url)
    check_directory(config.directory, data_dir=config.data_dir, database_dir=database_dir)
    major, bypass, _ = await _server_facts(owner_url)
    if not bypass:
        raise BackupError(
            "the database role of DATABASE_URL cannot read past row-level security (it is "
            "neither a superuser nor BYPASSRLS): pg_dump would refuse the tenant tables"
        )
    bindir = client_tools(major)
    config.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    target = config.directory / backup_name(moment)
    if target.exists():
        raise BackupError(f"{target.name} exists already (one backup a second at most)")
    await asyncio.to_thread(_dump_sealed, bindir, owner_url, config.key, target)
    return Backup(target, moment, target.stat().st_size)


# --- verify and restore ----------------------------------------------------------------------


def _open_backup(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_dump_start(first: bytes) -> None:
    if not first.startswith(_DUMP_MAGIC):
        raise BackupError("the decrypted content is not a pg_dump archive")


def verify(config: BackupConfig, path: Path) -> int:
    """Authenticate the whole file with the key, writing nothing; the archive's size.
    Raises ``SealError`` (wrong key, altered, cut short) or ``BackupError``."""
    with _open_backup(path) as source:
        chunks = unseal(source, config.key)
        first = next(chunks, b"")
        _check_dump_start(first)
        return len(first) + sum(len(chunk) for chunk in chunks)


def _pipe_into(args: list[str], env: dict[str, str], key: bytes, path: Path) -> tuple[str, int]:
    """Decrypt ``path`` into the stdin of ``args``; (its stdout, plaintext size). A chunk that
    fails authentication kills the process before it can finish."""
    with (
        _open_backup(path) as source,
        tempfile.TemporaryFile() as output,
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(  # noqa: S603 - pg_restore of the server's version
            args, stdin=subprocess.PIPE, stdout=output, stderr=errors, env=env
        ) as proc,
    ):
        assert proc.stdin is not None
        size, reading = 0, True
        try:
            for chunk in unseal(source, key):
                if size == 0:
                    _check_dump_start(chunk)
                size += len(chunk)
                if reading:
                    try:
                        proc.stdin.write(chunk)
                    except BrokenPipeError:
                        # it has read what it needs (`--list` stops after the table of
                        # contents) or gave up; the rest is still authenticated
                        reading = False
        except (SealError, BackupError):
            proc.kill()
            raise
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        if proc.wait() != 0:
            name = Path(args[0]).name
            raise BackupError(f"{name} failed ({proc.returncode}): {_stderr_text(errors)}")
        output.seek(0)
        return output.read().decode(errors="replace"), size


async def restore(config: BackupConfig, path: Path, target_url: str) -> Restored:
    """Restore a backup into the EMPTY database ``target_url`` (no table in ``public``).

    The file is authenticated and its archive read through once before the target is
    touched; the restore is one transaction; then every table of the archive must be there
    and the audit chains must verify."""
    major, _, occupied = await _server_facts(target_url)
    if occupied:
        raise BackupError(
            f"the target database is not empty ({occupied} tables in public): restore only into "
            "a new, empty database"
        )
    bindir = client_tools(major)
    dsn, env = _libpq_env(target_url)
    listing, size = await asyncio.to_thread(
        _pipe_into, [str(bindir / "pg_restore"), "--list"], env, config.key, path
    )
    tables = _TOC_TABLE.findall(listing)
    expected = {f"{schema}.{name}" for schema, name, _ in tables}
    owners = sorted({owner for _, _, owner in tables})
    conn = await _connect(target_url)
    try:
        await conn.execute(_ROLES_SQL)
        present_roles = {
            r["rolname"]
            for r in await conn.fetch(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY($1)", owners
            )
        }
    finally:
        await conn.close()
    if missing_roles := [o for o in owners if o not in present_roles]:
        # the objects keep their owner: SECURITY DEFINER functions must not end up owned by
        # whoever restores (a superuser, often)
        raise BackupError(
            f"the backup's tables belong to {', '.join(missing_roles)}, which this server lacks: "
            "create that role first (docs/deploy.md, Restoring)"
        )
    command = [
        str(bindir / "pg_restore"), "--single-transaction", "--exit-on-error",
        "--no-password", "--dbname", dsn,
    ]  # fmt: skip
    await asyncio.to_thread(_pipe_into, command, env, config.key, path)
    conn = await _connect(target_url)
    try:
        present = {
            f"{r['schemaname']}.{r['tablename']}"
            for r in await conn.fetch(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
        }
        has_audit = await conn.fetchval("SELECT to_regproc('audit_verify') IS NOT NULL")
        broken = await conn.fetchval("SELECT count(*) FROM audit_verify()") if has_audit else 0
    finally:
        await conn.close()
    if missing := sorted(expected - present):
        raise BackupError(f"restored, but tables are missing: {', '.join(missing)}")
    if broken:
        raise BackupError(f"restored, but the audit log does not verify ({broken} problems)")
    return Restored(tables=len(expected), plaintext_size=size)


# --- rotation, the daily job, status ---------------------------------------------------------


def rotate(config: BackupConfig, now: datetime) -> list[Path]:
    """Remove every backup that would be older than ``keep_days`` by the next daily run (and
    temporary files a crashed run left); the removed paths."""
    cutoff = now - timedelta(days=config.keep_days) + ROTATION_INTERVAL
    removed = []
    for backup in list_backups(config.directory):
        if backup.created_at <= cutoff:
            backup.path.unlink(missing_ok=True)
            removed.append(backup.path)
    if config.directory.is_dir():
        for partial in config.directory.glob(f".pozapisi-*{SUFFIX}.partial"):
            moment = created_at_of(Path(partial.name[1 : -len(".partial")]))
            if moment is not None and moment <= now - PARTIAL_KEPT:
                partial.unlink(missing_ok=True)
                removed.append(partial)
    return removed


def _record_failure(directory: Path, at: datetime, error: str) -> None:
    with contextlib.suppress(OSError):  # an unwritable folder is the failure itself
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = directory / f".{FAILURE_FILE}.partial"
        partial.write_text(json.dumps({"at": at.isoformat(), "error": error}))
        os.replace(partial, directory / FAILURE_FILE)


async def run_scheduled(
    config: BackupConfig,
    owner_url: str,
    *,
    now: datetime,
    database_dir: Path | Literal["detect"] | None = "detect",
) -> ScheduledRun:
    """The daily job: a backup, then rotation (also after a failed backup). A failure is
    recorded beside the backups for ``status`` and returned, not raised."""
    backup, error = None, None
    try:
        backup = await create(config, owner_url, now=now, database_dir=database_dir)
    except (BackupError, SealError, OSError, asyncpg.PostgresError) as exc:
        error = str(exc) or type(exc).__name__
        _record_failure(config.directory, now, error)
    removed = await asyncio.to_thread(rotate, config, now)
    if backup is not None:
        (config.directory / FAILURE_FILE).unlink(missing_ok=True)
    return ScheduledRun(backup, removed, error)


def _read_failure(directory: Path) -> Failure | None:
    try:
        data = json.loads((directory / FAILURE_FILE).read_text())
        return Failure(datetime.fromisoformat(data["at"]), str(data["error"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_status(directory: Path) -> BackupStatus:
    try:
        backups = list_backups(directory)
    except OSError:  # unreadable from this process: no good backup it can vouch for
        backups = []
    last_good = backups[0] if backups else None
    failure = _read_failure(directory)
    if failure is not None and last_good is not None and failure.at <= last_good.created_at:
        failure = None
    return BackupStatus(last_good, failure)


async def status(settings: Settings) -> BackupStatus | None:
    """The last good backup (time, size) and a later failure; None when backups are not
    configured. For /healthz details and the operator console."""
    if settings.backup_dir is None:
        return None
    return await asyncio.to_thread(read_status, settings.backup_dir)
