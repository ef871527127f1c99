"""`make bench`: the slot engine micro-benchmark and the HTTP benchmark, in one bounded run.

(a) ``bench.slots.run()``: 10 masters x 30 days, and a clinic of 50 masters x 60 days, median
    and p99 per ``find_slots`` call.
(b) Real servers on 127.0.0.1, 2 uvicorn workers each, loaded by wrk (or a bounded Python
    client), on a fresh database that is dropped at the end: the platform (issue 17;
    ``bench/platform.py``: BENCH_BUSINESSES salons of 10 masters, 8 services and a month of
    bookings each), its requests spread over every business — availability, the Mini App's
    business and service pages, each owner's day calendar (10 masters, 80 bookings), bookings
    by distinct clients — against the bare baselines (``bench/baseline_app.py``) on the same
    data; and beside it the one-salon hot spot: availability, the booking page, the day
    calendar and bookings in one business against the bare 20-row page and inserts.
(b4) The mixed traffic of ``make loadtest`` (``bench/loadtest.py``) at 50 connections, no
    faults, for its p99.
The run ends with the pinned summary, one line per target of issue 17:
``TARGET <name> <value> <target> met|missed``.
(b3) The calendar's live updates (``bench/live.py``): the htmx poll's unchanged answer at full
    load, the share of it that BENCH_LIVE_CALENDARS open calendars polling every
    BENCH_LIVE_INTERVAL seconds take, and the calendar's req/s while they poll.

Environment:
  BENCH_SECONDS      length of each HTTP measurement (default 10)
  BENCH_ROUNDS       rounds of all HTTP measurements (default 2); figures are the medians
  BENCH_WARMUP       warm-up before each measurement, not counted (default 2)
  BENCH_CONNECTIONS  concurrent connections (default 50); BENCH_THREADS wrk threads (default 2)
  BENCH_SLOT_REPEATS slot-engine calls timed (default 200; half as many for the clinic)
  BENCH_BUSINESSES   the platform's businesses (default 100)
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import httpx
import msgspec

from bench import fixtures, floor, live, notifications, slots
from bench.http import (
    NODELAY_UVICORN,
    STOCK_UVICORN,
    Line,
    LoadGenerator,
    LoadResult,
    Server,
    ensure_wrk,
    env_float,
    env_int,
    loadavg,
    say,
)
from bench.platform import Platform, create_platform

# throwaway values for the benchmark's own servers, never a real bot's
BOT_TOKEN = "123456:BENCH-bot-token-for-pozapisi"  # noqa: S105
SECRET_KEY = "bench-secret-key-0123456789abcdef-0123456789"  # noqa: S105
SLOT_TARGET_MS = 5.0
CALENDAR_TARGET = 0.30  # issue 14: the day calendar against the bare asyncpg + Jinja page
BUSINESSES = env_int("BENCH_BUSINESSES", 100)  # the platform's (bench/platform.py)
# issue 14 item 4: the open calendars whose live updates are measured, and their poll interval
# (the htmx trigger's "every 5s" in app/templates/dashboard/calendar/_body.html)
LIVE_CALENDARS = env_int("BENCH_LIVE_CALENDARS", 50)
LIVE_INTERVAL_S = env_float("BENCH_LIVE_INTERVAL", 5.0)
RATIOS = [
    # label, numerator, denominator, target
    ("availability, 100 businesses / bare page of theirs", "availability_spread",
     "bare_page_spread", 0.75),
    ("business page, 100 businesses / bare page of theirs", "page_spread", "bare_page_spread",
     0.50),
    ("service page, 100 businesses / bare page of theirs", "service_spread", "bare_page_spread",
     0.50),
    ("day calendar, 100 owners / bare page of theirs", "calendar_spread", "bare_page_spread",
     CALENDAR_TARGET),
    ("booking, 100 businesses / bare audited insert, 100", "booking_spread",
     "bare_audited_spread", 0.60),
    ("bare page of a business's data / bare 20-row page", "bare_page_spread", "bare_page", None),
    ("availability (one salon) / bare asyncpg+Jinja page", "availability", "bare_page", None),
    ("day calendar / bare asyncpg+Jinja page", "calendar", "bare_page", None),
    ("day calendar / bare calendar-shaped page", "calendar", "bare_calendar", None),
    ("bare calendar-shaped page / bare page", "bare_calendar", "bare_page", None),
    ("day calendar while calendars poll / alone", "calendar_polled", "calendar", None),
    ("booking (one business) / bare constrained insert", "booking", "bare_insert", None),
    ("bare audited insert / bare constrained insert", "bare_audited", "bare_insert", None),
    ("booking (one business) / bare audited insert", "booking", "bare_audited", None),
    ("booking page (one salon) / bare asyncpg+Jinja page", "page", "bare_page", None),
    ("stock uvicorn / TCP_NODELAY uvicorn, plain", "plain_stock", "plain", None),
]  # fmt: skip


def _on_sigterm(_signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt  # run every finally: stop servers, drop the database


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
        self.mixed: list[Any] = []  # make loadtest's mixed traffic (bench.loadtest.Mixed)

    def measure(
        self,
        key: str,
        name: str,
        url: str,
        *,
        method: str = "GET",
        warm: bool = True,
        headers: dict[str, str] | None = None,
        lines: Sequence[Line] | None = None,
    ) -> LoadResult:
        if warm and self.warmup > 0:
            if lines:
                _spread_load(self.gen, name, url, lines, self.warmup)
            else:
                self.gen.measure(name, url, method=method, seconds=self.warmup, headers=headers)
        if lines:
            result = _spread_load(self.gen, name, url, lines, self.gen.seconds)
        else:
            result = self.gen.measure(name, url, method=method, headers=headers)
        self.results.setdefault(key, []).append(result)
        note = ""
        if result.errors:
            note = f"  ({result.errors} errors: {result.first_error})"
        elif result.first_error:
            note = f"  (warning: {result.first_error})"
        say(f"  {name:<50} {result.rps:>9,.0f} req/s{note}")
        return result


def _spread_load(gen: LoadGenerator, name: str, base: str, lines: Sequence[Line], seconds: float
                 ) -> LoadResult:  # fmt: skip
    """One measurement of requests to many addresses, through ``make loadtest``'s request file
    and its wrk script (or its Python client without wrk): "book" lines are sent at most once,
    the others again and again."""
    from bench import loadtest

    mixed = loadtest.run_lines(base, ["\t".join(line) for line in lines], seconds,
                               gen.connections, gen.wrk, gen.threads)  # fmt: skip
    ok = sum(n for code, n in mixed.statuses.items() if 200 <= code < 400)
    sent = mixed.requests
    first_error = mixed.sample
    if all(line[0] == "book" for line in lines):
        sent = mixed.bookings_sent
        if sent < mixed.requests:  # every booking went out: the rest asked the bare address
            ok = min(ok, sent)
            first_error = f"all {len(lines)} bookings sent before the end; {first_error}"
    socket_errors = sum(mixed.socket_errors.values())
    return LoadResult(
        name=name, ok=ok, errors=mixed.requests - ok + socket_errors, seconds=mixed.seconds,
        p50_ms=mixed.p50_ms, p99_ms=mixed.p99_ms, tool=mixed.tool, sent=sent,
        first_error=first_error if mixed.requests - ok + socket_errors else "",
        statuses=dict(mixed.statuses),
    )  # fmt: skip


# the (path, master, service, start) of the index-th distinct free slot of a booking load
SlotSource = Callable[[int], tuple[str, int, int, datetime]]


class Clients:
    """Distinct Telegram users, each with its own free slot: in the wide business (the one-salon
    hot spot) or spread over the platform's businesses."""

    def __init__(self, slot: SlotSource, capacity: int, first_user: int) -> None:
        self.slot = slot
        self.capacity = capacity
        self.first_user = first_user
        self.used = 0

    @classmethod
    def of_wide(cls, wide: fixtures.Wide) -> Clients:
        path = f"/api/v1/businesses/{wide.slug}/bookings"

        def slot(index: int) -> tuple[str, int, int, datetime]:
            staff_id, start = wide.slot(index)
            return path, staff_id, wide.service_id, start

        return cls(slot, wide.slots, random.randrange(10**11, 4 * 10**11))

    @classmethod
    def of_platform(cls, shops: Platform) -> Clients:
        def slot(index: int) -> tuple[str, int, int, datetime]:
            shop, staff_id, service_id, start = shops.free_slot(index)
            return f"/api/v1/businesses/{shop.slug}/bookings", staff_id, service_id, start

        return cls(slot, shops.free_slots, random.randrange(5 * 10**11, 9 * 10**11))

    def take(self, count: int) -> list[Line]:
        from tests.support.telegram import make_init_data

        if self.used + count > self.capacity:
            raise RuntimeError(f"only {self.capacity} free slots to book")
        lines: list[Line] = []
        for index in range(self.used, self.used + count):
            path, staff_id, service_id, start = self.slot(index)
            body = {"service_id": service_id, "staff_id": staff_id, "start": start.isoformat()}
            init = make_init_data(
                BOT_TOKEN, user_id=self.first_user + index, first_name=f"Клиент{index}"
            )
            lines.append(
                ("book", "POST", path, "tma " + init, "", msgspec.json.encode(body).decode())
            )
        self.used += count
        return lines


