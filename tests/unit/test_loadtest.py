"""The pure parts of ``make loadtest`` (bench/loadtest.py): the request file, its Lua reader
run by a real wrk against a loopback server (a booking line is sent at most once, every 201
body is kept), and the parsing of what wrk prints."""

from __future__ import annotations

import json
import random
import shutil
import socket
import threading
import time
from collections import Counter
from datetime import date
from typing import Any

import pytest
import uvicorn

from bench import loadtest
from bench.platform import Platform, Shop


def _platform(shops: int = 5) -> Platform:
    made = [
        Shop(business_id=n, slug=f"shop-{n}", service_ids=[10 * n + k for k in range(8)],
             staff_ids=[100 * n + k for k in range(10)], cookie=f"pz_dash=token{n}")
        for n in range(1, shops + 1)
    ]  # fmt: skip
    return Platform(shops=made, today=date(2026, 1, 10), day=date(2026, 1, 12), bookings=0)


def _bookers(count: int) -> list[loadtest.Booker]:
    return [
        loadtest.Booker(
            telegram_id=n, auth=f"tma user={n}&hash=x", slug=f"shop-{n % 5 + 1}",
            body=json.dumps({"service_id": 1, "staff_id": 2, "start": f"slot-{n}"}),
        )
        for n in range(count)
    ]  # fmt: skip


def test_a_request_line_reads_back_as_written_and_refuses_a_tab() -> None:
    line = loadtest.request_line("book", "POST", "/api/v1/businesses/s/bookings",
                                 auth="tma a=b", body='{"x": 1}')  # fmt: skip
    assert loadtest.parse_line(line) == (
        "book", "POST", "/api/v1/businesses/s/bookings",
        {"Authorization": "tma a=b", "Content-Type": "application/json"}, '{"x": 1}',
    )  # fmt: skip
    calendar = loadtest.request_line("calendar", "GET", "/dashboard/calendar", cookie="c=1")
    assert loadtest.parse_line(calendar)[3] == {"Cookie": "c=1"}
    with pytest.raises(ValueError, match="tab"):
        loadtest.request_line("page", "GET", "/a\tb")


def test_the_mix_holds_every_booking_once_among_reads_of_every_business() -> None:
    platform = _platform()
    bookers = _bookers(100)
    lines = loadtest.mixed_lines(platform, bookers, 1000, random.Random(7))
    assert len(lines) == 1000
    kinds = Counter(line.split("\t")[0] for line in lines)
    assert kinds["book"] == 100
    assert sorted(line.split("\t")[5] for line in lines if line.startswith("book\t")) == sorted(
        b.body for b in bookers
    )
    # the reads come in the mix's proportions (600:200:100 of 900, give or take chance)
    assert 540 <= kinds["availability"] <= 660 and 160 <= kinds["page"] <= 240
    assert 70 <= kinds["calendar"] <= 130
    paths = [line.split("\t")[2] for line in lines]
    assert {s.slug for s in platform.shops} == {
        p.split("/")[4] for p in paths if p.startswith("/api/v1/businesses/")
    }
    # a calendar carries its own business owner's session
    for line in lines:
        if line.startswith("calendar\t"):
            assert line.split("\t")[4].startswith("pz_dash=token")


def test_the_clients_free_slots_are_distinct_and_inside_the_default_horizon() -> None:
    from datetime import timedelta

    platform = _platform()
    clients = loadtest.Clients(platform, bot_token="1:x")
    taken = clients.take(300)
    starts = [(b.slug, json.loads(b.body)["staff_id"], json.loads(b.body)["start"]) for b in taken]
    assert len(set(starts)) == 300
    assert len({b.telegram_id for b in taken}) == 300
    last = platform.today + timedelta(days=58)  # the seed keeps the app's 60-day horizon
    assert all(json.loads(b.body)["start"][:10] <= last.isoformat() for b in taken)


WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:1
LOADTEST_RESULT requests=120 duration_us=1002000 status=7 connect=0 read=1 write=0 timeout=2 p50_us=1500 p99_us=25000 max_us=31000
LOADTEST_STATUS 200=100 201=13 503=7
LOADTEST_PASSES 2
LOADTEST_BOOKED 15
LOADTEST_5XX_BY_SECOND 1700000003=5 1700000004=2
LOADTEST_SAMPLE 503 {"error":"unavailable"}
"""


def test_wrk_output_is_read_into_a_result() -> None:
    result = loadtest.parse_wrk(WRK_OUTPUT, connections=50)
    assert (result.requests, result.p50_ms, result.p99_ms, result.max_ms) == (120, 1.5, 25, 31)
    assert result.statuses == {200: 100, 201: 13, 503: 7}
    assert result.socket_errors == {"connect": 0, "read": 1, "write": 0, "timeout": 2}
    assert (result.passes, result.bookings_sent, result.server_errors) == (2, 15, 0)
    assert result.failed_between(1700000003.5) == (-0.5, 1.5)
    assert result.sample.startswith("503")


def test_kept_bodies_skip_a_line_cut_short() -> None:
    text = '{"id": 1, "start": "a"}\n{"id": 2, "start": "b"}\n{"id": 3, "sta\n'
    assert [b["id"] for b in loadtest.parse_acknowledged(text)] == [1, 2]


class _Echo:
    """Answers a POST with 201 and a body naming it, anything else 200; records the POSTs."""

    def __init__(self) -> None:
        self.posts: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, answer = 200, b"ok"
        if scope["method"] == "POST":
            self.posts.append(body.decode())
            status = 201
            answer = json.dumps(
                {"id": len(self.posts), "start": json.loads(body)["start"]}
            ).encode()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": answer})


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (make test installs it)"
)
def test_wrk_sends_each_booking_line_at_most_once_and_keeps_every_201() -> None:
    app = _Echo()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off", access_log=False))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10  # only catches a server that never starts
    while not server.started:
        assert time.monotonic() < deadline, "echo server did not start"
        time.sleep(0.01)
    try:
        # far fewer lines than a second of load: the file is read many times over
        lines = loadtest.mixed_lines(_platform(), _bookers(20), 60, random.Random(3))
        result = loadtest.run_lines(f"http://127.0.0.1:{port}", lines, 1, 4, shutil.which("wrk"))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert result.passes > 1, "the reads went round again"
    assert sorted(app.posts) == sorted(b.body for b in _bookers(20)), "each booking sent once"
    assert result.bookings_sent == 20 == result.count(201)
    assert sorted(b["id"] for b in result.acknowledged) == list(range(1, 21))
