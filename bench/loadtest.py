"""`make loadtest`: mixed traffic over many businesses, then the same while the database restarts
and a worker is killed (issue 17, item 5). Loopback only, on a PostgreSQL server of its own.

Set-up (not timed): an embedded PostgreSQL server (always: never the machine's shared one) with
a fresh database, the platform of ``bench/platform.py`` (LOADTEST_BUSINESSES salons with a month
of bookings each), the app on 127.0.0.1 (uvicorn, 2 workers, as ``make bench`` runs it), two
``pozapisi worker`` processes delivering to a loopback Telegram stub.

The traffic (wrk with ``bench/loadtest.lua`` reading a request file; every request to a random
business): 60 % availability reads (a random service and day), 20 % Mini App pages (business
page or service page), 10 % dashboard day calendars (the business owner's session), 10 %
bookings by distinct Telegram clients, each to its own free slot (the clients consent through
the API beforehand, not timed). A booking request is sent at most once.

* Phase A, no faults, LOADTEST_SECONDS (20): req/s, p50/p99, the count of each status.
* Phase B, LOADTEST_FAULT_SECONDS (30): at a third the PostgreSQL server restarts
  (``pg_ctl restart -m fast``), at two thirds one worker is killed (SIGKILL) and a new one
  started. A prober sends an availability read every 50 ms beside the load, to time the way
  back to 2xx after the restart.

Afterwards: every booking acknowledged with 201 (its body kept) is looked up in the database;
every notification the acknowledged bookings queued for now is waited for, and the stub's
deliveries to the clients are counted against them. Exit status 1 when an acknowledged booking
is missing, a 5xx other than 503 (the designed answer while the database is away,
``app/db/faults.py``) was answered, a notification of an acknowledged booking did not arrive,
or a worker died of the restart; 0 otherwise.

``mixed(base_url, platform, clients, seconds, connections)`` runs phase A's traffic against an
app already running, for ``make bench``'s target line.

Environment: LOADTEST_BUSINESSES (100), LOADTEST_CONNECTIONS (50), LOADTEST_THREADS (2),
LOADTEST_SECONDS (20), LOADTEST_FAULT_SECONDS (30), LOADTEST_LEASE_SECONDS (20: the workers' NOTIFY_LEASE_SECONDS, after which the
rows the killed worker had claimed are sent by the others; production's default is 60),
LOADTEST_EACH (seconds: first load each kind of read alone; 0, off),
BENCH_NO_WRK=1 (the Python client instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import httpx
import msgspec

from bench.http import (
    Server,
    ensure_wrk,
    env_float,
    env_int,
    loadavg,
    percentile_ms,
    python_load,
    say,
)
from bench.platform import Platform, create_platform

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).with_name("loadtest.lua")
# throwaway values for the load test's own servers, never a real bot's
BOT_TOKEN = "123456:LOADTEST-bot-token-for-pozapisi"  # noqa: S105
SECRET_KEY = "loadtest-secret-key-0123456789abcdef-012345"  # noqa: S105
# share of each kind of request in the traffic
MIX = {"availability": 0.60, "page": 0.20, "calendar": 0.10, "book": 0.10}
PROBE_EVERY_S = 0.05
WARMUP_S = 3.0
NOTIFY_WAIT_S = 120.0  # only catches a hang
P99_TARGET_MS = 150.0  # issue 17 item 2: mixed traffic at 50 connections, no faults


# ---- the requests -----------------------------------------------------------------------------


@dataclass
class Booker:
    """One distinct Telegram client and the free slot it asks for."""

    telegram_id: int
    auth: str  # "tma <initData>"
    slug: str
    body: str  # {"service_id", "staff_id", "start"}


class Clients:
    """Distinct Telegram users, each with its own free slot on the platform (``free_slot``)."""

    def __init__(self, platform: Platform, bot_token: str = BOT_TOKEN) -> None:
        self.platform = platform
        self.bot_token = bot_token
        self.first_user = random.randrange(10**11, 9 * 10**11)
        self.used = 0  # free-slot indexes walked
        self.made = 0

    def take(self, count: int) -> list[Booker]:
        from tests.support.telegram import make_init_data

        made: list[Booker] = []
        while len(made) < count:
            shop, staff_id, service_id, start = self.platform.free_slot(self.used)
            self.used += 1
            body = {"service_id": service_id, "staff_id": staff_id, "start": start.isoformat()}
            user = self.first_user + self.made
            init = make_init_data(self.bot_token, user_id=user, first_name=f"Клиент{self.made}")
            made.append(Booker(user, "tma " + init, shop.slug, msgspec.json.encode(body).decode()))
            self.made += 1
        return made


def request_line(kind: str, method: str, path: str, auth: str = "", cookie: str = "",
                 body: str = "") -> str:  # fmt: skip
    """One line of the request file ``bench/loadtest.lua`` reads (six tab-separated fields)."""
    fields = (kind, method, path, auth, cookie, body)
    if any(("\t" in f or "\n" in f) for f in fields):
        raise ValueError(f"a tab or a newline in a request field: {fields!r}")
    return "\t".join(fields)


def parse_line(line: str) -> tuple[str, str, str, dict[str, str], str]:
    """(kind, method, path, headers, body) of a request line, as the Lua script reads it."""
    kind, method, path, auth, cookie, body = line.rstrip("\n").split("\t")
    headers = {}
    if auth:
        headers["Authorization"] = auth
    if cookie:
        headers["Cookie"] = cookie
    if body:
        headers["Content-Type"] = "application/json"
    return kind, method, path, headers, body


def read_lines(platform: Platform, rng: random.Random, count: int, kinds: dict[str, float]
               ) -> list[str]:  # fmt: skip
    """``count`` bodiless requests drawn from ``kinds`` (no bookings), over every business."""
    names = list(kinds)
    weights = [kinds[n] for n in names]
    month = [platform.today + timedelta(days=d) for d in range(1, 15)]
    lines = []
    for kind in rng.choices(names, weights, k=count):
        shop = rng.choice(platform.shops)
        service = rng.choice(shop.service_ids)
        day: date = rng.choice(month)
        if kind == "availability":
            path = (f"/api/v1/businesses/{shop.slug}/availability?service={service}"
                    f"&date_from={day}&date_to={day}&staff=any")  # fmt: skip
            lines.append(request_line(kind, "GET", path))
        elif kind == "page":
            path = (
                f"/app/b/{shop.slug}" if rng.random() < 0.5 else f"/app/b/{shop.slug}/s/{service}"
            )
            lines.append(request_line(kind, "GET", path))
        elif kind == "calendar":
            path = f"/dashboard/calendar?date={day}&view=day"
            lines.append(request_line(kind, "GET", path, cookie=shop.cookie))
        else:
            raise ValueError(f"not a read: {kind}")
    return lines


def mixed_lines(platform: Platform, bookers: Sequence[Booker], count: int, rng: random.Random,
                mix: dict[str, float] = MIX) -> list[str]:  # fmt: skip
    """``count`` requests in the ``mix``: the bookers' POSTs spread evenly among the reads."""
    reads = {k: v for k, v in mix.items() if k != "book"}
    lines = read_lines(platform, rng, count - len(bookers), reads)
    step = count / max(1, len(bookers))
    for number, booker in enumerate(bookers):
        at = min(len(lines), int(number * step + rng.random() * step))
        path = f"/api/v1/businesses/{booker.slug}/bookings"
        lines.insert(at, request_line("book", "POST", path, auth=booker.auth, body=booker.body))
    return lines


