"""Bare baselines for the HTTP benchmark: what Litestar + asyncpg + Jinja cost with nothing else.

Run by ``python -m bench`` under uvicorn (``bench.baseline_app:create_app --factory``) with
``BENCH_BASELINE_DSN`` naming a database that holds the two tables ``bench/fixtures.py`` makes:

* ``GET /plain`` — a plain-text response, no database;
* ``GET /page`` — asyncpg ``SELECT`` of 20 rows rendered by a Jinja template with a loop;
  ``GET /page?business=<id>`` the same on the platform's data (``bench/platform.py``): that
  business's 8 services and 10 masters, 18 rows, in one statement;
* ``POST /insert`` — one INSERT into a table with a gist exclusion constraint
  (``int8range(resource_id, resource_id, '[]') WITH =, period WITH &&``), in its own
  transaction. Each request books a range no other request overlaps: the resource is this
  worker's pid and the period the next hour of a per-process counter;
* ``POST /insert-audited`` — the same INSERT plus what issue 2 requires of every booking change
  in the same transaction: an outbox row and an entry on the hash-chained audit log (the app's
  ``audit_append``, with its per-chain advisory lock), in one statement. Booking creation does
  this and more (consent, client card, cap, idempotency, schedule check), so this is the least
  a booking can cost with no app around it. ``?business=<id>`` appends to that business's
  audit chain instead of the platform's (the per-chain lock then spreads as the app's does);
* ``GET /calendar?business=&day=`` — a calendar-shaped page with nothing else: the day's
  masters and bookings (with client names) in two asyncpg statements, drawn by a Jinja
  template as the dashboard's day grid (a column per master, a row per quarter hour from 09:00
  to 21:00, a block per booking, the lunch break and each booking's buffer shaded, an empty
  cell's link elsewhere: as many links as the app draws that day) — no session, no schedule
  read (the break is the fixture's), no translation, no row-level security. Issue 14's target
  is against ``/page``; this one tells how much of the gap is the page's size and how much the
  app's work.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from litestar import Litestar, MediaType, Response, get, post
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

TEMPLATES = Path(__file__).parent / "templates"
# 10 per worker is plenty for one short statement per request. The app and this server run
# side by side on a PostgreSQL that may be shared (max_connections 100 by default; the app
# alone may open 2 x (10 + 10 overflow)), so hold no connection while idle.
POOL_MIN = 0
POOL_MAX = 10
POOL_IDLE_S = 1.0

_SELECT = "SELECT id, name, minutes, price FROM bench_items ORDER BY id LIMIT 20"
_INSERT = (
    "INSERT INTO bench_slots (resource_id, period) VALUES ($1, tstzrange($2, $3, '[)')) "
    "RETURNING id"
)
_INSERT_AUDITED = "SELECT bench_insert_audited($1, $2, $3, $4)"
_BUSINESS_PAGE = (
    "(SELECT id, name ->> 'ru' AS name, duration_min AS minutes, price_tiyn / 100 AS price "
    "FROM services WHERE business_id = $1 ORDER BY sort_order) UNION ALL "
    "(SELECT id, name, 0, 0 FROM staff WHERE business_id = $1 ORDER BY sort_order) LIMIT 20"
)
_SPREAD = 1_000_000  # resource ids of a business: business_id * _SPREAD + pid
_STAFF = (
    "SELECT id, name FROM staff WHERE business_id = $1 AND archived_at IS NULL "
    "ORDER BY sort_order, id"
)
_DAY = (
    "SELECT b.id, b.staff_id, b.status, lower(b.period) AS start, upper(b.period) AS end, "
    "upper(b.blocked_period) AS busy_until, b.service_name ->> 'ru' AS service, "
    "c.name AS client FROM bookings b "
    "LEFT JOIN clients c ON c.id = b.client_id WHERE b.business_id = $1 "
    "AND b.status <> 'cancelled' AND b.period && tstzrange($2, $3) ORDER BY lower(b.period)"
)
_ZONE = ZoneInfo("Asia/Almaty")
_STEP = timedelta(minutes=15)
_FIRST_HOUR, _LAST_HOUR = 9, 21
_LUNCH = range(16, 20)  # the rows of 13:00-14:00, the calendar business's break
_EPOCH = datetime(2030, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)


def create_app() -> Litestar:
    dsn = os.environ["BENCH_BASELINE_DSN"]
    state: dict[str, Any] = {}
    counter = itertools.count()

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(
            dsn, min_size=POOL_MIN, max_size=POOL_MAX, max_inactive_connection_lifetime=POOL_IDLE_S
        )
        state["resource"] = os.getpid()
        try:
            yield
        finally:
            await state["pool"].close()

    @get("/plain", media_type=MediaType.TEXT, sync_to_thread=False)
    def plain() -> str:
        return "Hello, World!"

    @get("/page")
    async def page(business: int | None = None) -> Template:
        if business is None:
            rows = await state["pool"].fetch(_SELECT)
        else:
            rows = await state["pool"].fetch(_BUSINESS_PAGE, business)
        return Template("bare_page.html", context={"title": "Bare page", "items": rows})

    @get("/calendar")
    async def day_calendar(business: int, day: date) -> Template:
        begin = datetime.combine(day, time(_FIRST_HOUR), tzinfo=_ZONE)
        rows = (_LAST_HOUR - _FIRST_HOUR) * 4
        async with state["pool"].acquire() as conn:
            masters = await conn.fetch(_STAFF, business)
            found = await conn.fetch(_DAY, business, begin, begin + rows * _STEP)
        # a row holds (rowspan, booking), "off" (the break, a buffer after a booking), None
        # (under a booking's rowspan) or nothing (an empty time: a link to book it), so the
        # page draws as many links as the app's grid of the same day
        columns: dict[int, dict[int, Any]] = {
            m["id"]: dict.fromkeys(_LUNCH, "off") for m in masters
        }
        for b in found:
            first = max(0, (b["start"] - begin) // _STEP)
            last = min(rows, -((begin - b["end"]) // _STEP))
            column = columns[b["staff_id"]]
            column[first] = (max(1, last - first), b)
            for covered in range(first + 1, last):
                column[covered] = None
            for buffer in range(last, min(rows, -((begin - b["busy_until"]) // _STEP))):
                column.setdefault(buffer, "off")
        times = [(begin + i * _STEP).astimezone(_ZONE) for i in range(rows)]
        return Template("bare_calendar.html", context={
            "day": day, "masters": masters, "columns": columns, "times": times,
        })  # fmt: skip

    @post("/insert", status_code=201)
    async def insert() -> Response[dict[str, int]]:
        start = _EPOCH + next(counter) * _HOUR
        async with state["pool"].acquire() as conn, conn.transaction():
            new_id = await conn.fetchval(_INSERT, state["resource"], start, start + _HOUR)
        return Response({"id": new_id}, status_code=201)

    @post("/insert-audited", status_code=201)
    async def insert_audited(business: int | None = None) -> Response[dict[str, int]]:
        start = _EPOCH + next(counter) * _HOUR
        resource = state["resource"] + (business or 0) * _SPREAD
        new_id = await state["pool"].fetchval(
            _INSERT_AUDITED, resource, start, start + _HOUR, business
        )
        return Response({"id": new_id}, status_code=201)

    return Litestar(
        route_handlers=[plain, page, day_calendar, insert, insert_audited],
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        lifespan=[lifespan],
        openapi_config=None,
        debug=False,
    )
