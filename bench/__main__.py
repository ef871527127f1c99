"""`make bench`: the slot engine micro-benchmark and the HTTP benchmark, in one bounded run.

(a) ``bench.slots.run()``: 10 masters x 30 days, median and p99 per ``find_slots`` call.
(b) Real servers on 127.0.0.1, 2 uvicorn workers each, loaded by wrk (or a bounded Python
    client): bare baselines (``bench/baseline_app.py``) against the app's availability, booking
    and booking-page requests and the dashboard's day calendar (10 masters, 80 bookings, an
    owner's session), on a fresh database that is dropped at the end.
(b3) The calendar's live updates (``bench/live.py``): the htmx poll's unchanged answer at full
    load, the share of it that BENCH_LIVE_CALENDARS open calendars polling every
    BENCH_LIVE_INTERVAL seconds take, and the calendar's req/s while they poll.

Environment:
  BENCH_SECONDS      length of each HTTP measurement (default 10)
  BENCH_ROUNDS       rounds of all HTTP measurements (default 2); figures are the medians
  BENCH_WARMUP       warm-up before each measurement, not counted (default 2)
  BENCH_CONNECTIONS  concurrent connections (default 50); BENCH_THREADS wrk threads (default 2)
  BENCH_SLOT_REPEATS slot-engine calls timed (default 200)
  BENCH_BOOKING_RPS  size the booking requests for this rate instead of probing it
  BENCH_REQUESTS     requests per measurement for the Python fallback client (default 2000)
  BENCH_NO_WRK=1     use the Python fallback client even when wrk is installed
  BENCH_LIVE_CALENDARS, BENCH_LIVE_INTERVAL  open calendars polling, and how often (50, 5 s)
  BENCH_SERVER       "nodelay" (default: uvicorn's CLI with its --workers TCP_NODELAY bug
                     worked around, see bench/uvicorn_nodelay.py) or "uvicorn" (stock)
  TEST_DATABASE_URL  the PostgreSQL server (else 127.0.0.1:5432 if it answers, else an embedded
                     server; BENCH_EMBEDDED=1 forces the embedded one); a fresh database is
                     created there and dropped at the end
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import signal
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
import msgspec

from bench import fixtures, floor, live, notifications, slots
from bench.http import (
    NODELAY_UVICORN,
    STOCK_UVICORN,
    LoadGenerator,
    LoadResult,
    PostRequest,
    Server,
    ensure_wrk,
    env_float,
    env_int,
    python_load,
)

# throwaway values for the benchmark's own servers, never a real bot's
BOT_TOKEN = "123456:BENCH-bot-token-for-pozapisi"  # noqa: S105
SECRET_KEY = "bench-secret-key-0123456789abcdef-0123456789"  # noqa: S105
SLOT_TARGET_MS = 5.0
CALENDAR_TARGET = 0.30  # issue 14: the day calendar against the bare asyncpg + Jinja page
# issue 14 item 4: the open calendars whose live updates are measured, and their poll interval
# (the htmx trigger's "every 5s" in app/templates/dashboard/calendar/_body.html)
LIVE_CALENDARS = env_int("BENCH_LIVE_CALENDARS", 50)
LIVE_INTERVAL_S = env_float("BENCH_LIVE_INTERVAL", 5.0)
RATIOS = [
    # label, numerator, denominator, target
    ("availability / bare asyncpg+Jinja page", "availability", "bare_page", 0.5),
    ("day calendar / bare asyncpg+Jinja page", "calendar", "bare_page", CALENDAR_TARGET),
    ("day calendar / bare calendar-shaped page", "calendar", "bare_calendar", None),
    ("bare calendar-shaped page / bare page", "bare_calendar", "bare_page", None),
    ("day calendar while calendars poll / alone", "calendar_polled", "calendar", None),
    ("booking creation / bare constrained insert", "booking", "bare_insert", 0.4),
    ("bare audited insert / bare constrained insert", "bare_audited", "bare_insert", None),
    ("booking creation / bare audited insert", "booking", "bare_audited", None),
    ("booking page / bare asyncpg+Jinja page", "page", "bare_page", None),
    ("stock uvicorn / TCP_NODELAY uvicorn, plain", "plain_stock", "plain", None),
]


def _on_sigterm(_signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt  # run every finally: stop servers, drop the database


def _say(text: str) -> None:
    print(text, flush=True)


def _loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="utf-8") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "n/a"


def _machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            kib = int(handle.readline().split()[1])
            ram = f", {kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} CPUs ({model}){ram}, Python {platform.python_version()}"


def _check(response: httpx.Response, expect: int, what: str) -> httpx.Response:
    if response.status_code != expect:
        raise RuntimeError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
    return response


class Run:
    """Every measurement of one benchmark run, by key, one per round."""

    def __init__(self, gen: LoadGenerator, warmup: float, rounds: int) -> None:
        self.gen = gen
        self.warmup = warmup
        self.rounds = rounds
        self.results: dict[str, list[LoadResult]] = {}
        self.polls: list[live.PollStats] = []  # the background pollers', one per round

    def measure(
        self,
        key: str,
        name: str,
        url: str,
        posts: Sequence[PostRequest] | None = None,
        *,
        method: str = "GET",
        warm: bool = True,
        headers: dict[str, str] | None = None,
    ) -> LoadResult:
        if warm and self.warmup > 0:
            self.gen.measure(name, url, posts, method=method, seconds=self.warmup, headers=headers)
        result = self.gen.measure(name, url, posts, method=method, headers=headers)
        self.results.setdefault(key, []).append(result)
        note = ""
        if result.errors:
            note = f"  ({result.errors} errors: {result.first_error})"
        elif result.first_error:
            note = f"  (warning: {result.first_error})"
        _say(f"  {name:<50} {result.rps:>9,.0f} req/s{note}")
        return result


class Clients:
    """Distinct Telegram users, each with its own free slot in the wide business."""

    def __init__(self, wide: fixtures.Wide) -> None:
        self.wide = wide
        self.first_user = random.randrange(10**11, 9 * 10**11)
        self.used = 0

    def take(self, count: int) -> list[PostRequest]:
        from tests.support.telegram import make_init_data

        if self.used + count > self.wide.slots:
            raise RuntimeError(f"the wide business has only {self.wide.slots} free slots")
        posts: list[PostRequest] = []
        for index in range(self.used, self.used + count):
            staff_id, start = self.wide.slot(index)
            body = {"service_id": self.wide.service_id, "staff_id": staff_id,
                    "start": start.isoformat()}  # fmt: skip
            init = make_init_data(
                BOT_TOKEN, user_id=self.first_user + index, first_name=f"Клиент{index}"
            )
            posts.append(("tma " + init, msgspec.json.encode(body).decode()))
        self.used += count
        return posts


def _consent(base: str, posts: Sequence[PostRequest]) -> None:
    """Every client consents through the API first (not timed)."""
    policy = _check(httpx.get(f"{base}/api/v1/policy"), 200, "policy").json()
    body = msgspec.json.encode(
        {"policy_version": policy["version"], "purposes": policy["purposes"]}
    ).decode()
    started = time.perf_counter()
    consents = asyncio.run(
        python_load(
            "consent", f"{base}/api/v1/me/consent", [(auth, body) for auth, _ in posts],
            total=len(posts), concurrency=32, method="POST", expect=(201,),
        )
    )  # fmt: skip
    if consents.errors:
        raise RuntimeError(f"consent failed {consents.errors} times: {consents.first_error}")
    _say(f"  ({len(posts):,} Telegram users consented through POST /api/v1/me/consent "
         f"in {time.perf_counter() - started:.1f} s, not timed)")  # fmt: skip


class Bookings:
    """POST booking measurements that never send a request twice: the first warm-up probes the
    rate, and before each timed run enough new clients are made and consent (not timed)."""

    def __init__(self, run: Run, wide: fixtures.Wide) -> None:
        self.run = run
        self.path = f"/api/v1/businesses/{wide.slug}/bookings"
        self.clients = Clients(wide)
        hint = os.environ.get("BENCH_BOOKING_RPS")
        self.rate = float(hint) if hint else 0.0  # 0: probe it

    def warm_up(self, base: str) -> None:
        gen = self.run.gen
        url = base + self.path
        probe_seconds = max(self.run.warmup, 2.0)
        if not gen.wrk:
            count = max(50, gen.fallback_requests // 5)
        elif self.rate:
            count = gen.posts_needed(self.rate * 2, probe_seconds)
        else:
            count = 400
        posts = self.clients.take(1 + count)
        _consent(base, posts)
        sanity, posts = posts[0], posts[1:]
        headers = {"Authorization": sanity[0], "Content-Type": "application/json"}
        _check(httpx.post(url, content=sanity[1].encode(), headers=headers), 201, "booking")
        warm = gen.measure("booking warm-up", url, posts, seconds=probe_seconds)
        if gen.wrk and not self.rate:
            # all used up: then the probe gives only a lower bound, so count every request sent
            used_up = warm.sent >= len(posts) - gen.threads
            self.rate = warm.sent / warm.seconds if used_up else warm.rps

    def measure(self, base: str) -> None:
        gen = self.run.gen
        if gen.wrk:
            # generous: a request sent twice would be a 409, cheaper than a booking
            count = gen.posts_needed(max(self.rate, 20.0) * 3) + 200
        else:
            count = gen.fallback_requests
        posts = self.clients.take(count)
        _consent(base, posts)
        result = self.run.measure("booking", "app: POST booking (new client, free slot)",
                                  base + self.path, posts, warm=False)  # fmt: skip
        self.rate = max(self.rate, result.rps)


@contextmanager
def _serving(name: str, target: str, env: dict[str, str], launcher: str, health: str
             ) -> Iterator[Server]:  # fmt: skip
    server = Server(name, target, env, launcher=launcher)
    try:
        server.start(health)
        yield server
    finally:
        server.stop()


def _check_calendar(url: str, desk: fixtures.Calendar) -> None:
    """The signed-in owner gets the day with every booking drawn (not a redirect to sign-in,
    which wrk would count as an answer)."""
    shown = _check(httpx.get(url, headers={"Cookie": desk.cookie}), 200, "day calendar").text
    drawn = shown.count('class="cal-block ')
    if drawn != desk.bookings:
        raise RuntimeError(f"day calendar: {drawn} bookings drawn, {desk.bookings} booked")


def _http(
    run: Run,
    db: fixtures.BenchDatabase,
    salon: fixtures.Salon,
    wide: fixtures.Wide,
    desk: fixtures.Calendar,
) -> Bookings:
    """Rounds of: the baseline server (plain, page, calendar-shaped page, insert), then the app
    (availability, page, day calendar and its live poll, booking). Only one of them runs at a time, so the benchmark never holds more database
    connections than the app alone (2 workers x (10 + 10 overflow)) on a server that may be
    shared; the rounds give each ratio several pairs taken a minute apart at most."""
    from app.db.urls import to_libpq

    stock = os.environ.get("BENCH_SERVER", "nodelay") == "uvicorn"
    launcher = STOCK_UVICORN if stock else NODELAY_UVICORN
    bare_args = ("baseline", "bench.baseline_app:create_app",
                 {"BENCH_BASELINE_DSN": to_libpq(db.owner)})  # fmt: skip
    app_args = ("app", "app.main:create_app_from_env", {
        "DATABASE_URL": db.owner, "DATABASE_APP_URL": db.app, "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "SECRET_KEY": SECRET_KEY, "POZAPISI_ENV": "test", "LOG_LEVEL": "WARNING",
    })  # fmt: skip
    bookings = Bookings(run, wide)
    _say(f"  load: {run.gen.description}; warm-up {run.warmup:g} s before each measurement")
    for number in range(1, run.rounds + 1):
        _say(f"  round {number}/{run.rounds}, load average {_loadavg()}")
        with _serving(*bare_args, launcher, "/plain") as bare:
            if number == 1:
                _check(httpx.get(bare.url + "/page"), 200, "bare page")
                _check(httpx.post(bare.url + "/insert"), 201, "bare insert")
                _check(httpx.post(bare.url + "/insert-audited"), 201, "bare audited insert")
            run.measure("plain", "bare: plain text", bare.url + "/plain")
            run.measure("bare_page", "bare: asyncpg SELECT 20 rows + Jinja page",
                        bare.url + "/page")  # fmt: skip
            bare_calendar = f"{bare.url}/calendar?business={desk.business_id}&day={desk.day}"
            if number == 1:
                drawn = _check(httpx.get(bare_calendar), 200, "bare calendar").text.count(
                    'class="cal-block '
                )
                if drawn != desk.bookings:
                    raise RuntimeError(f"bare calendar: {drawn} of {desk.bookings} bookings")
            run.measure("bare_calendar", "bare: calendar-shaped page, 2 SELECTs + Jinja",
                        bare_calendar)  # fmt: skip
            run.measure("bare_insert", "bare: INSERT, gist exclusion, own transaction",
                        bare.url + "/insert", method="POST")  # fmt: skip
            run.measure("bare_audited", "bare: audited INSERT (+ outbox row, audit entry)",
                        bare.url + "/insert-audited", method="POST")  # fmt: skip
        with _serving(*app_args, launcher, "/healthz") as app:
            availability = (
                f"{app.url}/api/v1/businesses/{salon.slug}/availability?"
                f"service={salon.service_id}&date_from={salon.day}&date_to={salon.day}&staff=any"
            )
            page = f"{app.url}/app/b/{salon.slug}"
            if number == 1:
                if not _check(httpx.get(availability), 200, "availability").json()["slots"]:
                    raise RuntimeError("availability: no free slots in the salon that day")
                _check(httpx.get(page), 200, "booking page")
            run.measure("availability", "app: GET availability (1 day, staff=any)",
                        availability)  # fmt: skip
            run.measure("page", "app: GET /app/b/<slug> (booking page)", page)
            day_view = live.calendar_url(app.url, desk)
            signed_in = {"Cookie": desk.cookie}
            if number == 1:
                _check_calendar(day_view, desk)
            run.measure("calendar", "app: GET /dashboard/calendar (day, 10x8 bookings)", day_view,
                        headers=signed_in)  # fmt: skip
            stamp = live.current_stamp(app.url, desk, lasting=run.warmup + run.gen.seconds)
            polled = run.measure("poll", "app: GET /dashboard/calendar/live, unchanged (204)",
                                 live.poll_url(app.url, desk, stamp),
                                 headers={**signed_in, "HX-Request": "true"})  # fmt: skip
            redrawn = sum(n for code, n in polled.statuses.items() if code != 204)
            if redrawn:  # wrk sends the one stamp: a quarter hour turned, or a write came
                _say(f"  (warning: {redrawn} of the polls were answered other than 204)")
            run.measure("poll_redraw", "app: GET /dashboard/calendar/live, changed (grid)",
                        live.poll_url(app.url, desk, ""),
                        headers={**signed_in, "HX-Request": "true"})  # fmt: skip
            with live.Pollers(app.url, desk, stamp, signed_in, count=LIVE_CALENDARS,
                              interval=LIVE_INTERVAL_S) as pollers:  # fmt: skip
                run.measure("calendar_polled",
                            f"app: day calendar, {LIVE_CALENDARS} calendars polling",
                            day_view, headers=signed_in)  # fmt: skip
            run.polls.append(pollers.stats)
            bookings.warm_up(app.url)
            bookings.measure(app.url)
    if not stock:  # what uvicorn's --workers bug costs, measured on the plainest endpoint
        with _serving(*bare_args, STOCK_UVICORN, "/plain") as bare:
            run.measure("plain_stock", "bare: plain text, stock `uvicorn --workers 2`",
                        bare.url + "/plain")  # fmt: skip
    return bookings


def _median_result(results: list[LoadResult]) -> LoadResult:
    return sorted(results, key=lambda r: r.rps)[(len(results) - 1) // 2]


def _ratios(run: Run, top: str, bottom: str) -> list[float]:
    """One ratio per round (both figures of a round were taken minutes apart at most)."""
    pairs = zip(run.results.get(top, []), run.results.get(bottom, []), strict=False)
    return [a.rps / b.rps for a, b in pairs if b.rps]


# the pinned summary (issue 17): `TARGET <name> <value> <target> met|missed`, one line each
TARGETS = [("dashboard_calendar_vs_bare", "calendar", "bare_page", CALENDAR_TARGET)]


def _target_lines(run: Run) -> list[str]:
    lines = []
    for name, top, bottom, target in TARGETS:
        values = _ratios(run, top, bottom)
        if values:
            value = statistics.median(values)
            verdict = "met" if value >= target else "missed"
            lines.append(f"TARGET {name} {value:.2f} {target:.2f} {verdict}")
    return lines


def _live_report(run: Run, line: str) -> None:
    polls = [r.rps for r in run.results.get("poll", [])]
    if not polls:
        return
    capacity = statistics.median(polls)
    load = LIVE_CALENDARS / LIVE_INTERVAL_S
    _say(line)
    _say(f"(b3) live updates: {LIVE_CALENDARS} open calendars polling every {LIVE_INTERVAL_S:g} s "
         "(htmx; 204 while nothing changed)")  # fmt: skip
    _say(f"    {load:,.0f} polls/s = {load / capacity:.2%} of the poll endpoint's capacity "
         f"({capacity:,.0f} req/s at {run.gen.connections} connections, above)")  # fmt: skip
    polled = _ratios(run, "calendar_polled", "calendar")
    if polled:
        _say(f"    day calendar while they poll: {statistics.median(polled):.2f} x its req/s alone")
    sent = sum(s.sent for s in run.polls)
    if sent:
        answered = " ".join(
            f"{code}={sum(s.statuses.get(code, 0) for s in run.polls)}"
            for code in sorted({c for s in run.polls for c in s.statuses})
        )
        latencies = sorted(ms for s in run.polls for ms in s.latencies_ms)
        p99 = latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] if latencies else 0
        errors = sum(s.errors for s in run.polls)
        rate = statistics.median(s.rps for s in run.polls)
        _say(f"    the pollers meanwhile: {rate:.1f} polls/s, answers {answered}, {errors} errors, "
             f"p99 {p99:.0f} ms (under the calendar's full load)")  # fmt: skip
    redraws = [r.rps for r in run.results.get("poll_redraw", [])]
    if redraws:
        burst = LIVE_CALENDARS / statistics.median(redraws)
        _say(f"    a change redraws each open calendar once: {LIVE_CALENDARS} changed answers = "
             f"{burst:.2f} s of the whole server (both workers) at the redraw's full rate")  # fmt: skip


def _report(
    run: Run, slot: dict[str, float | int], setting: str, db_floor: dict[str, float] | None
) -> None:
    width = 104
    line = "-" * width
    _say("")
    _say("=" * width)
    _say("PoZapisi benchmark")
    _say(f"machine: {_machine()}")
    _say(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average now {_loadavg()}")
    _say(setting)
    _say(line)
    verdict = "ok" if float(slot["median_ms"]) < SLOT_TARGET_MS else "MISSED"
    _say("(a) slot engine: 10 masters x 30 days, one find_slots call")
    _say(f"    median {slot['median_ms']} ms, p99 {slot['p99_ms']} ms ({slot['slots']} slots)"
         f"    target: median < {SLOT_TARGET_MS:g} ms -> {verdict}")  # fmt: skip
    _say(line)
    _say(f"(b) HTTP: {run.gen.description}; 2 uvicorn workers per server; 127.0.0.1")
    rounds = max((len(v) for v in run.results.values()), default=0)
    if rounds > 1:
        _say(f"    req/s: median of {rounds} rounds (range in brackets); latency: the middle "
             "(lower-middle) round")  # fmt: skip
    _say(f"    {'endpoint':<50}{'req/s':>9}  {'range':<15}{'p50 ms':>8}{'p99 ms':>9}{'errors':>8}")
    for results in run.results.values():
        mid = _median_result(results)
        rates = [r.rps for r in results]
        span = f"[{min(rates):,.0f}-{max(rates):,.0f}]" if len(results) > 1 else ""
        errors = sum(r.errors for r in results)
        _say(f"    {mid.name:<50}{statistics.median(rates):>9,.0f}  {span:<15}{mid.p50_ms:>8.1f}"
             f"{mid.p99_ms:>9.1f}{errors:>8}")  # fmt: skip
    _say(line)
    _say(f"    {'ratio (median of the per-round ratios)':<50}{'value':>9}  {'range':<15}"
         f"{'target':>8}   verdict")  # fmt: skip
    for label, top, bottom, target in RATIOS:
        values = sorted(_ratios(run, top, bottom))
        if not values:
            continue
        value = statistics.median(values)
        span = f"[{values[0]:.2f}-{values[-1]:.2f}]" if len(values) > 1 else ""
        if target is None:
            _say(f"    {label:<50}{value:>9.2f}  {span:<15}{'-':>8}")
        else:
            verdict = "ok" if value >= target else "MISSED"
            _say(f"    {label:<50}{value:>9.2f}  {span:<15}{'>= ' + format(target, '.2f'):>8}"
                 f"   {verdict}")  # fmt: skip
    _live_report(run, line)
    if db_floor:
        inserts = [r.rps for r in run.results.get("bare_insert", [])]
        share = db_floor["rps"] / statistics.median(inserts) if inserts else 0.0
        _say(line)
        _say("(b2) a booking's database work alone (bench/floor.py): its two statements from "
             f"{run.gen.connections} asyncpg connections, no HTTP")  # fmt: skip
        used_up = " (all planned bookings used: a lower bound)" if db_floor["used_up"] else ""
        _say(f"    {db_floor['rps']:,.0f} bookings/s, {int(db_floor['errors'])} errors{used_up}; "
             f"{share:.2f} x the bare constrained insert: the most booking creation could "
             "reach with no app at all")  # fmt: skip
    _say("=" * width)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    seconds = env_float("BENCH_SECONDS", 10)
    warmup = env_float("BENCH_WARMUP", 2)

    _say("(a) slot engine: bench.slots.run() …")
    slot = slots.run(env_int("BENCH_SLOT_REPEATS", 200))
    _say(f"  median {slot['median_ms']} ms, p99 {slot['p99_ms']} ms")

    wrk, note = ensure_wrk()
    gen = LoadGenerator(
        wrk,
        seconds=seconds,
        threads=env_int("BENCH_THREADS", 2),
        connections=env_int("BENCH_CONNECTIONS", 50),
        fallback_requests=env_int("BENCH_REQUESTS", 2000),
        no_wrk_reason=note,
    )
    if not wrk:
        _say(f"  NOTE: {gen.description}")
    run = Run(gen, warmup, max(1, env_int("BENCH_ROUNDS", 2)))

    _say("(b) HTTP: preparing a fresh database …")
    db = asyncio.run(fixtures.open_database())
    db_floor: dict[str, float] | None = None
    try:
        _say(f"  database {db.name} on the {db.kind} PostgreSQL server")
        asyncio.run(fixtures.create_bare_tables(db.owner))
        salon = asyncio.run(fixtures.create_salon(db.owner))
        wide = asyncio.run(fixtures.create_wide(db.owner))
        desk = asyncio.run(fixtures.create_calendar(db.owner, SECRET_KEY))
        booked = _http(run, db, salon, wide, desk)
        _say("(b2) a booking's database work alone …")
        db_floor = asyncio.run(
            floor.run(db, wide, booked.clients.used, seconds=seconds,
                      connections=gen.connections, expected_rps=booked.rate)
        )  # fmt: skip
        _say(f"  {db_floor['rps']:,.0f} bookings/s")
    finally:
        asyncio.run(db.close())
        _say(f"  dropped database {db.name}")

    server = os.environ.get("BENCH_SERVER", "nodelay")
    setting = (
        f"command: make bench (.venv/bin/python -m bench); BENCH_SECONDS={seconds:g}, "
        f"BENCH_ROUNDS={run.rounds}, BENCH_SERVER={server}; database: {db.kind} PostgreSQL"
    )
    _report(run, slot, setting, db_floor)

    try:
        _say("(c) notifications: 2 workers deliver outbox rows to a loopback Telegram stub …")
        notify = notifications.run()
        _say(
            f"    delivered {notify['notify_rows_per_s']:,.0f} rows/s; SAQ no-op jobs "
            f"{notify['saq_noop_jobs_per_s']:,.0f} jobs/s; ratio {notify['ratio']:.2f} "
            f"({notify['notify_rows']} rows, {notify['saq_noop_jobs']} jobs, {notify['database']} PostgreSQL)"
        )
    finally:  # the pinned summary ends the output, also when (c) fails
        for target in _target_lines(run):
            _say(target)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, database dropped", file=sys.stderr)
        sys.exit(130)