# ---- the results ------------------------------------------------------------------------------


@dataclass
class Mixed:
    """One bounded run of the mixed traffic."""

    tool: str
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    socket_errors: dict[str, int] = field(default_factory=dict)
    acknowledged: list[dict[str, Any]] = field(default_factory=list)  # 201 bodies
    bookings_sent: int = 0  # booking requests sent (each at most once)
    passes: int = 1  # >1: the reads were sent again (the bookings never are)
    sample: str = ""  # one error answer
    failed_by_second: dict[int, int] = field(default_factory=dict)  # 5xx by unix second

    def failed_between(self, since: float) -> tuple[float, float] | None:
        """The span, in seconds after the wall-clock time ``since``, of the seconds in which
        5xx were answered (whole seconds: the Lua clock's)."""
        if not self.failed_by_second:
            return None
        return min(self.failed_by_second) - since, max(self.failed_by_second) + 1 - since

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def count(self, *codes: int) -> int:
        return sum(n for code, n in self.statuses.items() if code in codes)

    @property
    def server_errors(self) -> int:
        """5xx other than 503 (503 is the designed answer while the database is away)."""
        return sum(n for code, n in self.statuses.items() if code >= 500 and code != 503)

    def line(self) -> str:
        codes = " ".join(f"{code}={n}" for code, n in sorted(self.statuses.items()))
        errors = " ".join(f"{k}={v}" for k, v in self.socket_errors.items() if v)
        return (
            f"{self.requests:,} requests in {self.seconds:.1f} s = {self.rps:,.0f} req/s, "
            f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, max {self.max_ms:.0f} ms; "
            f"statuses {codes}" + (f"; socket errors {errors}" if errors else "")
        )


