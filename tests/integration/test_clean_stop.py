"""`pozapisi run` stops cleanly on SIGTERM (a service manager, `docker stop`) as on SIGINT
(Ctrl-C), with one server process or several, and the embedded PostgreSQL it started stops too.

Before: uvicorn, having shut down on SIGTERM, raised the signal again under Python's default
handler, which ended the process before `main` could stop the embedded server; it ran on."""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from app.db.embedded import EmbeddedServer, find_bindir
from tests.conftest import free_port
from tests.integration.test_cli_run import _base_env, _serve, _wait_healthy


def _alive(pid: int) -> bool:
    """Whether the process runs; a zombie (ended, not yet reaped by its parent) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_run_and_its_embedded_server(signum: signal.Signals, workers: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pz-stop-"))
    pid_file = data_dir / "postgres" / "data" / "postmaster.pid"
    # test: no landing to build (development builds it first); the signals are the point here
    env = {**_base_env(), "DATA_DIR": str(data_dir), "POZAPISI_ENV": "test"}
    port = free_port()
    proc = _serve(env, port, "--workers", str(workers))
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{port}")
        postmaster = int(pid_file.read_text().split()[0])
        assert _alive(postmaster), "the embedded server should be running under DATA_DIR"

        proc.send_signal(signum)
        output = proc.communicate(timeout=120)[0].decode()  # the bound only catches a hang

        assert proc.returncode == 0, f"exit {proc.returncode}, not a clean stop:\n{output}"
        assert "Application shutdown complete" in output, "the app did not shut down gracefully"
        assert not pid_file.exists(), f"postmaster.pid is left behind:\n{output}"
        assert not _alive(postmaster), f"PostgreSQL {postmaster} still runs"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid_file.exists():  # a failed run must not leave a server behind
            EmbeddedServer(root=data_dir / "postgres", bindir=find_bindir()).stop()
        shutil.rmtree(data_dir, ignore_errors=True)
