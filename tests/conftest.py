"""Shared fixtures: real PostgreSQL servers, a fresh database per run, the app, a live server.

Servers: ``TEST_DATABASE_URL`` (an external server; `make test` sets it when one answers on
127.0.0.1:5432) and an embedded one started from the project's own binaries. The whole suite
runs on the first available ("main"); tests marked ``both_servers`` run on both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db import bootstrap
from app.db.bootstrap import DatabaseUrls
from app.db.embedded import EmbeddedServer, find_bindir
from app.db.session import Database
from app.db.urls import APP_ROLE, WORKER_ROLE, to_libpq, to_sqlalchemy, with_database, with_user
from app.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "123456:TEST-bot-token-for-pozapisi"
SECRET_KEY = "test-secret-key-0123456789abcdef-0123456789"


def skipped_suites(reports: list[pytest.TestReport]) -> dict[tuple[str, str], list[str]]:
    """Skipped tests by (suite, reason): the suite is the directory under tests/ (e.g.
    ``tests/browser``); the value lists the module of each skipped test."""
    suites: dict[tuple[str, str], list[str]] = {}
    for report in reports:
        path = report.nodeid.split("::", 1)[0]
        suite, _, module = path.rpartition("/")
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        suites.setdefault((suite, reason.removeprefix("Skipped: ")), []).append(module)
    return suites


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Iterator[None]:
    """End with one line naming every suite that was skipped, and why: a skip is never silent.
    (A wrapper, so the line comes after pytest's own short summary of the skips.)"""
    yield
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if hasattr(r, "nodeid")]
    suites = skipped_suites(skipped)
    if not suites:
        terminalreporter.write_line("skipped suites: none")
        return
    parts = []
    for (suite, reason), modules in sorted(suites.items()):
        names = ", ".join(sorted({m.removesuffix(".py") for m in modules}))
        tests = f"{len(modules)} test" + ("s" if len(modules) > 1 else "")
        parts.append(f"{suite} — {tests} in {names}: {reason}")
    terminalreporter.write_line("skipped suites: " + " | ".join(parts), yellow=True, bold=True)


def make_settings(**overrides: str) -> Settings:
    env = {
        "POZAPISI_ENV": "test",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "LANDING_BASE_URL": "https://pozapisi.kz",
        **overrides,
    }
    return load_settings(env)


class ServerHandle:
    """One PostgreSQL server: makes fresh, migrated databases on it."""

    def __init__(self, name: str, base_url: str, embedded: EmbeddedServer | None = None) -> None:
        self.name = name
        self.base_url = base_url  # owner DSN on the maintenance database
        self.embedded = embedded
        self.created: list[str] = []

    async def create_database(self) -> DatabaseUrls:
        name = f"pozapisi_test_{uuid4().hex[:12]}"
        conn = await asyncpg.connect(to_libpq(self.base_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        owner = with_database(self.base_url, name)
        await bootstrap.upgrade(owner)
        return DatabaseUrls(
            owner=owner, app=with_user(owner, APP_ROLE), worker=with_user(owner, WORKER_ROLE)
        )

    async def drop_all(self) -> None:
        conn = await asyncpg.connect(to_libpq(self.base_url))
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedServer]:
    root = Path(tempfile.mkdtemp(prefix="pz-pg-"))
    server = EmbeddedServer(root=root, bindir=find_bindir())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest) -> dict[str, ServerHandle]:
    """'main' runs the suite; 'other' (when there is one) repeats the both_servers tests."""
    external = os.environ.get("TEST_DATABASE_URL")
    embedded = request.getfixturevalue("embedded_server")
    handles = {"embedded": ServerHandle("embedded", embedded.owner_url, embedded)}
    if external:
        handles["external"] = ServerHandle("external", external)
        return {"main": handles["external"], "other": handles["embedded"]}
    return {"main": handles["embedded"]}


@pytest.fixture(scope="session")
async def main_server(servers: dict[str, ServerHandle]) -> AsyncIterator[ServerHandle]:
    yield servers["main"]
    for handle in servers.values():
        await handle.drop_all()


@pytest.fixture(scope="session")
async def database(main_server: ServerHandle) -> DatabaseUrls:
    """The suite's database on the main server, migrated once."""
    return await main_server.create_database()


@pytest.fixture(params=["main", "other"])
async def any_server(
    request: pytest.FixtureRequest, servers: dict[str, ServerHandle], main_server: ServerHandle
) -> ServerHandle:
    """For tests marked both_servers: each available server in turn."""
    if request.param not in servers:
        pytest.skip("only one PostgreSQL server here (set TEST_DATABASE_URL for a second)")
    return servers[request.param]


@pytest.fixture(scope="session")
async def db(database: DatabaseUrls) -> AsyncIterator[Database]:
    runtime = Database(database.app)
    yield runtime
    await runtime.dispose()


@pytest.fixture(scope="session")
async def owner_engine(database: DatabaseUrls) -> AsyncIterator[Any]:
    engine = create_async_engine(to_sqlalchemy(database.owner), poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture
async def owner_session(owner_engine: Any) -> AsyncIterator[AsyncSession]:
    """A session as the tables' owner (for arranging test data); commit to make rows visible
    to the app, it commits what is left on exit."""
    async with AsyncSession(owner_engine, expire_on_commit=False) as session:
        yield session
        await session.commit()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
async def app(database: DatabaseUrls, settings: Settings) -> Any:
    from app.main import create_app

    return create_app(settings, app_url=database.app)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client over https:// (Secure cookies are dropped on plain http)."""
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app, base_url="https://testserver.local") as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(database: DatabaseUrls) -> Iterator[str]:
    """The real app under uvicorn in a subprocess (2 workers), for concurrency tests."""
    port = free_port()
    env = {
        **os.environ,
        "POZAPISI_ENV": "test",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database.owner,
        "DATABASE_APP_URL": database.app,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # only catches a server that never comes up
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("the app server exited during start-up")
        time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("the app server did not answer /healthz")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_for(predicate: Any, *, attempts: int = 200, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; the bound only catches hangs."""
    for _ in range(attempts):
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not reached")