_RESULT = re.compile(r"LOADTEST_RESULT (.*)")
_STATUS = re.compile(r"LOADTEST_STATUS ?(.*)")
_PASSES = re.compile(r"LOADTEST_PASSES (\d+)")
_BOOKED = re.compile(r"LOADTEST_BOOKED (\d+)")
_BY_SECOND = re.compile(r"LOADTEST_5XX_BY_SECOND ?(.*)")
_SAMPLE = re.compile(r"LOADTEST_SAMPLE (.*)")


def parse_wrk(output: str, connections: int) -> Mixed:
    """The machine-readable lines ``bench/loadtest.lua`` prints at the end of a wrk run."""
    found = _RESULT.search(output)
    if not found:
        raise RuntimeError(f"no LOADTEST_RESULT in wrk's output: {output[-500:]}")
    fields = {k: float(v) for k, v in (p.split("=") for p in found.group(1).split())}
    codes = _STATUS.search(output)
    statuses = {}
    if codes and codes.group(1).strip():
        statuses = {int(c): int(n) for c, n in (p.split("=") for p in codes.group(1).split())}
    passes = _PASSES.search(output)
    booked = _BOOKED.search(output)
    by_second = _BY_SECOND.search(output)
    failed = {}
    if by_second and by_second.group(1).strip():
        failed = {int(t): int(n) for t, n in (p.split("=") for p in by_second.group(1).split())}
    sample = _SAMPLE.search(output)
    return Mixed(
        tool="wrk", connections=connections, requests=int(fields["requests"]),
        seconds=fields["duration_us"] / 1e6, p50_ms=fields["p50_us"] / 1000,
        p99_ms=fields["p99_us"] / 1000, max_ms=fields.get("max_us", 0.0) / 1000,
        statuses=statuses,
        socket_errors={k: int(fields[k]) for k in ("connect", "read", "write", "timeout")},
        passes=int(passes.group(1)) if passes else 1,
        bookings_sent=int(booked.group(1)) if booked else 0,
        failed_by_second=failed,
        sample=sample.group(1)[:300] if sample else "",
    )  # fmt: skip


def parse_acknowledged(text: str) -> list[dict[str, Any]]:
    """The 201 bodies the Lua script kept, one JSON object a line (a line cut short by a
    killed run is skipped)."""
    kept = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            body = json.loads(line)
            if isinstance(body, dict) and "id" in body:
                kept.append(body)
    return kept


# ---- the load ---------------------------------------------------------------------------------


def _wrk(wrk: str, base_url: str, lines: Sequence[str], seconds: float, connections: int,
         threads: int) -> Mixed:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pz-loadtest-") as workdir:
        requests_file = Path(workdir) / "requests.tsv"
        requests_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        prefix = str(Path(workdir) / "acknowledged")
        args = [
            wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(LUA), base_url, "--", str(requests_file), str(threads), prefix,
        ]  # fmt: skip
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=seconds + 60)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()} {out.decode()}")
        result = parse_wrk(out.decode(errors="replace"), connections)
        for kept in Path(workdir).glob("acknowledged.*"):
            result.acknowledged += parse_acknowledged(kept.read_text(errors="replace"))
    return result


