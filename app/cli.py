"""The ``pozapisi`` command.

pozapisi run [--host 127.0.0.1] [--port 8000] [--workers 1] [--no-worker]
             [--tls-cert FILE --tls-key FILE]
pozapisi worker [--concurrency 10]
pozapisi db upgrade
pozapisi demo
pozapisi audit verify
pozapisi backup create | list | verify FILE | restore FILE [--into DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db import bootstrap, budget
from app.db.bootstrap import DatabaseUrls
from app.db.policy_versions import PolicyVersionError
from app.db.urls import to_sqlalchemy
from app.settings import Settings, SettingsError, load_settings


def _fail(message: str) -> int:
    print(f"pozapisi: {message}", file=sys.stderr)
    return 2


async def _with_owner_session(
    owner_url: str, work: Callable[[AsyncSession], Coroutine[Any, Any, Any]]
) -> Any:
    engine = create_async_engine(to_sqlalchemy(owner_url), poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def load_demo_if_empty(owner_url: str, *, force: bool = False) -> str | None:
    from app.domain.demo import SLUG, add_logins_if_demo, load_demo
    from app.models import Business

    async def work(session: AsyncSession) -> str | None:
        count = await session.scalar(select(func.count()).select_from(Business))
        if count and not force:
            return SLUG if await add_logins_if_demo(session) else None
        business = await load_demo(session)
        return business.slug

    result: str | None = await _with_owner_session(owner_url, work)
    return result


async def audit_verify(owner_url: str) -> list[tuple[int, int, int | None, str]]:
    async def work(session: AsyncSession) -> list[tuple[int, int, int | None, str]]:
        rows = await session.execute(
            text("SELECT chain_key, seq, audit_id, problem FROM audit_verify()")
        )
        return [(r.chain_key, r.seq, r.audit_id, r.problem) for r in rows]

    result: list[tuple[int, int, int | None, str]] = await _with_owner_session(owner_url, work)
    return result


def _cmd_db_upgrade(urls: DatabaseUrls, _args: argparse.Namespace, _settings: Settings) -> int:
    applied = asyncio.run(bootstrap.upgrade(urls.owner))
    if applied:
        named = ", ".join(applied) if len(applied) <= 10 else "every file"
        print(f"applied {len(applied)} definitions from app/db/sql ({named})")
    print("database is up to date")
    return 0


def demo_sign_in_text(origin: str) -> str:
    """Where to sign in to the demo's dashboard, and as whom (development only)."""
    from app.domain.demo import DEMO_LOGINS

    people = "\n".join(
        f"  {role:<6}  {email} / {password}" for role, email, password in DEMO_LOGINS
    )
    return f"the dashboard: {origin}/dashboard/signin\n{people}"


def _cmd_demo(urls: DatabaseUrls, _args: argparse.Namespace, settings: Settings) -> int:
    if settings.is_production:
        return _fail("the demo business is for development: refused when POZAPISI_ENV=production")
    asyncio.run(bootstrap.upgrade(urls.owner))
    slug = asyncio.run(load_demo_if_empty(urls.owner, force=True))
    print(f"demo business: {slug}")
    print(demo_sign_in_text(os.environ.get("PUBLIC_BASE_URL", settings.public_base_url)))
    return 0


async def add_operator(owner_url: str, secret_key: str, email: str, role: str) -> Any:
    """Enrol an operator of the console ``/ops/`` (app.domain.operators.enrol), as the owner."""
    from app.domain import operators

    async def work(session: AsyncSession) -> Any:
        return await operators.enrol(session, secret_key, email=email, role=role)

    return await _with_owner_session(owner_url, work)


def _cmd_ops_add_operator(urls: DatabaseUrls, args: argparse.Namespace, settings: Settings) -> int:
    from app.domain.errors import ValidationFailed
    from app.settings import secret_key_for

    asyncio.run(bootstrap.upgrade(urls.owner))
    try:
        made = asyncio.run(
            add_operator(urls.owner, secret_key_for(settings), args.email, args.role)
        )
    except ValidationFailed as refused:
        return _fail("; ".join(f"{k}: {v}" for k, v in refused.fields.items()))
    print(f"operator {args.email} ({args.role}), account {made.account_id}")
    if made.password:
        print(f"first password (shown once; change it by the password reset): {made.password}")
    print("add this to the operator's authenticator app (shown once):")
    print(f"  {made.provisioning_uri}")
    print("recovery codes, each good once (shown once; keep them offline):")
    for code in made.recovery_codes:
        print(f"  {code}")
    return 0


async def disable_operator(owner_url: str, email: str) -> int | None:
    """Take an operator's access away (app.domain.operators.disable), as the owner."""
    from app.domain import operators

    async def work(session: AsyncSession) -> int | None:
        return await operators.disable(session, email=email)

    result: int | None = await _with_owner_session(owner_url, work)
    return result


def _cmd_ops_disable_operator(
    urls: DatabaseUrls, args: argparse.Namespace, _settings: Settings
) -> int:
    asyncio.run(bootstrap.upgrade(urls.owner))
    if asyncio.run(disable_operator(urls.owner, args.email)) is None:
        return _fail(f"no active operator has the e-mail {args.email}")
    print(f"operator {args.email}: access taken away, console sessions ended")
    return 0


