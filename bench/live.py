"""What the open calendars' live updates cost (issue 14 item 4): htmx polling of
``GET /dashboard/calendar/live`` with the stamp the page was drawn at, answered 204 while
nothing changed.

:class:`Pollers` plays ``count`` open calendars in the background, each polling at a fixed
rate (its first poll at its own offset within the interval, as tabs opened at different times
do), on its own keep-alive connection; the benchmark measures the calendar itself under wrk
meanwhile, and the poll endpoint alone at full load.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from bench import fixtures

STAMP_HEADER = "X-Live-Stamp"
STAMP_PERIOD_S = 900  # the stamp holds the quarter hour (unix time // 900)


def calendar_url(base: str, desk: fixtures.Calendar) -> str:
    return f"{base}/dashboard/calendar?date={desk.day}&view=day"


def poll_url(base: str, desk: fixtures.Calendar, stamp: str) -> str:
    return f"{base}/dashboard/calendar/live?date={desk.day}&view=day&stamp={stamp}"


def current_stamp(base: str, desk: fixtures.Calendar, lasting: float = 0.0) -> str:
    """The stamp the open day is at (a poll without one gets the grid and the stamp), checked
    to answer 204 — so the load measures the unchanged answer, not redraws. The stamp also
    turns every quarter hour (the calendar's "now" line): with ``lasting`` seconds to measure,
    wait for the next quarter hour first when it would come sooner."""
    left = STAMP_PERIOD_S - time.time() % STAMP_PERIOD_S
    if left < lasting + 5:
        time.sleep(left + 1)
    signed_in = {"Cookie": desk.cookie, "HX-Request": "true"}
    first = httpx.get(poll_url(base, desk, ""), headers=signed_in)
    stamp = first.headers.get(STAMP_HEADER)
    if first.status_code != 200 or not stamp:
        raise RuntimeError(f"calendar poll without a stamp: HTTP {first.status_code}, "
                           f"{STAMP_HEADER} {stamp!r}: {first.text[:300]}")  # fmt: skip
    again = httpx.get(poll_url(base, desk, stamp), headers=signed_in)
    if again.status_code != 204:
        raise RuntimeError(f"calendar poll with the current stamp: HTTP {again.status_code}, "
                           "not 204")  # fmt: skip
    return stamp


@dataclass
class PollStats:
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, p: int) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, len(ordered) * p // 100)] if ordered else 0.0


class Pollers:
    """``count`` open calendars polling every ``interval`` seconds, in a thread of their own,
    from ``with`` until its end; ``stats`` afterwards. Each starts from ``stamp`` and, as the
    page's poller does, sends the stamp of its last answer next time."""

    def __init__(
        self,
        base: str,
        desk: fixtures.Calendar,
        stamp: str,
        headers: dict[str, str],
        *,
        count: int,
        interval: float,
    ) -> None:
        self.base = base
        self.desk = desk
        self.stamp = stamp
        self.headers = {**headers, "HX-Request": "true"}
        self.count = count
        self.interval = interval
        self.stats = PollStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-pollers", daemon=True)

    def __enter__(self) -> Pollers:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        asyncio.run(self._poll_all())

    async def _poll_all(self) -> None:
        limits = httpx.Limits(max_connections=self.count, max_keepalive_connections=self.count)
        started = time.monotonic()
        async with httpx.AsyncClient(limits=limits, timeout=30, headers=self.headers) as client:
            await asyncio.gather(*(self._poll(client, started, n) for n in range(self.count)))
        self.stats.seconds = time.monotonic() - started

    async def _poll(self, client: httpx.AsyncClient, started: float, number: int) -> None:
        due = started + self.interval * number / self.count
        stamp = self.stamp
        while not self._stop.is_set():
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))  # notices the end within a second
                continue
            due += self.interval
            sent = time.perf_counter()
            self.stats.sent += 1
            try:
                response = await client.get(poll_url(self.base, self.desk, stamp))
            except httpx.HTTPError:
                self.stats.errors += 1
                continue
            stamp = response.headers.get(STAMP_HEADER, stamp)
            self.stats.latencies_ms.append((time.perf_counter() - sent) * 1000)
            code = response.status_code
            self.stats.statuses[code] = self.stats.statuses.get(code, 0) + 1
            if code >= 400:
                self.stats.errors += 1
