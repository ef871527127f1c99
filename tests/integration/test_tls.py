"""Inbound TLS (policy 10.1): `pozapisi run --tls-cert --tls-key` serves TLS 1.3 only, and
production answers over HTTPS with Strict-Transport-Security, whether TLS ends at the app or at
a proxy of TRUSTED_PROXIES that says so."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from app.db.embedded import EmbeddedServer, find_bindir
from app.main import create_app
from tests.conftest import ROOT, free_port, make_settings
from tests.integration.test_cli_run import _base_env, _serve, _wait_healthy

HSTS = "max-age=63072000; includeSubDomains"
PRODUCTION = {"POZAPISI_ENV": "production", "SECRET_KEY": "p" * 40}


class TlsServer:
    def __init__(self, url: str, ca: trustme.CA) -> None:
        self.url = url
        self.ca = ca

    def context(self, **versions: ssl.TLSVersion) -> ssl.SSLContext:
        """A client that trusts the test CA, limited to the given TLS versions."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        for name, version in versions.items():
            setattr(context, name, version)
        return context

    def handshake(self, context: ssl.SSLContext) -> str | None:
        host, port = self.url.removeprefix("https://").split(":")
        with (
            socket.create_connection((host, int(port))) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return tls.version()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """`pozapisi run` in production with a certificate from a test CA, on its own embedded
    PostgreSQL (the shared server's connections are left to the other tests). Two server
    processes: each builds its TLS context from the pickled configuration, minimum included."""
    workdir = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    data_dir = workdir / "data"
    port = free_port()
    env = {**_base_env(), **PRODUCTION, "DATA_DIR": str(data_dir)}
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    proc = _serve(env, port, "--no-worker", "--workers", "2", *tls)
    server = TlsServer(f"https://127.0.0.1:{port}", ca)
    try:
        _wait_healthy(proc, server.url, verify=server.context())
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if (data_dir / "postgres" / "data" / "postmaster.pid").exists():
            EmbeddedServer(root=data_dir / "postgres", bindir=find_bindir()).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.policy("10.1")
def test_a_client_limited_to_tls_1_2_is_refused(tls_server: TlsServer) -> None:
    older = tls_server.context(maximum_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError):
        tls_server.handshake(older)
    # the same client may speak 1.3: then the server agrees, so the refusal above was the version
    assert tls_server.handshake(tls_server.context()) == "TLSv1.3"


@pytest.mark.policy("10.1")
def test_a_tls_1_3_client_is_served_with_hsts(tls_server: TlsServer) -> None:
    newest = tls_server.context(minimum_version=ssl.TLSVersion.TLSv1_3)
    assert tls_server.handshake(newest) == "TLSv1.3"
    response = httpx.get(f"{tls_server.url}/healthz", verify=newest)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "queue": "ok"}
    assert response.headers["strict-transport-security"] == HSTS


def _start_up(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**_base_env(), **PRODUCTION, "DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "run", "--port", str(free_port()), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _pem_pair(tmp_path: Path) -> tuple[Path, Path]:
    issued = trustme.CA().issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("missing cert", "--tls-cert {dir}/absent.pem: cannot read it (No such file or directory)"),
        ("missing key", "--tls-key {dir}/absent.pem: cannot read it (No such file or directory)"),
        ("a directory as key", "--tls-key {dir}: cannot read it (Is a directory)"),
        ("key that is not a key", "not a PEM certificate chain and its matching private key"),
        ("key of another cert", "not a PEM certificate chain and its matching private key"),
        ("cert without key", "give both --tls-cert and --tls-key"),
    ],
)
def test_a_bad_certificate_or_key_is_a_clear_start_up_error(
    tmp_path: Path, which: str, expected: str
) -> None:
    cert, key = _pem_pair(tmp_path)
    other_key = trustme.CA().issue_cert("127.0.0.1").private_key_pem
    absent = tmp_path / "absent.pem"
    args = {
        "missing cert": ["--tls-cert", str(absent), "--tls-key", str(key)],
        "missing key": ["--tls-cert", str(cert), "--tls-key", str(absent)],
        "a directory as key": ["--tls-cert", str(cert), "--tls-key", str(tmp_path)],
        "key that is not a key": ["--tls-cert", str(cert), "--tls-key", str(cert)],
        "key of another cert": ["--tls-cert", str(cert), "--tls-key", str(tmp_path / "other.pem")],
        "cert without key": ["--tls-cert", str(cert)],
    }[which]
    other_key.write_to_path(str(tmp_path / "other.pem"))

    result = _start_up(tmp_path, *args)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("pozapisi: ")
    assert expected.format(dir=tmp_path) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "postgres").exists(), "nothing starts before TLS is checked"


async def _headers(settings_env: dict[str, str], scheme: str, peer: str, **headers: str) -> Any:
    """The real app's response headers for one request, with the peer and scheme given (as
    uvicorn would set them), on a path that needs no database."""
    app = create_app(make_settings(**settings_env), app_url="postgresql://x@127.0.0.1/x")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": scheme, "path": "/schema/openapi.json", "raw_path": b"/schema/openapi.json",
        "root_path": "", "query_string": b"", "client": (peer, 50000), "server": ("app", 443),
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 200
    return httpx.Headers([(k.decode(), v.decode()) for k, v in start["headers"]])


BEHIND_PROXY = {**PRODUCTION, "TRUSTED_PROXIES": "10.0.0.5"}


@pytest.mark.policy("10.1")
@pytest.mark.parametrize(
    ("settings_env", "scheme", "peer", "headers", "sent"),
    [
        (PRODUCTION, "https", "203.0.113.7", {}, True),
        (BEHIND_PROXY, "http", "10.0.0.5", {"x_forwarded_proto": "https"}, True),
        (BEHIND_PROXY, "http", "10.0.0.5", {"forwarded": "for=203.0.113.7;proto=https"}, True),
        # what the nearest proxy wrote counts, not what a client put before it
        (BEHIND_PROXY, "http", "10.0.0.5", {"x_forwarded_proto": "https, http"}, False),
        (BEHIND_PROXY, "http", "10.0.0.5", {"x_forwarded_proto": "http"}, False),
        (BEHIND_PROXY, "http", "10.0.0.5", {}, False),
        # anyone else's say-so is not believed
        (BEHIND_PROXY, "http", "192.0.2.50", {"x_forwarded_proto": "https"}, False),
        (PRODUCTION, "http", "10.0.0.5", {"x_forwarded_proto": "https"}, False),
        (PRODUCTION, "http", "203.0.113.7", {}, False),
        # development never pins a developer's browser to HTTPS
        ({"POZAPISI_ENV": "development"}, "https", "127.0.0.1", {}, False),
    ],
    ids=[
        "tls-here", "trusted-x-forwarded-proto", "trusted-forwarded", "client-spoofed-https",
        "trusted-says-http", "trusted-says-nothing", "untrusted-peer", "no-trusted-proxies",
        "plain-http", "development",
    ],
)  # fmt: skip
async def test_hsts_goes_with_https_in_production_only(
    settings_env: dict[str, str], scheme: str, peer: str, headers: dict[str, str], sent: bool
) -> None:
    answer = await _headers(settings_env, scheme, peer, **headers)
    assert "content-security-policy" in answer  # the middleware did run
    assert answer.get("strict-transport-security") == (HSTS if sent else None)