async def _python(base_url: str, lines: Sequence[str], seconds: float, connections: int) -> Mixed:
    """The same traffic from an asyncio + httpx client (no wrk): bounded by time, each line
    once, then the reads again. The client costs CPU the server shares on this machine, so its
    req/s is lower and its latencies higher than wrk's."""
    parsed = [parse_line(line) for line in lines]
    reads = [p for p in parsed if p[0] != "book"] or parsed
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    acknowledged: list[dict[str, Any]] = []
    errors: Counter[str] = Counter()
    failed: Counter[int] = Counter()
    sample = ""
    position = 0
    passes = 1
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal position, passes, sample
            while time.monotonic() < deadline:
                if position < len(parsed):
                    _kind, method, path, headers, body = parsed[position]
                else:
                    passes = 2 + (position - len(parsed)) // len(reads)
                    _kind, method, path, headers, body = reads[
                        (position - len(parsed)) % len(reads)
                    ]
                position += 1
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, headers=headers,
                                                    content=body.encode() or None)  # fmt: skip
                except httpx.TimeoutException:
                    errors["timeout"] += 1
                    continue
                except httpx.HTTPError:
                    errors["read"] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failed[int(time.time())] += 1
                if response.status_code == 201:
                    acknowledged.append(response.json())
                elif response.status_code >= 500 and not sample:
                    sample = f"{response.status_code} {response.text[:200]}"

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    return Mixed(
        tool="python", connections=connections, requests=len(latencies), seconds=elapsed,
        p50_ms=percentile_ms(latencies, 50), p99_ms=percentile_ms(latencies, 99),
        max_ms=percentile_ms(latencies, 100), statuses=dict(statuses),
        socket_errors=dict(errors), acknowledged=acknowledged,
        bookings_sent=sum(1 for p in parsed[:position] if p[0] == "book"), passes=passes,
        sample=sample, failed_by_second=dict(failed),
    )  # fmt: skip


def consent(base_url: str, auths: Sequence[str]) -> float:
    """Every client (its ``Authorization: tma …`` value) consents through
    POST /api/v1/me/consent (not timed); returns seconds."""
    if not auths:
        return 0.0
    policy = httpx.get(f"{base_url}/api/v1/policy", timeout=10)
    policy.raise_for_status()
    terms = policy.json()
    body = msgspec.json.encode(
        {"policy_version": terms["version"], "purposes": terms["purposes"]}
    ).decode()
    started = time.perf_counter()
    done = asyncio.run(
        python_load(
            "consent", f"{base_url}/api/v1/me/consent", [(auth, body) for auth in auths],
            total=len(auths), concurrency=32, method="POST", expect=(201,),
        )
    )  # fmt: skip
    if done.errors:
        raise RuntimeError(f"consent failed {done.errors} times: {done.first_error}")
    return time.perf_counter() - started


def run_lines(base_url: str, lines: Sequence[str], seconds: float, connections: int,
              wrk: str | None, threads: int = 2) -> Mixed:  # fmt: skip
    if wrk:
        return _wrk(wrk, base_url, lines, seconds, connections, threads)
    return asyncio.run(_python(base_url, lines, seconds, connections))


def mixed(
    base_url: str,
    platform: Platform,
    clients: Clients,
    seconds: float,
    connections: int = 50,
    *,
    wrk: str | None = None,
    threads: int = 2,
    expected_rps: float | None = None,
    seed: int | None = None,
    mix: dict[str, float] = MIX,
) -> Mixed:
    """The mixed traffic (``MIX``) against an app already serving ``platform``: a warm-up of
    reads (WARMUP_S, which also gauges the rate when ``expected_rps`` is not given), enough
    distinct clients made and consented for the run (not timed), then ``seconds`` of load.
    ``wrk`` is the wrk binary (None: the Python client). The clients must be signed with the
    bot token the app was started with."""
    rng = random.Random(seed)
    if expected_rps is None:
        reads = {k: v for k, v in mix.items() if k != "book"}
        warm = run_lines(base_url, read_lines(platform, rng, 20_000, reads), WARMUP_S,
                         connections, wrk, threads)  # fmt: skip
        expected_rps = warm.rps
    # room for a faster run than expected: bookings left over are simply never sent
    count = int(max(expected_rps, 100.0) * seconds * 1.5) + 500
    bookers = clients.take(int(count * mix.get("book", 0.0)))
    consent(base_url, [b.auth for b in bookers])
    lines = mixed_lines(platform, bookers, count, rng, mix)
    return run_lines(base_url, lines, seconds, connections, wrk, threads)


