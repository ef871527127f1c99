"""A private PgBouncer for tests: ``pool_mode = transaction``, a free loopback port, a temp dir.

In front of the server a test already uses (its owner DSN: ``TEST_DATABASE_URL``'s server or the
embedded one, on TCP or on a unix socket), passing every database and role through with
``auth_type = trust`` (the test servers trust their roles; the roles are named in an auth file,
as PgBouncer requires even then). PgBouncer refuses to run as root: as root it runs as the
``postgres`` OS user, through ``runuser``. ``make pgbouncer`` (run by ``make test``) installs
Debian's package; it starts no service.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from app.db.urls import APP_ROLE, WORKER_ROLE
from tests.conftest import free_port

SKIP_REASON = (
    "the scale-out test needs pgbouncer on PATH: run `make pgbouncer` as root "
    "(or `sudo apt-get install pgbouncer`)"
)
RUN_AS = "postgres"  # the OS user PgBouncer runs as when the tests run as root


def pgbouncer_executable() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


@dataclass(frozen=True)
class Bouncer:
    port: int
    workdir: Path

    def url(self, dsn: str) -> str:
        """``dsn`` (same role, same database) through this PgBouncer."""
        parts = urlsplit(dsn)
        user = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def log(self) -> str:
        path = self.workdir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _backend(owner_dsn: str) -> tuple[str, int]:
    """The server's host (or unix socket directory) and port, as libpq reads ``owner_dsn``."""
    parts = urlsplit(owner_dsn)
    host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
    return unquote(host), parts.port or 5432


def _config(workdir: Path, port: int, host: str, server_port: int, pool_size: int) -> str:
    return f"""\
[databases]
* = host={host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
server_lifetime = 3600
ignore_startup_parameters = extra_float_digits
# a session through PgBouncer shows as "<application_name> - 127.0.0.1:<port>" on the server
application_name_add_host = 1
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
log_connections = 0
log_disconnections = 0
"""


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def private_pgbouncer(owner_dsn: str, *, pool_size: int = 20) -> Iterator[Bouncer]:
    """Start PgBouncer in front of ``owner_dsn``'s server; yield it; stop it after."""
    executable = pgbouncer_executable()
    assert executable is not None, SKIP_REASON
    workdir = Path(tempfile.mkdtemp(prefix="pz-pgbouncer-"))
    host, server_port = _backend(owner_dsn)
    users = ("postgres", APP_ROLE, WORKER_ROLE)
    (workdir / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
    command = [executable, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:  # "PgBouncer should not run as root"
        account = pwd.getpwnam(RUN_AS)
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        command = ["runuser", "-u", RUN_AS, "--", *command]
    for _attempt in range(3):  # another process may take the free port before PgBouncer does
        port = free_port()
        ini = workdir / "pgbouncer.ini"
        ini.write_text(_config(workdir, port, host, server_port, pool_size))
        if os.geteuid() == 0:
            os.chown(ini, pwd.getpwnam(RUN_AS).pw_uid, pwd.getpwnam(RUN_AS).pw_gid)
        output = (workdir / "stdout.log").open("ab")
        proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20  # only catches a PgBouncer that never comes up
        while proc.poll() is None and not _answers(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and _answers(port):
            break
        proc.kill()
        proc.wait(timeout=10)
        output.close()
    else:
        raise AssertionError(f"pgbouncer did not start: see {workdir}")
    try:
        yield Bouncer(port, workdir)
    finally:
        proc.terminate()  # runuser passes SIGTERM on to PgBouncer
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        output.close()
        shutil.rmtree(workdir, ignore_errors=True)
