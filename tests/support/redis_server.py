"""A private ``redis-server`` for tests: a free loopback port, a temp dir, no persistence.

Never the machine's shared Redis on 6379: each test that needs Redis gets an empty server of
its own, stopped afterwards. ``make redis`` (run by ``make test``) installs Debian's package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.conftest import free_port

SKIP_REASON = (
    "the Redis queue test needs redis-server on PATH: run `make redis` as root "
    "(or `sudo apt-get install redis-server`)"
)


def redis_server_executable() -> str | None:
    return shutil.which("redis-server")


def _answers(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        client.close()


@contextmanager
def private_redis() -> Iterator[str]:
    """Start ``redis-server``; yield its ``redis://127.0.0.1:N/0`` URL; stop it after."""
    executable = redis_server_executable()
    assert executable is not None, SKIP_REASON
    workdir = Path(tempfile.mkdtemp(prefix="pz-redis-"))
    for _attempt in range(3):  # another process may take the free port before the server does
        port = free_port()
        log = (workdir / f"redis-{port}.log").open("ab")
        proc = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        while proc.poll() is None and not _answers(port):
            time.sleep(0.05)
        if proc.poll() is None:
            break
        log.close()
    else:
        raise AssertionError(f"redis-server did not start: see {workdir}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


# SAQ's Redis sweep may refresh a relay job (ttl=-1) just as it is deleted on finishing, and logs
# that with a traceback; the job had finished and nothing is lost. Left to SAQ.
_SAQ_SWEEP_RACE = re.compile(
    r"ERROR saq: Upkeep task failed unexpectedly\nTraceback.*?RuntimeError: Job<[^\n]*> doesn't "
    r"exist\n",
    re.S,
)


def without_sweep_race(output: str) -> str:
    """A worker's output less SAQ's harmless sweep race, for a "no traceback" check."""
    return _SAQ_SWEEP_RACE.sub("", output)