# ---- the faults -------------------------------------------------------------------------------


class Prober:
    """An availability read every PROBE_EVERY_S on its own connection: (sent at, status) with
    status 0 for no answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadtest-prober", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    status = client.get(self.url).status_code
                except httpx.HTTPError:
                    status = 0
                self.seen.append((sent, status))
                self._stop.wait(max(0.0, PROBE_EVERY_S - (time.monotonic() - sent)))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def recovery(self, since: float) -> tuple[float | None, float | None, Counter[int]]:
        """Seconds from ``since`` to the first 2xx sent after it, to the first 2xx after which
        every answer was 2xx, and the answers from ``since`` on."""
        after = [(t, s) for t, s in self.seen if t >= since]
        first = next((t - since for t, s in after if 200 <= s < 300), None)
        bad = [t for t, s in after if not 200 <= s < 300]
        steady = None
        if not bad:
            steady = first
        else:
            later = [t for t, s in after if t > bad[-1] and 200 <= s < 300]
            steady = later[0] - since if later else None
        return first, steady, Counter(s for _, s in after)


class Workers:
    """``pozapisi worker`` processes (own process groups), each stopped by its id at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="loadtest-workers-", suffix=".log", delete=False
        )

    def start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--concurrency", "10"], cwd=ROOT,
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.processes if p.poll() is None]

    def tail(self, lines: int = 20) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for proc in self.alive():
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if not self.log.closed:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)


async def _fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    from app.db.urls import to_libpq

    conn = await asyncpg.connect(to_libpq(dsn), timeout=10)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def _workers_on_queue(owner: str) -> int:
    rows = await _fetch(
        owner, "SELECT count(*) AS n FROM saq_stats WHERE queue_key = 'pozapisi' "
        "AND expire_at >= extract(epoch FROM now())",
    )  # fmt: skip
    return int(rows[0]["n"])


def _wait(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout  # only catches a hang
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"load test stuck: {what}")
        time.sleep(0.2)


@dataclass
class Lost:
    missing: list[int]  # acknowledged ids not in the database (as acknowledged)
    statuses: Counter[str]  # the acknowledged bookings' statuses now


async def lost_bookings(owner: str, acknowledged: Sequence[dict[str, Any]]) -> Lost:
    """Which acknowledged bookings are not in the database with the staff and start the 201
    answer gave (a cancelled or expired one counts as found: it was written)."""
    ids = [int(b["id"]) for b in acknowledged]
    rows = await _fetch(
        owner, "SELECT id, staff_id, lower(period) AS start, status FROM bookings "
        "WHERE id = ANY($1::bigint[])", ids,
    )  # fmt: skip
    found = {r["id"]: r for r in rows}
    missing = []
    for booking in acknowledged:
        row = found.get(int(booking["id"]))
        start = datetime.fromisoformat(booking["start"])
        if row is None or row["staff_id"] != booking["staff_id"] or row["start"] != start:
            missing.append(int(booking["id"]))
    return Lost(missing, Counter(r["status"] for r in rows))


@dataclass
class Delivery:
    rows: int  # notifications the acknowledged bookings queued for now
    sent: int
    other: Counter[str]  # rows in any other status at the end
    clients: int  # acknowledged bookings' clients
    once: int  # clients whose messages arrived as often as their rows say (exactly once)
    missing: int  # messages the clients' sent rows say arrived but the stub never got
    repeated: int  # messages that arrived more than once
    counted_repeats: int  # repeats the rows recorded as possible duplicates


