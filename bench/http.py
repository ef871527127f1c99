"""Load generation and server processes for the HTTP benchmark.

The load generator is ``wrk`` (installed with apt-get when missing and we are root); without it
a bounded asyncio + httpx client sends a fixed number of requests at a fixed concurrency.
Servers are uvicorn processes with 2 workers on 127.0.0.1, each in its own process group so
they can be stopped (and, if need be, killed) as a whole — and only they.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).with_name("wrk_script.lua")
HOST = "127.0.0.1"

# (Authorization header value, JSON body) of one POST
PostRequest = tuple[str, str]
# (kind, method, path, Authorization, Cookie, body) of one request of a measurement spread over
# many addresses: a line of the request file bench/loadtest.lua reads (the last three may be
# empty); a "book" line is sent at most once, others may be sent again
Line = tuple[str, str, str, str, str, str]


@dataclass
class LoadResult:
    name: str
    ok: int  # 2xx/3xx responses
    errors: int  # non-2xx responses plus socket errors and timeouts
    seconds: float
    p50_ms: float
    p99_ms: float
    tool: str
    sent: int = 0  # every request sent (ok + errors)
    first_error: str = ""
    statuses: dict[int, int] = field(default_factory=dict)  # responses by status

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def say(text: str) -> None:
    """A line of the benchmark's progress or report, shown at once."""
    print(text, flush=True)


def loadavg() -> str:
    """The machine's load average (1, 5, 15 minutes), for the record of a measurement."""
    try:
        with open("/proc/loadavg", encoding="utf-8") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "n/a"


