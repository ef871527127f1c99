"""Fixtures for the workers: a database of their own, the provider stub, a real SMTP server.

The worker tests get a fresh database (the relay takes *every* due row, so other suites' rows
must not be in it), and each test starts with an empty outbox and an empty queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.session import make_engine
from app.db.urls import to_sqlalchemy
from app.models import Account
from app.settings import Settings
from tests.conftest import BOT_TOKEN, ROOT, SECRET_KEY, ServerHandle, free_port, make_settings
from tests.factories import next_telegram_id
from tests.workers.provider_stub import ProviderStub
from workers.jobs import build_channels, build_relay
from workers.relay import Relay

PUBLIC_URL = "https://app.pozapisi.test"
SMS_KEY = "sms-test-key-0123456789"
WEBHOOK_SECRET = "webhook-secret-0123456789"


class Mailbox:
    """aiosmtpd handler keeping every message that arrives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 Message accepted"


@pytest.fixture(scope="session")
def stub() -> Iterator[ProviderStub]:
    server = ProviderStub(bot_token=BOT_TOKEN, sms_key=SMS_KEY).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pz-workers-"))


def worker_env(stub: ProviderStub, smtp_port: int, data_dir: Path) -> dict[str, str]:
    """Settings of every worker in these tests — in-process or a real subprocess alike."""
    return {
        "TELEGRAM_API_URL": stub.telegram_url,
        "SMS_API_URL": stub.sms_url,
        "SMS_API_KEY": SMS_KEY,
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DATA_DIR": str(data_dir),
        "NOTIFY_RETRY_BASE_SECONDS": "0.05",
        # generous: the provider stub shares a busy test process
        "NOTIFY_TIMEOUT_SECONDS": "5",
        "NOTIFY_LEASE_SECONDS": "8",
    }


@pytest.fixture(scope="session")
def wsettings(stub: ProviderStub, smtp: tuple[Mailbox, int], data_dir: Path) -> Settings:
    return make_settings(**worker_env(stub, smtp[1], data_dir))


@pytest.fixture(scope="session")
async def wdb(main_server: ServerHandle) -> DatabaseUrls:
    return await main_server.create_database()


@pytest.fixture(scope="session")
async def wowner(wdb: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(to_sqlalchemy(wdb.owner), poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def worker_engine(wdb: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    """The worker role's engine: what the relay runs as in production."""
    engine = make_engine(wdb.worker, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def clean_slate(
    wowner: AsyncEngine, stub: ProviderStub, smtp: tuple[Mailbox, int]
) -> AsyncIterator[None]:
    """No rows left due from earlier tests, no jobs queued, no calls recorded."""
    async with wowner.begin() as conn:
        await conn.execute(
            text(
                "UPDATE notifications SET status = 'cancelled', last_error = 'test reset' "
                "WHERE status IN ('pending', 'sending')"
            )
        )
        await conn.execute(text("DELETE FROM saq_jobs"))
    stub.reset()
    smtp[0].messages.clear()
    yield
    stub.release()


@pytest.fixture
async def owner(wowner: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """Arrange data as the owner; commits at the end of the ``async with session.begin()``."""
    async with AsyncSession(wowner, expire_on_commit=False) as session:
        yield session


@pytest.fixture
async def relay(wsettings: Settings, worker_engine: AsyncEngine) -> AsyncIterator[Relay]:
    channels = build_channels(wsettings)
    yield build_relay(wsettings, worker_engine, channels)
    for channel in channels.values():
        await channel.aclose()


async def new_account(
    session: AsyncSession,
    *,
    telegram: bool = True,
    allows_pm: bool = True,
    phone: str | None = None,
    email: str | None = None,
    locale: str = "ru",
    name: str | None = "Айгерим",
) -> Account:
    account = Account(
        name=name,
        telegram_id=next_telegram_id() if telegram else None,
        allows_write_to_pm=allows_pm,
        phone=phone,
        email=email,
        locale=locale,
    )
    session.add(account)
    await session.flush()
    return account


async def insert_rows(engine: AsyncEngine, rows: list[dict[str, Any]]) -> list[int]:
    """Notification rows as a transaction of the app would write them (defaults filled in)."""
    now = datetime.now(UTC)
    ids = []
    async with engine.begin() as conn:
        for row in rows:
            values = {
                "business_id": None, "booking_id": None, "account_id": None, "address": None,
                "channel": "auto", "locale": "ru", "payload": "{}", "scheduled_at": now,
                **row,
            }  # fmt: skip
            result = await conn.execute(
                text(
                    "INSERT INTO notifications (business_id, booking_id, account_id, address, "
                    "event, channel, locale, payload, idempotency_key, scheduled_at) VALUES "
                    "(:business_id, :booking_id, :account_id, :address, :event, :channel, "
                    ":locale, CAST(:payload AS jsonb), :idempotency_key, :scheduled_at) "
                    "RETURNING id"
                ),
                values,
            )
            ids.append(int(result.scalar_one()))
    return ids


async def statuses(engine: AsyncEngine, ids: list[int]) -> dict[int, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, status, attempts, last_error, delivered_channel, payload, "
                "next_attempt_at FROM notifications WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        return {r.id: dict(r._mapping) for r in rows}


async def poll(predicate: Any, *, timeout_s: float = 60.0, interval: float = 0.05) -> Any:
    """Wait until ``predicate()`` is truthy; the bound only catches hangs."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached (the worker seems stuck)")
        await asyncio.sleep(interval)


class WorkerProcess:
    """``pozapisi worker`` as a real subprocess, on the workers' test database."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 8) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--concurrency", str(concurrency)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown hook, no cleanup, like a crashed machine
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        with contextlib.suppress(ValueError):
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def spawn_worker(
    wdb: DatabaseUrls, stub: ProviderStub, smtp: tuple[Mailbox, int], tmp_path: Path
) -> Iterator[Any]:
    started: list[WorkerProcess] = []
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TEST_DATABASE"))},
        "POZAPISI_ENV": "test",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": wdb.owner,
        "DATABASE_WORKER_URL": wdb.worker,
        **worker_env(stub, smtp[1], tmp_path / "data"),
    }

    def spawn(concurrency: int = 8, **extra_env: str) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess({**env, **extra_env}, log_path, concurrency)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.terminate()  # all at once: each may take its grace period
    for worker in started:
        worker.stop()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """An empty private ``redis-server`` for one test (skipped when none is installed)."""
    from tests.support.redis_server import SKIP_REASON, private_redis, redis_server_executable

    if redis_server_executable() is None:
        pytest.skip(SKIP_REASON)
    with private_redis() as url:
        yield url


@pytest.fixture
async def saq_worker(wsettings: Settings, wdb: DatabaseUrls) -> AsyncIterator[Any]:
    """One SAQ worker in this event loop, exactly as ``pozapisi run`` runs it in-process."""
    from types import SimpleNamespace

    from workers.runner import in_process_worker

    app = SimpleNamespace(state=SimpleNamespace())
    async with in_process_worker(wsettings, wdb.worker)(app):
        yield app