async def _delivery_rows(owner: str, ids: list[int]) -> list[asyncpg.Record]:
    return await _fetch(
        owner,
        "SELECT n.status, n.account_id, a.telegram_id, b.account_id AS client_id, "
        "coalesce((n.payload->>'possible_duplicates')::int, 0) AS duplicates "
        "FROM notifications n JOIN bookings b ON b.id = n.booking_id "
        "LEFT JOIN accounts a ON a.id = n.account_id "
        "WHERE n.booking_id = ANY($1::bigint[]) AND n.scheduled_at <= now()",
        ids,
    )


def deliveries(owner: str, acknowledged: Sequence[dict[str, Any]], stub: Any) -> Delivery:
    """Wait until every notification the acknowledged bookings queued for now has left the
    outbox, then count the stub's deliveries to the clients against the rows."""
    ids = [int(b["id"]) for b in acknowledged]
    pending = {"pending", "sending"}

    def settled() -> bool:
        rows = asyncio.run(_delivery_rows(owner, ids))
        return not any(r["status"] in pending for r in rows)

    _wait(settled, "notifications of the acknowledged bookings", NOTIFY_WAIT_S)
    time.sleep(1.0)  # a repeat in flight would arrive now
    rows = asyncio.run(_delivery_rows(owner, ids))
    clients = [r for r in rows if r["account_id"] == r["client_id"]]
    expected: Counter[str] = Counter(
        str(r["telegram_id"]) for r in clients if r["status"] == "sent"
    )
    counted = sum(r["duplicates"] for r in clients)
    got = stub.accepted_count_by("address", "telegram")
    chats = {str(r["telegram_id"]) for r in clients}
    once = sum(1 for chat in chats if got[chat] == expected[chat])
    missing = sum(max(0, expected[chat] - got[chat]) for chat in chats)
    repeated = sum(max(0, got[chat] - expected[chat]) for chat in chats)
    return Delivery(
        rows=len(rows), sent=sum(1 for r in rows if r["status"] == "sent"),
        other=Counter(r["status"] for r in rows if r["status"] != "sent"), clients=len(chats),
        once=once, missing=missing, repeated=repeated, counted_repeats=counted,
    )  # fmt: skip


# ---- the run ----------------------------------------------------------------------------------


