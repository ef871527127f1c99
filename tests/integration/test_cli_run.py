"""`pozapisi run` as a newcomer uses it: with no DATABASE_URL (embedded server) and with one."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BOT_TOKEN, ROOT, ServerHandle, free_port


def _serve(env: dict[str, str], port: int, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run", "--port", str(port), *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait_healthy(
    proc: subprocess.Popen[bytes], url: str, verify: ssl.SSLContext | bool = True
) -> None:
    deadline = time.monotonic() + 120  # only catches a server that never starts
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"pozapisi run exited early:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError("pozapisi run never became healthy")


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.stdout.read().decode() if proc.stdout else ""


def _check_demo(url: str) -> None:
    health = httpx.get(f"{url}/healthz").json()
    assert health == {"status": "ok", "database": "ok", "queue": "ok"}
    page = httpx.get(f"{url}/app", follow_redirects=True, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert str(page.url).endswith("/app/b/demo-salon")
    assert "Ақ Бота" in page.text
    services = httpx.get(f"{url}/api/v1/businesses/demo-salon/services").json()["services"]
    assert len(services) == 8
    # development: the app serves the landing it links to (built into LANDING_SITE_DIR)
    policy_url = httpx.get(f"{url}/api/v1/policy", headers={"Accept-Language": "kk"}).json()["url"]
    assert policy_url == f"{url}/kk/privacy/", "LANDING_BASE_URL's default is this server"
    for landing_url in (f"{url}/", f"{url}/ru/", policy_url, f"{url}/sitemap.xml"):
        landing = httpx.get(landing_url)
        assert landing.status_code == 200, landing_url
        assert "set-cookie" not in landing.headers, landing_url


def _base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "TEST_DATABASE", "LANDING_", "PUBLIC_BASE_URL"))
    }
    env.update(TELEGRAM_BOT_TOKEN=BOT_TOKEN, POZAPISI_ENV="development")
    return env


def test_run_without_database_url_starts_and_stops_an_embedded_server() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pz-run-"))
    try:
        port = free_port()
        env = {**_base_env(), "DATA_DIR": str(data_dir), "LANDING_SITE_DIR": str(data_dir / "site")}
        proc = _serve(env, port)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(proc, url)
            _check_demo(url)
            pid_file = data_dir / "postgres" / "data" / "postmaster.pid"
            assert pid_file.exists(), "the embedded server should run under DATA_DIR"
        finally:
            output = _stop(proc)
        assert proc.returncode == 0, output
        assert not pid_file.exists(), "the embedded server must stop when `pozapisi run` exits"
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_run_with_database_url_uses_that_server(main_server: ServerHandle) -> None:
    if main_server.embedded is not None:
        pytest.skip("needs an external server (TEST_DATABASE_URL)")
    name_urls = await main_server.create_database()
    data_dir = Path(tempfile.mkdtemp(prefix="pz-run-"))
    try:
        port = free_port()
        env = {**_base_env(), "DATABASE_URL": name_urls.owner, "DATA_DIR": str(data_dir),
               "LANDING_SITE_DIR": str(data_dir / "site")}  # fmt: skip
        proc = _serve(env, port)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(proc, url)
            _check_demo(url)
        finally:
            output = _stop(proc)
        assert proc.returncode == 0, output
        assert not (data_dir / "postgres").exists(), "no embedded server when DATABASE_URL is set"
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def test_bad_configuration_is_a_clear_error() -> None:
    env = {**_base_env(), "DATABASE_URL": "mysql://nope", "DATA_DIR": tempfile.gettempdir()}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