def _cmd_audit_verify(urls: DatabaseUrls, _args: argparse.Namespace, _settings: Settings) -> int:
    problems = asyncio.run(audit_verify(urls.owner))
    if not problems:
        print("audit log: every chain holds")
        return 0
    chain, seq, audit_id, problem = problems[0]
    where = "platform chain" if chain == 0 else f"business {chain}"
    print(f"audit log BROKEN: {where}, entry #{seq} (row id {audit_id}): {problem}")
    if len(problems) > 1:
        print(f"... and {len(problems) - 1} more")
    return 1


def _backup_config(settings: Settings) -> Any:
    from app.domain.backups import BackupConfig

    return BackupConfig.from_settings(settings)


def _backup_file(settings: Settings, name: str) -> Path:
    """FILE as given, else the backup of that name in BACKUP_DIR."""
    path = Path(name)
    if not path.exists() and settings.backup_dir is not None and path.name == name:
        return settings.backup_dir / name
    return path


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


def _cmd_backup(urls: DatabaseUrls, args: argparse.Namespace, settings: Settings) -> int:
    """``pozapisi backup …``: 0 done; 1 refused (wrong key, altered or cut-short file, target
    not empty, a failed pg_dump); 2 not configured."""
    from app.domain import backups
    from app.domain.backup_seal import SealError

    try:
        config = _backup_config(settings)
    except backups.BackupError as exc:
        return _fail(str(exc))
    action = args.backup_command
    try:
        if action == "create":
            made = asyncio.run(backups.create(config, urls.owner))
            print(f"backup written: {made.path} ({_size(made.size)}, encrypted)")
            for path in backups.rotate(config, made.created_at):
                print(f"removed (older than {config.keep_days} days): {path.name}")
        elif action == "list":
            found = backups.list_backups(config.directory)
            for backup in found:
                print(f"{backup.path.name}  {backup.created_at:%Y-%m-%d %H:%M:%S} UTC  "
                      f"{_size(backup.size)}")  # fmt: skip
            print(f"{len(found)} backups in {config.directory}")
            failure = backups.read_status(config.directory).last_failure
            if failure is not None:
                print(f"last failure, {failure.at:%Y-%m-%d %H:%M} UTC: {failure.error}")
        elif action == "verify":
            path = _backup_file(settings, args.file)
            size = backups.verify(config, path)
            print(f"{path.name}: authentic and complete ({_size(size)} of pg_dump archive)")
        else:
            path = _backup_file(settings, args.file)
            target = args.into or urls.owner
            restored = asyncio.run(backups.restore(config, path, target))
            print(f"{path.name}: restored {restored.tables} tables; audit chains verified")
    except (backups.BackupError, SealError) as exc:
        print(f"pozapisi backup {action}: REFUSED: {exc}", file=sys.stderr)
        return 1
    return 0


def _origin(host: str, port: int, scheme: str = "http") -> str:
    """The address a browser on this machine uses for ``--host``/``--port``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _tls_problem(args: argparse.Namespace) -> str | None:
    """Why ``--tls-cert``/``--tls-key`` cannot serve, said before anything starts; None if fine."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        return "give both --tls-cert and --tls-key (the certificate chain and its private key)"
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            return f"{option} {path}: cannot read it ({exc.strerror or exc})"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError, ValueError) as exc:
        return (
            f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate chain and its matching "
            f"private key ({exc})"
        )
    return None