def percentile_ms(latencies_s: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of sorted latencies in seconds, in milliseconds (0 for none)."""
    if not latencies_s:
        return 0.0
    return latencies_s[min(len(latencies_s) - 1, int(len(latencies_s) * p / 100))] * 1000


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def ensure_wrk() -> tuple[str | None, str]:
    """The wrk binary (installing it with apt-get when root), and a note on what happened."""
    if os.environ.get("BENCH_NO_WRK"):
        return None, "BENCH_NO_WRK is set"
    found = shutil.which("wrk")
    if found:
        return found, "wrk found"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "wrk is not installed and we are not root (try: sudo apt-get install wrk)"
    print("wrk is not installed: installing it with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    for attempt in (install, ["apt-get", "update", "-qq"], install):
        try:
            done = subprocess.run(attempt, env=env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            break
        if attempt is install and done.returncode == 0:
            break
    found = shutil.which("wrk")
    return found, "wrk installed with apt-get" if found else "apt-get could not install wrk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


STOCK_UVICORN = "uvicorn"
NODELAY_UVICORN = "bench.uvicorn_nodelay"  # python -m uvicorn with TCP_NODELAY restored


class Server:
    """``python -m uvicorn <target> --factory --workers 2`` on 127.0.0.1, until ``stop()``.

    ``launcher`` is the module run with ``-m``: stock uvicorn, or ``bench.uvicorn_nodelay``
    (the same command line with Kludex/uvicorn#3149 worked around; see that module).
    """

    def __init__(
        self,
        name: str,
        target: str,
        env: dict[str, str],
        *,
        workers: int = 2,
        launcher: str = NODELAY_UVICORN,
    ) -> None:
        self.name = name
        self.target = target
        self.env = env
        self.workers = workers
        self.launcher = launcher
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"bench-{name}-", suffix=".log", delete=False
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, health_path: str, timeout: float = 60.0) -> None:
        command = [
            sys.executable, "-m", self.launcher, self.target, "--factory",
            "--host", HOST, "--port", str(self.port), "--workers", str(self.workers),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C reaches us, we stop it
        )
        deadline = time.monotonic() + timeout  # only catches a server that never comes up
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited during start-up:\n{self.tail()}")
            try:
                if httpx.get(self.url + health_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} server did not answer {health_path}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # uvicorn's supervisor stops its workers
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            # a worker left behind by a killed supervisor is still in the group we created
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if not self.log.closed:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)


_RESULT = re.compile(r"BENCH_RESULT (.*)")
_STATUS = re.compile(r"BENCH_STATUS ?(.*)")
_SAMPLE = re.compile(r"BENCH_SAMPLE (.*)")


class LoadGenerator:
    """wrk when there is one, else the bounded Python client; same ``LoadResult`` either way."""

    def __init__(
        self,
        wrk: str | None,
        *,
        seconds: float,
        threads: int = 2,
        connections: int = 50,
        fallback_requests: int = 2000,
        no_wrk_reason: str = "",
    ) -> None:
        self.wrk = wrk
        self.no_wrk_reason = no_wrk_reason
        self.seconds = seconds
        self.threads = threads
        self.connections = connections
        self.fallback_requests = fallback_requests

    @property
    def description(self) -> str:
        if self.wrk:
            return f"wrk -t{self.threads} -c{self.connections} -d{self.seconds:g}s"
        return (
            f"Python asyncio+httpx client (no wrk: {self.no_wrk_reason}), "
            f"{self.fallback_requests} requests per measurement, concurrency {self.connections}"
            " — the client saturates before fast servers do, so ratios are compressed"
        )

    def posts_needed(self, expected_rps: float, seconds: float | None = None) -> int:
        """How many distinct POST requests one measurement may consume."""
        if not self.wrk:
            return self.fallback_requests
        return int(expected_rps * (seconds or self.seconds)) + self.threads

    def measure(
        self,
        name: str,
        url: str,
        posts: Sequence[PostRequest] | None = None,
        *,
        method: str = "GET",
        seconds: float | None = None,
        headers: dict[str, str] | None = None,
        connections: int | None = None,
    ) -> LoadResult:
        """One measurement: ``posts`` (each sent at most once) or a bodiless ``method``, with
        ``headers`` on every request (a session cookie, say), from ``connections`` (default:
        the generator's)."""
        seconds = seconds or self.seconds
        connections = connections or self.connections
        if self.wrk:
            return self._wrk(name, url, posts, method, seconds, headers or {}, connections)
        total = min(self.fallback_requests, len(posts)) if posts else self.fallback_requests
        if seconds < self.seconds:  # a warm-up
            total = max(50, total // 5)
        load = python_load(
            name, url, posts, total=total, concurrency=connections, method=method, headers=headers
        )
        return asyncio.run(load)

    def _wrk(
        self,
        name: str,
        url: str,
        posts: Sequence[PostRequest] | None,
        method: str,
        seconds: float,
        headers: dict[str, str],
        connections: int,
    ) -> LoadResult:
        assert self.wrk is not None
        args = [
            self.wrk, f"-t{self.threads}", f"-c{connections}", f"-d{seconds:g}s",
            "--timeout", "10s", "-s", str(WRK_SCRIPT),
        ]  # fmt: skip
        for header, value in headers.items():  # wrk adds them to every request it formats
            args += ["-H", f"{header}: {value}"]
        args.append(url)
        requests_file = None
        try:
            if posts:
                with tempfile.NamedTemporaryFile(
                    "w", prefix="bench-posts-", suffix=".tsv", delete=False, encoding="utf-8"
                ) as handle:
                    for auth, body in posts:
                        handle.write(f"{auth}\t{body}\n")
                requests_file = handle.name
                args += ["--", requests_file, str(self.threads)]
            elif method != "GET":
                args += ["--", "", str(self.threads), method]
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                out, err = proc.communicate(timeout=seconds + 60)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        finally:
            if requests_file:
                Path(requests_file).unlink(missing_ok=True)
        match = _RESULT.search(out.decode())
        if proc.returncode != 0 or not match:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()} {out.decode()}")
        fields = {k: float(v) for k, v in (p.split("=") for p in match.group(1).split())}
        errors = sum(int(fields[k]) for k in ("status", "connect", "read", "write", "timeout"))
        sent = int(fields["requests"])
        # wrk counts non-2xx responses among its requests; socket errors are separate
        ok = sent - int(fields["status"])
        result = LoadResult(
            name=name,
            ok=ok,
            errors=errors,
            seconds=fields["duration_us"] / 1e6,
            p50_ms=fields["p50_us"] / 1000,
            p99_ms=fields["p99_us"] / 1000,
            tool="wrk",
            sent=sent,
        )
        kinds = {k: int(fields[k]) for k in ("status", "connect", "read", "write", "timeout")}
        text = out.decode(errors="replace")
        codes = _STATUS.search(text)
        if codes:
            result.statuses = {
                int(code): int(count)
                for code, count in (part.split("=") for part in codes.group(1).split())
            }
        if errors:
            sample = _SAMPLE.search(text)
            described = [
                f"{k} {v}" for k, v in kinds.items() if v and k != "status"
            ]  # socket errors
            if kinds["status"]:
                by_code = codes.group(1) if codes else ""
                shown = " ".join(p for p in by_code.split() if not p.startswith(("2", "3")))
                described.insert(0, f"HTTP {shown or kinds['status']}")
            if sample:
                described.append(f"e.g. {sample.group(1)[:160]}")
            result.first_error = ", ".join(described)
        if posts and sent > len(posts) - self.threads:
            reused = f"{sent} requests but only {len(posts)} distinct bodies: some sent twice"
            result.first_error = f"{result.first_error}; {reused}" if errors else reused
        return result


async def python_load(
    name: str,
    url: str,
    posts: Sequence[PostRequest] | None,
    *,
    total: int,
    concurrency: int,
    method: str = "GET",
    expect: tuple[int, ...] = (200, 201, 204),
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Send ``total`` requests (the POSTs in order, else bodiless ``method`` requests, with
    ``headers``) with ``concurrency`` in flight."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    ok = errors = 0
    first_error = ""
    next_index = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal ok, errors, first_error
            for index in next_index:
                started = time.perf_counter()
                try:
                    if posts:
                        auth, body = posts[index]
                        response = await client.post(
                            url,
                            content=body.encode(),
                            headers={"Authorization": auth, "Content-Type": "application/json"},
                        )
                    else:
                        response = await client.request(method, url, headers=headers)
                except httpx.HTTPError as exc:
                    errors += 1
                    first_error = first_error or repr(exc)
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code in expect:
                    ok += 1
                else:
                    errors += 1
                    first_error = first_error or f"{response.status_code} {response.text[:300]}"

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        name=name, ok=ok, errors=errors, seconds=elapsed, p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
        tool="python", sent=ok + errors, first_error=first_error, statuses=statuses,
    )  # fmt: skip