def _on_sigterm(_signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt  # run every finally: stop the processes, remove the server


@dataclass
class Faults:
    restart_at: float = 0.0  # monotonic
    restart_wall: float = 0.0  # time.time() at the same moment
    restart_s: float = 0.0  # pg_ctl restart's own time
    killed_at: float = 0.0
    workers_after_restart: int = 0  # worker processes alive after the restart
    error: str = ""


def _faults(db: Any, workers: Workers, seconds: float, faults: Faults, started: float) -> None:
    """At a third of the phase restart the PostgreSQL server, at two thirds kill a worker."""
    try:
        time.sleep(max(0.0, started + seconds / 3 - time.monotonic()))
        faults.restart_at, faults.restart_wall = time.monotonic(), time.time()
        db.embedded.restart()
        faults.restart_s = time.monotonic() - faults.restart_at
        time.sleep(max(0.0, started + 2 * seconds / 3 - time.monotonic()))
        faults.workers_after_restart = len(workers.alive())
        victim = workers.alive()[0]
        victim.send_signal(signal.SIGKILL)
        faults.killed_at = time.monotonic()
        victim.wait(timeout=10)
        workers.start()
    except Exception as exc:  # reported, and the run fails
        faults.error = repr(exc)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    from bench import fixtures
    from tests.workers.provider_stub import ProviderStub

    businesses = env_int("LOADTEST_BUSINESSES", 100)
    connections = env_int("LOADTEST_CONNECTIONS", 50)
    threads = env_int("LOADTEST_THREADS", 2)
    seconds = env_float("LOADTEST_SECONDS", 20)
    fault_seconds = env_float("LOADTEST_FAULT_SECONDS", 30)
    lease = env_float("LOADTEST_LEASE_SECONDS", 20)
    wrk, note = ensure_wrk()
    tool = f"wrk -t{threads} -c{connections}" if wrk else f"Python client ({note})"
    say(f"make loadtest: {businesses} businesses, {connections} connections, {tool}; "
         f"load average {loadavg()}")  # fmt: skip
    started_all = time.monotonic()

    def clock() -> str:
        return f"{time.monotonic() - started_all:.0f} s"

    os.environ["BENCH_EMBEDDED"] = "1"  # never the machine's shared server: it is restarted
    db = asyncio.run(fixtures.open_database())
    stub = ProviderStub(bot_token=BOT_TOKEN).start()
    server: Server | None = None
    workers: Workers | None = None
    failed: list[str] = []
    try:
        assert db.embedded is not None
        say(f"  embedded PostgreSQL in {db.embedded.root}, database {db.name}")
        seeded = time.monotonic()
        platform = asyncio.run(create_platform(db.owner, SECRET_KEY, businesses=businesses))
        say(f"  seeded {len(platform.shops)} businesses, {platform.bookings:,} bookings in "
             f"{time.monotonic() - seeded:.1f} s")  # fmt: skip
        base_env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "TEST_DATABASE", "QUEUE_"))
        }  # fmt: skip
        env = {
            **base_env, "POZAPISI_ENV": "test", "LOG_LEVEL": "WARNING", "SECRET_KEY": SECRET_KEY,
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_URL": stub.telegram_url,
            "PUBLIC_BASE_URL": "https://app.pozapisi.test", "DATABASE_URL": db.owner,
            # what the killed worker had claimed comes back when its lease runs out: shorter
            # than the 60 s default so that the run waits for it less
            "NOTIFY_LEASE_SECONDS": str(lease),
        }  # fmt: skip
        workers = Workers(env)
        workers.start()
        workers.start()
        _wait(lambda: asyncio.run(_workers_on_queue(db.owner)) >= 2, "two workers on the queue")
        server = Server("loadtest-app", "app.main:create_app_from_env",
                        {**env, "DATABASE_APP_URL": db.app})  # fmt: skip
        server.start("/healthz")
        base = server.url
        say(f"  ({clock()}) app on {base} (uvicorn, 2 workers), 2 `pozapisi worker` processes, "
             f"Telegram stub on {stub.telegram_url.split('/bot')[0]}")  # fmt: skip
        clients = Clients(platform)

        each = env_float("LOADTEST_EACH", 0)
        if each:
            say(f"(0) each kind of read alone, {each:g} s each (LOADTEST_EACH) …")
            for kind in ("availability", "page", "calendar"):
                alone = read_lines(platform, random.Random(), 20_000, {kind: 1.0})
                say(f"  {kind}: {run_lines(base, alone, each, connections, wrk, threads).line()}")
        say(f"(A) ({clock()}) mixed traffic, no faults, {seconds:g} s …")
        phase_a = mixed(base, platform, clients, seconds, connections, wrk=wrk, threads=threads)
        say(f"  {phase_a.line()}")
        say(f"  bookings: {phase_a.count(201)} acknowledged (201) of {phase_a.bookings_sent} "
             "sent at most once each")  # fmt: skip

        say(
            f"(B) ({clock()}) the same traffic for {fault_seconds:g} s: the PostgreSQL server restarts at "
            f"{fault_seconds / 3:.0f} s, a worker is killed at {2 * fault_seconds / 3:.0f} s …"
        )
        count = int(max(phase_a.rps, 100.0) * fault_seconds * 1.5) + 500
        rng = random.Random()
        bookers = clients.take(int(count * MIX["book"]))
        took = consent(base, [b.auth for b in bookers])
        say(f"  ({len(bookers)} clients consented in {took:.1f} s, not timed)")
        lines = mixed_lines(platform, bookers, count, rng)
        shop = platform.shops[0]
        probe_url = (f"{base}/api/v1/businesses/{shop.slug}/availability?"
                     f"service={shop.service_ids[0]}&date_from={platform.day}"
                     f"&date_to={platform.day}&staff=any")  # fmt: skip
        faults = Faults()
        with Prober(probe_url) as prober:
            started = time.monotonic()
            chaos = threading.Thread(
                target=_faults, args=(db, workers, fault_seconds, faults, started), daemon=True
            )
            chaos.start()
            phase_b = run_lines(base, lines, fault_seconds, connections, wrk, threads)
            chaos.join(timeout=60)
            time.sleep(0.5)
        first, steady, probed = prober.recovery(faults.restart_at)
        say(f"  {phase_b.line()}")
        say(f"  bookings: {phase_b.count(201)} acknowledged (201) of {phase_b.bookings_sent} "
             f"sent; 503 answers {phase_b.count(503)}")  # fmt: skip
        if faults.error:
            failed.append(f"the faults were not made: {faults.error}")
        else:
            shown = " ".join(f"{c}={n}" for c, n in sorted(probed.items()))
            say(f"  restart: pg_ctl restart -m fast took {faults.restart_s:.2f} s; first 2xx "
                 f"{first if first is None else f'{first:.2f}'} s after it began, steady 2xx "
                 f"after {steady if steady is None else f'{steady:.2f}'} s "
                 f"(probe every {PROBE_EVERY_S * 1000:.0f} ms: {shown})")  # fmt: skip
            span = phase_b.failed_between(faults.restart_wall)
            if span:
                say(f"  the load's 5xx answers fell in the whole seconds from {span[0]:+.1f} s to "
                     f"{span[1]:+.1f} s of the restart's start")  # fmt: skip
            say(
                f"  worker killed (SIGKILL) at {faults.killed_at - started:.1f} s and a new one "
                f"started; workers alive after the restart: {faults.workers_after_restart} of 2"
            )
            if faults.workers_after_restart < 2:
                failed.append("a worker died when the database restarted")
        alive = len(workers.alive())
        if alive < 2:
            failed.append(f"only {alive} worker processes alive at the end:\n{workers.tail()}")

        say(f"(C) ({clock()}) afterwards …")
        acknowledged = phase_a.acknowledged + phase_b.acknowledged
        lost = asyncio.run(lost_bookings(db.owner, acknowledged))
        say(f"  acknowledged bookings missing from the database: {len(lost.missing)} of "
             f"{len(acknowledged)} (their statuses now: {dict(lost.statuses)})")  # fmt: skip
        if len(acknowledged) != phase_a.count(201) + phase_b.count(201):
            failed.append("a 201 answer's body was not kept")
        if lost.missing:
            failed.append(f"{len(lost.missing)} acknowledged bookings lost: {lost.missing[:10]}")
        errors_5xx = phase_a.server_errors + phase_b.server_errors
        say(f"  answers of 500: {phase_a.count(500) + phase_b.count(500)}; other 5xx but 503: "
             f"{errors_5xx - phase_a.count(500) - phase_b.count(500)}")  # fmt: skip
        if errors_5xx:
            failed.append(
                f"{errors_5xx} answers 5xx other than 503: {phase_a.sample or phase_b.sample}"
            )
            logged = [line for line in server.tail(10**6).splitlines() if '"level":"error"' in line]
            say(f"  the app logged {len(logged)} errors; the first and the last:")
            for line in logged[:1] + logged[-1:]:
                say(f"    {line[:3000]}")
        delivered = deliveries(db.owner, acknowledged, stub)
        say(f"  notifications queued for now by the acknowledged bookings: {delivered.rows} "
             f"rows, {delivered.sent} sent, other {dict(delivered.other)}; to the "
             f"{delivered.clients} clients: exactly once for {delivered.once}, never arrived "
             f"{delivered.missing}, arrived twice {delivered.repeated} (counted on their rows "
             f"as possible duplicates: {delivered.counted_repeats})")  # fmt: skip
        if delivered.missing or delivered.other:
            failed.append("a notification of an acknowledged booking was not delivered")
        target = "met" if phase_a.p99_ms <= P99_TARGET_MS else "missed"
        say(f"TARGET loadtest_p99_ms {phase_a.p99_ms:.0f} {P99_TARGET_MS:.0f} {target}")
    finally:
        if server is not None:
            server.stop()
        if workers is not None:
            workers.stop()
        stub.stop()
        asyncio.run(db.close())
    say(
        f"  stopped the app, the workers and the stub; removed the embedded server "
        f"({time.monotonic() - started_all:.0f} s in all, load average {loadavg()})"
    )
    for problem in failed:
        say(f"FAILED: {problem}")
    say("loadtest: " + ("FAILED" if failed else "ok: 0 acknowledged bookings lost, 0 answers 500"))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: processes stopped, embedded server removed", file=sys.stderr)
        sys.exit(130)