def tls13_context(_config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: its own context (certificate, key, ALPN), refusing
    anything older than TLS 1.3 (policy 10.1). uvicorn has no option for a minimum version
    (``ssl_version`` picks a protocol constant, and there is none for 1.3 only), so the
    context's ``minimum_version`` is set here. Module-level, so ``--workers`` can pickle it."""
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def _cmd_run(urls: DatabaseUrls, args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app import landing

    tls: dict[str, Any] = {}
    if args.tls_cert:
        tls = {
            "ssl_certfile": args.tls_cert,
            "ssl_keyfile": args.tls_key,
            "ssl_context_factory": tls13_context,
        }
    origin = _origin(args.host, args.port, "https" if tls else "http")
    if not args.no_worker:
        from workers.queue import session_problem

        if problem := session_problem(settings, urls.worker):
            return _fail(f"{problem}; or run the workers apart (`pozapisi run --no-worker`)")
    need = budget.for_run(settings, web_workers=args.workers, with_worker=not args.no_worker)
    if refused := asyncio.run(budget.check(urls.owner, "pozapisi run", need)):
        return _fail(refused)
    asyncio.run(bootstrap.upgrade(urls.owner))
    # the demo business and its known password are for development, never a real platform
    slug = None if settings.is_production else asyncio.run(load_demo_if_empty(urls.owner))
    if slug:
        print(f"the demo business: {origin}/app/b/{slug}")
        print(demo_sign_in_text(origin))
    # development: the app serves the landing (built now if missing or stale), and its links to
    # the landing and the privacy policy point at this server (LANDING_BASE_URL's default)
    landing_dir = landing.prepare(settings, echo=lambda line: print(f"pozapisi: {line}"))
    os.environ.setdefault("PUBLIC_BASE_URL", origin)
    os.environ["DATABASE_URL"] = urls.owner
    os.environ["DATABASE_APP_URL"] = urls.app
    os.environ["DATABASE_WORKER_URL"] = urls.worker
    # one notification worker inside the web process, so the demo needs nothing else running
    os.environ["POZAPISI_IN_PROCESS_WORKER"] = "0" if args.no_worker else "1"
    print(f"PoZapisi on {origin}/app" + (f" (landing on {origin}/)" if landing_dir else ""))
    uvicorn.run(
        "app.main:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        server_header=False,
        **tls,
    )
    return 0


def _cmd_worker(urls: DatabaseUrls, args: argparse.Namespace, settings: Settings) -> int:
    import msgspec

    from workers.runner import run_worker

    if settings.database_url is None:  # the embedded server: the backup job dumps as its owner
        settings = msgspec.structs.replace(settings, database_url=urls.owner)
    if refused := asyncio.run(
        budget.check(urls.worker, "pozapisi worker", budget.for_worker(settings))
    ):
        return _fail(refused)
    return run_worker(settings, urls.worker, concurrency=args.concurrency)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pozapisi", description="PoZapisi booking platform")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="migrate, load the demo if empty, serve")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--workers", type=int, default=1)
    run.add_argument(
        "--no-worker", action="store_true", help="do not run a notification worker in-process"
    )
    run.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS (TLS 1.3): certificate chain")
    run.add_argument("--tls-key", metavar="FILE", help="the certificate's private key")
    run.set_defaults(handler=_cmd_run)
    worker = sub.add_parser("worker", help="run a notification/cron worker (SAQ)")
    worker.add_argument("--concurrency", type=int, default=10, help="jobs at once")
    worker.set_defaults(handler=_cmd_worker)
    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations and policy versions").set_defaults(
        handler=_cmd_db_upgrade
    )
    sub.add_parser("demo", help="load the demo business (idempotent)").set_defaults(
        handler=_cmd_demo
    )
    audit = sub.add_parser("audit", help="audit log commands")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="exit 0 when every chain holds, 1 otherwise").set_defaults(
        handler=_cmd_audit_verify
    )
    ops = sub.add_parser("ops", help="the operator console's operators")
    ops_sub = ops.add_subparsers(dest="ops_command", required=True)
    add_op = ops_sub.add_parser("add-operator", help="enrol an operator; prints the TOTP URI once")
    add_op.add_argument("email", metavar="EMAIL")
    add_op.add_argument("--role", required=True, choices=("support", "privacy", "admin"))
    add_op.set_defaults(handler=_cmd_ops_add_operator)
    disable_op = ops_sub.add_parser(
        "disable-operator", help="take an operator's access away; their sessions end at once"
    )
    disable_op.add_argument("email", metavar="EMAIL")
    disable_op.set_defaults(handler=_cmd_ops_disable_operator)
    backup = sub.add_parser("backup", help="encrypted backups (BACKUP_DIR, BACKUP_KEY)")
    backup_sub = backup.add_subparsers(dest="backup_command", required=True)
    backup_sub.add_parser("create", help="back up the database, then rotate").set_defaults(
        handler=_cmd_backup
    )
    backup_sub.add_parser("list", help="the backups in BACKUP_DIR, newest first").set_defaults(
        handler=_cmd_backup
    )
    verify = backup_sub.add_parser("verify", help="authenticate a backup with the key")
    verify.add_argument("file", metavar="FILE")
    verify.set_defaults(handler=_cmd_backup)
    restore = backup_sub.add_parser("restore", help="restore a backup into an EMPTY database")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument(
        "--into", metavar="DSN", help="the empty target database (default: DATABASE_URL)"
    )
    restore.set_defaults(handler=_cmd_backup)
    return parser


def _stop_embedded(urls: DatabaseUrls) -> None:
    if urls.embedded is None:
        return
    # a second Ctrl-C or SIGTERM must not cut the server's shutdown short
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        urls.embedded.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM stops like Ctrl-C: Python's default for it ends the process at once, skipping the
    # `finally` below that stops the embedded server. uvicorn handles both while it serves and,
    # with one process, raises the signal again once it has shut down: this handler then turns
    # it into KeyboardInterrupt, which uvicorn and `main` treat as a clean stop.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        settings = load_settings()
    except SettingsError as exc:
        return _fail(f"configuration error: {exc}")
    if (problem := _tls_problem(args)) is not None:
        return _fail(problem)
    try:
        urls = bootstrap.resolve(settings)
    except Exception as exc:
        return _fail(f"cannot reach or start PostgreSQL: {exc}")
    try:
        code: int = args.handler(urls, args, settings)
        return code
    except PolicyVersionError as exc:  # `db upgrade`, `run`, `demo`: the versions file is wrong
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_embedded(urls)


if __name__ == "__main__":
    raise SystemExit(main())
