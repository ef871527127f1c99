"""CPU per request, in process: where the HTTP benchmark's time goes, without a server or wrk.

``python -m bench.profile [availability|booking|page|calendar|poll|platform|bare] [--cprofile]`` builds the app on a fresh
benchmark database (``bench/fixtures.py``), sends requests one after another through
``httpx.ASGITransport`` and prints the CPU time (``time.process_time``) per request. With
``--cprofile`` it prints the 30 costliest functions too. Counts only this process: the database
server's own work is not in the figure, which is what a round trip costs the app.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from bench import fixtures
from bench.__main__ import BOT_TOKEN, SECRET_KEY, Clients
from bench.http import Line

REQUESTS = int(os.environ.get("BENCH_PROFILE_REQUESTS", "400"))


class Asgi:
    """Calls an ASGI app directly (no client library in the measured CPU time)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        status, answer, _value = await self.request_with_header(method, target, "", body, headers)
        return status, answer

    async def request_with_header(
        self,
        method: str,
        target: str,
        header: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, str]:
        """The status, body and one response header's value ("" when absent)."""
        path, _, query = target.partition("?")
        raw_headers = [(b"host", b"bench")] + [
            (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()
        ]
        if body:
            raw_headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query.encode(), "root_path": "", "headers": raw_headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        sent = False
        status = 0
        value = ""
        wanted = header.lower().encode()
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, value
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, raw in message.get("headers", []):
                    if wanted and name.lower() == wanted:
                        value = raw.decode()
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks), value


async def _measure(name: str, call: Callable[[int], Awaitable[None]], profile: bool) -> None:
    for index in range(20):  # warm caches and prepared statements
        await call(index)
    profiler = cProfile.Profile() if profile else None
    cpu = time.process_time()
    wall = time.perf_counter()
    if profiler:
        profiler.enable()
    for index in range(20, 20 + REQUESTS):
        await call(index)
    if profiler:
        profiler.disable()
    per_request = (time.process_time() - cpu) / REQUESTS * 1000
    elapsed = (time.perf_counter() - wall) / REQUESTS * 1000
    print(
        f"{name}: {per_request:.2f} ms CPU per request, {elapsed:.2f} ms wall one after "
        f"another ({REQUESTS} requests; the difference is mostly the database's time)",
        flush=True,
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


async def main(which: list[str], profile: bool) -> None:
    from app.main import create_app
    from app.settings import load_settings

    db = await fixtures.open_database()
    try:
        salon = await fixtures.create_salon(db.owner)
        wide = await fixtures.create_wide(db.owner)
        desk = await fixtures.create_calendar(db.owner, SECRET_KEY)
        settings = load_settings({
            "DATABASE_URL": db.owner, "DATABASE_APP_URL": db.app, "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "SECRET_KEY": SECRET_KEY, "POZAPISI_ENV": "test", "LOG_LEVEL": "WARNING",
        })  # fmt: skip
        app = create_app(settings, app_url=db.app)
        async with app.lifespan():
            client = Asgi(app)
            availability = (
                f"/api/v1/businesses/{salon.slug}/availability?service={salon.service_id}"
                f"&date_from={salon.day}&date_to={salon.day}&staff=any"
            )
            if "availability" in which:

                async def get_slots(_index: int) -> None:
                    response = await client.request("GET", availability)
                    assert response[0] == 200, response

                await _measure("availability", get_slots, profile)
            if "page" in which:

                async def get_page(_index: int) -> None:
                    response = await client.request("GET", f"/app/b/{salon.slug}")
                    assert response[0] == 200, response

                await _measure("booking page", get_page, profile)
            if "calendar" in which:
                day_view = f"/dashboard/calendar?date={desk.day}&view=day"
                signed_in = {"Cookie": desk.cookie}

                async def get_calendar(_index: int) -> None:
                    response = await client.request("GET", day_view, headers=signed_in)
                    assert response[0] == 200, response

                await _measure("day calendar", get_calendar, profile)
            if "poll" in which:
                from bench.live import STAMP_HEADER

                live_view = f"/dashboard/calendar/live?date={desk.day}&view=day&stamp="
                polling = {"Cookie": desk.cookie, "HX-Request": "true"}
                status, _body, stamp = await client.request_with_header(
                    "GET", live_view, STAMP_HEADER, headers=polling
                )
                assert status == 200 and stamp, status

                async def poll_unchanged(_index: int) -> None:
                    response = await client.request("GET", live_view + stamp, headers=polling)
                    assert response[0] == 204, response

                async def poll_changed(_index: int) -> None:
                    response = await client.request("GET", live_view, headers=polling)
                    assert response[0] == 200, response

                await _measure("calendar poll, unchanged (204)", poll_unchanged, profile)
                await _measure("calendar poll, changed (the grid)", poll_changed, profile)
            if "booking" in which:
                posts = Clients.of_wide(wide).take(20 + REQUESTS)
                policy = msgspec.json.decode((await client.request("GET", "/api/v1/policy"))[1])
                consent = msgspec.json.encode(
                    {"policy_version": policy["version"], "purposes": policy["purposes"]}
                )
                for _kind, _verb, _path, auth, _cookie, _body in posts:
                    answer = await client.request(
                        "POST", "/api/v1/me/consent", consent,
                        headers={"Authorization": auth, "Content-Type": "application/json"},
                    )  # fmt: skip
                    assert answer[0] == 201, answer
                path = f"/api/v1/businesses/{wide.slug}/bookings"

                async def book(index: int) -> None:
                    _kind, _verb, _path, auth, _cookie, body = posts[index]
                    response = await client.request(
                        "POST", path, body.encode(),
                        headers={"Authorization": auth, "Content-Type": "application/json"},
                    )  # fmt: skip
                    assert response[0] == 201, response

                await _measure("booking", book, profile)
            if "platform" in which:  # the platform's reads, spread over its businesses
                from bench.__main__ import _spread
                from bench.platform import create_platform

                shops = await create_platform(db.owner, SECRET_KEY)
                for kind, lines in _spread(shops).items():
                    if kind == "bare":
                        continue

                    async def read(index: int, lines: list[Line] = lines) -> None:
                        _kind, verb, target, _auth, cookie, _body = lines[index % len(lines)]
                        response = await client.request(verb, target, headers={"Cookie": cookie})
                        assert response[0] == 200, response

                    await _measure(f"platform {kind}", read, profile)
        if "bare" in which:
            from app.db.urls import to_libpq
            from bench import baseline_app

            await fixtures.create_bare_tables(db.owner)
            os.environ["BENCH_BASELINE_DSN"] = to_libpq(db.owner)
            bare = baseline_app.create_app()
            async with bare.lifespan():
                client = Asgi(bare)

                async def get_bare(_index: int) -> None:
                    response = await client.request("GET", "/page")
                    assert response[0] == 200, response

                async def post_bare(_index: int) -> None:
                    response = await client.request("POST", "/insert")
                    assert response[0] == 201, response

                bare_day = f"/calendar?business={desk.business_id}&day={desk.day}"

                async def get_bare_calendar(_index: int) -> None:
                    response = await client.request("GET", bare_day)
                    assert response[0] == 200, response

                await _measure("bare page", get_bare, profile)
                await _measure("bare calendar-shaped page", get_bare_calendar, profile)
                await _measure("bare insert", post_bare, profile)
    finally:
        await db.close()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    everything = ["availability", "page", "calendar", "poll", "booking", "platform", "bare"]
    asyncio.run(main(args or everything, "--cprofile" in sys.argv))