def _consent(base: str, lines: Sequence[Line]) -> None:
    """Every client consents through the API first (not timed)."""
    from bench.loadtest import consent

    took = consent(base, [line[3] for line in lines])
    say(f"  ({len(lines):,} Telegram users consented through POST /api/v1/me/consent "
         f"in {took:.1f} s, not timed)")  # fmt: skip


class Bookings:
    """POST booking measurements that never send a request twice: the first warm-up probes the
    rate, and before each timed run enough new clients are made and consent (not timed)."""

    def __init__(self, run: Run, clients: Clients, key: str, name: str) -> None:
        self.run = run
        self.clients = clients
        self.key = key
        self.name = name
        hint = os.environ.get("BENCH_BOOKING_RPS")
        self.rate = float(hint) if hint else 0.0  # 0: probe it

    def warm_up(self, base: str) -> None:
        gen = self.run.gen
        probe_seconds = max(self.run.warmup, 2.0)
        if not gen.wrk:
            count = max(50, gen.fallback_requests // 5)
        elif self.rate:
            count = gen.posts_needed(self.rate * 2, probe_seconds)
        else:
            count = 400
        lines = self.clients.take(1 + count)
        _consent(base, lines)
        sanity, lines = lines[0], lines[1:]
        headers = {"Authorization": sanity[3], "Content-Type": "application/json"}
        _check(httpx.post(base + sanity[2], content=sanity[5].encode(), headers=headers),
               201, "booking")  # fmt: skip
        warm = _spread_load(gen, f"{self.key} warm-up", base, lines, probe_seconds)
        if gen.wrk and not self.rate:
            # all used up: then the probe gives only a lower bound, so count every request sent
            used_up = warm.sent >= len(lines) - gen.threads
            self.rate = warm.sent / warm.seconds if used_up else warm.rps

    def measure(self, base: str) -> None:
        gen = self.run.gen
        if gen.wrk:
            # generous: a request sent twice would be a 409, cheaper than a booking
            count = gen.posts_needed(max(self.rate, 20.0) * 3) + 200
        else:
            count = gen.fallback_requests
        lines = self.clients.take(count)
        _consent(base, lines)
        result = self.run.measure(self.key, self.name, base, lines=lines, warm=False)
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


def _spread(shops: Platform) -> dict[str, list[Line]]:
    """The platform's read requests, over every business (shuffled with a fixed seed): the bare
    page of each business's data, availability of a day, the Mini App business and service
    pages, and each owner's day calendar."""
    rng = random.Random(17)
    days = [shops.day + timedelta(days=i) for i in range(7)]
    reads: dict[str, list[Line]] = {k: [] for k in ("bare", "availability", "page", "service",
                                                   "calendar")}  # fmt: skip
    for shop in shops.shops:
        reads["bare"].append(("read", "GET", f"/page?business={shop.business_id}", "", "", ""))
        reads["page"].append(("read", "GET", f"/app/b/{shop.slug}", "", "", ""))
        reads["calendar"].append(("read", "GET", f"/dashboard/calendar?date={shops.day}&view=day",
                                  "", shop.cookie, ""))  # fmt: skip
        for service_id in shop.service_ids:
            reads["service"].append(("read", "GET", f"/app/b/{shop.slug}/s/{service_id}",
                                     "", "", ""))  # fmt: skip
            for day in days:
                reads["availability"].append((
                    "read", "GET",
                    f"/api/v1/businesses/{shop.slug}/availability?service={service_id}"
                    f"&date_from={day}&date_to={day}&staff=any", "", "", "",
                ))  # fmt: skip
    for lines in reads.values():
        rng.shuffle(lines)
    return reads


def _check_spread(base: str, reads: dict[str, list[Line]], shops: Platform) -> None:
    """Every kind of platform request answers 200 with what it should show (not a redirect or
    an empty page, which wrk would count as an answer)."""
    _kind, _verb, path, _auth, cookie, _body = reads["calendar"][0]
    drawn = _check(httpx.get(base + path, headers={"Cookie": cookie}), 200,
                   "platform calendar").text.count('class="cal-block ')  # fmt: skip
    if drawn != shops.per_day:
        raise RuntimeError(f"platform calendar: {drawn} bookings drawn, {shops.per_day} booked")
    # a 2-hour service finds no gap in a seeded day, so look at a few reads for free times
    answers = [_check(httpx.get(base + line[2]), 200, "platform availability").json()
               for line in reads["availability"][:20]]  # fmt: skip
    if not any(answer["slots"] for answer in answers):
        raise RuntimeError("platform availability: no free slots in 20 reads")
    for kind in ("page", "service"):
        _check(httpx.get(base + reads[kind][0][2]), 200, f"platform {kind}")


def _bare_spread(run: Run, bare: Server, shops: Platform, reads: dict[str, list[Line]],
                 first: bool) -> None:  # fmt: skip
    inserts: list[Line] = [
        ("insert", "POST", f"/insert-audited?business={shop.business_id}", "", "", "")
        for shop in shops.shops
    ]
    if first:
        page = _check(httpx.get(bare.url + reads["bare"][0][2]), 200, "bare business page").text
        if page.count('class="card"') != 18:
            raise RuntimeError("bare business page: not the business's 8 services and 10 masters")
        _check(httpx.post(bare.url + inserts[0][2]), 201, "bare audited insert, spread")
    n = len(shops.shops)
    run.measure("bare_page_spread", f"bare: page of a business's data, {n} businesses",
                bare.url, lines=reads["bare"])  # fmt: skip
    run.measure("bare_audited_spread", f"bare: audited INSERT, {n} businesses' chains",
                bare.url, lines=inserts)  # fmt: skip


def _app_spread(run: Run, app: Server, reads: dict[str, list[Line]], bookings: Bookings) -> None:
    n = len(reads["page"])
    run.measure("availability_spread", f"app: GET availability, {n} businesses", app.url,
                lines=reads["availability"])  # fmt: skip
    run.measure("page_spread", f"app: GET /app/b/<slug>, {n} businesses", app.url,
                lines=reads["page"])  # fmt: skip
    run.measure("service_spread", f"app: GET /app/b/<slug>/s/<id> (times), {n} businesses",
                app.url, lines=reads["service"])  # fmt: skip
    run.measure("calendar_spread", f"app: GET /dashboard/calendar, {n} owners", app.url,
                lines=reads["calendar"])  # fmt: skip
    bookings.warm_up(app.url)
    bookings.measure(app.url)


def _mixed(run: Run, app: Server, shops: Platform, clients: Clients) -> None:
    """``make loadtest``'s mixed traffic (no faults) against this app, its bookings on free
    slots the benchmark's own bookings have not taken."""
    from bench import loadtest

    mixed_clients = loadtest.Clients(shops, bot_token=BOT_TOKEN)
    mixed_clients.used = clients.used + 1  # past every slot taken so far
    result = loadtest.mixed(app.url, shops, mixed_clients, run.gen.seconds,
                            run.gen.connections, wrk=run.gen.wrk, threads=run.gen.threads)  # fmt: skip
    clients.used = mixed_clients.used
    run.mixed.append(result)
    say(f"  {'app: mixed traffic (make loadtest), no faults':<50} {result.rps:>9,.0f} req/s"
         f"  (p99 {result.p99_ms:.0f} ms; {result.line().split('; ', 1)[1]})")  # fmt: skip


def _http(
    run: Run,
    db: fixtures.BenchDatabase,
    salon: fixtures.Salon,
    wide: fixtures.Wide,
    desk: fixtures.Calendar,
    shops: Platform,
) -> Bookings:
    """Rounds of: the baseline server (plain, page, calendar-shaped page, insert, and the
    platform's page and audited insert over every business), then the app (the platform's
    requests over every business, then the one-salon hot spot: availability, page, day calendar
    and its live poll, booking). Only one of them runs at a time, so the benchmark never holds
    more database connections than the app alone (2 workers x (10 + 10 overflow)) on a server
    that may be shared; the rounds give each ratio several pairs taken minutes apart at most."""
    from app.db.urls import to_libpq

    stock = os.environ.get("BENCH_SERVER", "nodelay") == "uvicorn"
    launcher = STOCK_UVICORN if stock else NODELAY_UVICORN
    bare_args = ("baseline", "bench.baseline_app:create_app",
                 {"BENCH_BASELINE_DSN": to_libpq(db.owner)})  # fmt: skip
    app_args = ("app", "app.main:create_app_from_env", {
        "DATABASE_URL": db.owner, "DATABASE_APP_URL": db.app, "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "SECRET_KEY": SECRET_KEY, "POZAPISI_ENV": "test", "LOG_LEVEL": "WARNING",
    })  # fmt: skip
    bookings = Bookings(run, Clients.of_wide(wide), "booking",
                        "app: POST booking, one business (hot spot)")  # fmt: skip
    spread_bookings = Bookings(run, Clients.of_platform(shops), "booking_spread",
                               f"app: POST booking, {len(shops.shops)} businesses")  # fmt: skip
    reads = _spread(shops)
    say(f"  load: {run.gen.description}; warm-up {run.warmup:g} s before each measurement")
    for number in range(1, run.rounds + 1):
        say(f"  round {number}/{run.rounds}, load average {loadavg()}")
        with _serving(*bare_args, launcher, "/plain") as bare:
            if number == 1:
                _check(httpx.get(bare.url + "/page"), 200, "bare page")
                _check(httpx.post(bare.url + "/insert"), 201, "bare insert")
                _check(httpx.post(bare.url + "/insert-audited"), 201, "bare audited insert")
            _bare_spread(run, bare, shops, reads, number == 1)
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
            if number == 1:
                _check_spread(app.url, reads, shops)
            _app_spread(run, app, reads, spread_bookings)
            _mixed(run, app, shops, spread_bookings.clients)
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
                say(f"  (warning: {redrawn} of the polls were answered other than 204)")
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


# the pinned summary (issue 17): `TARGET <name> <value> <target> met|missed`, one line each.
# (name, numerator, denominator, target): a ratio of req/s in the same run, at least target
RATIO_TARGETS = [
    ("booking_vs_audited_insert", "booking_spread", "bare_audited_spread", 0.60),
    ("miniapp_business_page_vs_bare", "page_spread", "bare_page_spread", 0.50),
    ("miniapp_service_page_vs_bare", "service_spread", "bare_page_spread", 0.50),
    ("availability_vs_bare", "availability_spread", "bare_page_spread", 0.75),
    ("dashboard_calendar_vs_bare", "calendar_spread", "bare_page_spread", CALENDAR_TARGET),
]
BOOKING_P99_TARGET_MS = 100.0  # booking over 100 businesses at 50 connections
CLINIC_TARGET_MS = 10.0  # the slot engine, 50 masters x 60 days, median
MIXED_P99_TARGET_MS = 150.0  # make loadtest's mixed traffic at 50 connections, no faults


def _verdict(name: str, value: float, target: float, *, at_most: bool = False, digits: int = 2
             ) -> str:  # fmt: skip
    met = value <= target if at_most else value >= target
    return f"TARGET {name} {value:.{digits}f} {target:.{digits}f} {'met' if met else 'missed'}"


def _target_lines(run: Run, clinic: dict[str, float | int] | None,
                  mixed_p99_ms: float | None) -> list[str]:  # fmt: skip
    lines = []
    for name, top, bottom, target in RATIO_TARGETS:
        values = _ratios(run, top, bottom)
        if values:
            lines.append(_verdict(name, statistics.median(values), target))
    booked = run.results.get("booking_spread")
    if booked:
        p99 = _median_result(booked).p99_ms
        lines.append(_verdict("booking_p99_ms", p99, BOOKING_P99_TARGET_MS, at_most=True,
                              digits=1))  # fmt: skip
    if clinic:
        lines.append(_verdict("slot_engine_clinic_median_ms", float(clinic["median_ms"]),
                              CLINIC_TARGET_MS, at_most=True, digits=1))  # fmt: skip
    if mixed_p99_ms is not None:
        lines.append(_verdict("loadtest_p99_ms", mixed_p99_ms, MIXED_P99_TARGET_MS,
                              at_most=True, digits=1))  # fmt: skip
    return lines


def _live_report(run: Run, line: str) -> None:
    polls = [r.rps for r in run.results.get("poll", [])]
    if not polls:
        return
    capacity = statistics.median(polls)
    load = LIVE_CALENDARS / LIVE_INTERVAL_S
    say(line)
    say(f"(b3) live updates: {LIVE_CALENDARS} open calendars polling every {LIVE_INTERVAL_S:g} s "
         "(htmx; 204 while nothing changed)")  # fmt: skip
    say(f"    {load:,.0f} polls/s = {load / capacity:.2%} of the poll endpoint's capacity "
         f"({capacity:,.0f} req/s at {run.gen.connections} connections, above)")  # fmt: skip
    polled = _ratios(run, "calendar_polled", "calendar")
    if polled:
        say(f"    day calendar while they poll: {statistics.median(polled):.2f} x its req/s alone")
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
        say(f"    the pollers meanwhile: {rate:.1f} polls/s, answers {answered}, {errors} errors, "
             f"p99 {p99:.0f} ms (under the calendar's full load)")  # fmt: skip
    redraws = [r.rps for r in run.results.get("poll_redraw", [])]
    if redraws:
        burst = LIVE_CALENDARS / statistics.median(redraws)
        say(f"    a change redraws each open calendar once: {LIVE_CALENDARS} changed answers = "
             f"{burst:.2f} s of the whole server (both workers) at the redraw's full rate")  # fmt: skip


def _report(
    run: Run,
    slot: dict[str, float | int],
    clinic: dict[str, float | int],
    setting: str,
    db_floor: dict[str, float] | None,
) -> None:
    width = 104
    line = "-" * width
    say("")
    say("=" * width)
    say("PoZapisi benchmark")
    say(f"machine: {_machine()}")
    say(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average now {loadavg()}")
    say(setting)
    say(line)
    verdict = "ok" if float(slot["median_ms"]) < SLOT_TARGET_MS else "MISSED"
    say("(a) slot engine: 10 masters x 30 days, one find_slots call")
    say(f"    median {slot['median_ms']} ms, p99 {slot['p99_ms']} ms ({slot['slots']} slots)"
         f"    target: median < {SLOT_TARGET_MS:g} ms -> {verdict}")  # fmt: skip
    verdict = "ok" if float(clinic["median_ms"]) < CLINIC_TARGET_MS else "MISSED"
    say("    a clinic: 50 masters x 60 days, one find_slots call")
    say(f"    median {clinic['median_ms']} ms, p99 {clinic['p99_ms']} ms "
         f"({clinic['slots']} slots)    target: median < {CLINIC_TARGET_MS:g} ms -> {verdict}")  # fmt: skip
    say(line)
    say(f"(b) HTTP: {run.gen.description}; 2 uvicorn workers per server; 127.0.0.1")
    rounds = max((len(v) for v in run.results.values()), default=0)
    if rounds > 1:
        say(f"    req/s: median of {rounds} rounds (range in brackets); latency: the middle "
             "(lower-middle) round")  # fmt: skip
    say(f"    {'endpoint':<50}{'req/s':>9}  {'range':<15}{'p50 ms':>8}{'p99 ms':>9}{'errors':>8}")
    for results in run.results.values():
        mid = _median_result(results)
        rates = [r.rps for r in results]
        span = f"[{min(rates):,.0f}-{max(rates):,.0f}]" if len(results) > 1 else ""
        errors = sum(r.errors for r in results)
        say(f"    {mid.name:<50}{statistics.median(rates):>9,.0f}  {span:<15}{mid.p50_ms:>8.1f}"
             f"{mid.p99_ms:>9.1f}{errors:>8}")  # fmt: skip
    say(line)
    say(f"    {'ratio (median of the per-round ratios)':<50}{'value':>9}  {'range':<15}"
         f"{'target':>8}   verdict")  # fmt: skip
    for label, top, bottom, target in RATIOS:
        values = sorted(_ratios(run, top, bottom))
        if not values:
            continue
        value = statistics.median(values)
        span = f"[{values[0]:.2f}-{values[-1]:.2f}]" if len(values) > 1 else ""
        if target is None:
            say(f"    {label:<50}{value:>9.2f}  {span:<15}{'-':>8}")
        else:
            verdict = "ok" if value >= target else "MISSED"
            say(f"    {label:<50}{value:>9.2f}  {span:<15}{'>= ' + format(target, '.2f'):>8}"
                 f"   {verdict}")  # fmt: skip
    _live_report(run, line)
    if run.mixed:
        say(line)
        say(f"(b4) make loadtest's mixed traffic, no faults, {run.gen.connections} connections "
             "(bench/loadtest.py MIX), per round:")  # fmt: skip
        for mixed in run.mixed:
            say(f"    {mixed.line()}")
    if db_floor:
        inserts = [r.rps for r in run.results.get("bare_insert", [])]
        share = db_floor["rps"] / statistics.median(inserts) if inserts else 0.0
        say(line)
        say("(b2) a booking's database work alone (bench/floor.py): its two statements from "
             f"{run.gen.connections} asyncpg connections, no HTTP")  # fmt: skip
        used_up = " (all planned bookings used: a lower bound)" if db_floor["used_up"] else ""
        say(f"    {db_floor['rps']:,.0f} bookings/s, {int(db_floor['errors'])} errors{used_up}; "
             f"{share:.2f} x the bare constrained insert: the most booking creation could "
             "reach with no app at all")  # fmt: skip
    say("=" * width)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    seconds = env_float("BENCH_SECONDS", 10)
    warmup = env_float("BENCH_WARMUP", 2)

    say("(a) slot engine: bench.slots.run() …")
    slot = slots.run(env_int("BENCH_SLOT_REPEATS", 200))
    say(f"  salon 10 x 30: median {slot['median_ms']} ms, p99 {slot['p99_ms']} ms")
    clinic = slots.run(env_int("BENCH_SLOT_REPEATS", 200) // 2, slots.CLINIC)
    say(f"  clinic 50 x 60: median {clinic['median_ms']} ms, p99 {clinic['p99_ms']} ms")

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
        say(f"  NOTE: {gen.description}")
    run = Run(gen, warmup, max(1, env_int("BENCH_ROUNDS", 2)))

    say("(b) HTTP: preparing a fresh database …")
    db = asyncio.run(fixtures.open_database())
    db_floor: dict[str, float] | None = None
    try:
        say(f"  database {db.name} on the {db.kind} PostgreSQL server")
        asyncio.run(fixtures.create_bare_tables(db.owner))
        salon = asyncio.run(fixtures.create_salon(db.owner))
        wide = asyncio.run(fixtures.create_wide(db.owner))
        desk = asyncio.run(fixtures.create_calendar(db.owner, SECRET_KEY))
        started = time.perf_counter()
        shops = asyncio.run(create_platform(db.owner, SECRET_KEY, businesses=BUSINESSES))
        say(f"  platform: {len(shops.shops)} businesses, {shops.bookings:,} bookings seeded in "
             f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        booked = _http(run, db, salon, wide, desk, shops)
        say("(b2) a booking's database work alone …")
        db_floor = asyncio.run(
            floor.run(db, wide, booked.clients.used, seconds=seconds,
                      connections=gen.connections, expected_rps=booked.rate)
        )  # fmt: skip
        say(f"  {db_floor['rps']:,.0f} bookings/s")
    finally:
        asyncio.run(db.close())
        say(f"  dropped database {db.name}")

    server = os.environ.get("BENCH_SERVER", "nodelay")
    setting = (
        f"command: make bench (.venv/bin/python -m bench); BENCH_SECONDS={seconds:g}, "
        f"BENCH_ROUNDS={run.rounds}, BENCH_SERVER={server}; database: {db.kind} PostgreSQL"
    )
    _report(run, slot, clinic, setting, db_floor)

    try:
        say("(c) notifications: 2 workers deliver outbox rows to a loopback Telegram stub …")
        notify = notifications.run()
        say(
            f"    delivered {notify['notify_rows_per_s']:,.0f} rows/s; SAQ no-op jobs "
            f"{notify['saq_noop_jobs_per_s']:,.0f} jobs/s; ratio {notify['ratio']:.2f} "
            f"({notify['notify_rows']} rows, {notify['saq_noop_jobs']} jobs, {notify['database']} PostgreSQL)"
        )
    finally:  # the pinned summary ends the output, also when (c) fails
        mixed_p99_ms = statistics.median(m.p99_ms for m in run.mixed) if run.mixed else None
        for target in _target_lines(run, clinic, mixed_p99_ms):
            say(target)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, database dropped", file=sys.stderr)
        sys.exit(130)
