"""What a booking costs the database alone: its two statements, with no web framework around.

The HTTP booking request is ``pz_booking_context`` (who, consent, the day's schedule: only the
fresh part of it, once the worker holds the rest, as here) and then
``pz_booking_insert`` (client card, booking, notifications, audit entry), with the app's Python
in between. Here the same two statements run back to back from ``connections`` asyncpg
connections as the app role, with every insert planned beforehand by the app's own planner
(``app.domain.bookings.plan_booking``) for its own free slot, so the figure is the database's
ceiling for exactly the app's work: no HTTP server, no JSON API, no slot engine in the timed
loop. Compared with the bare constrained INSERT it shows how much of the gap is the work a
booking must do (its rows, indexes and audit chain) rather than the app's overhead.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from app.db.urls import to_libpq
from app.domain import bookings
from app.domain.audit import Actor
from app.domain.availability_reader import AvailabilityReader, build_query
from app.domain.consent import REQUIRED_PURPOSES
from bench import fixtures

_BOOKING_CONTEXT = "SELECT pz_booking_context($1, $2, NULL, $3, $4, $5, NULL, $6, $7, $8, $9)::text"
_INSERT = "SELECT pz_booking_insert($1::jsonb)::text"


async def _people(owner: asyncpg.Connection, count: int, first_telegram_id: int) -> list[Any]:
    """``count`` accounts that consented to the current policy, made directly (not timed)."""
    rows = await owner.fetch(
        "INSERT INTO accounts (telegram_id, name, locale, allows_write_to_pm) "
        "SELECT $1::bigint + i, 'Клиент ' || i, 'ru', true FROM generate_series(0, $2::int - 1) i "
        "RETURNING id, telegram_id",
        first_telegram_id, count,
    )  # fmt: skip
    await owner.execute(
        "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
        "SELECT a, (SELECT version FROM policy_versions WHERE effective_at <= current_date "
        "ORDER BY effective_at DESC LIMIT 1), $2, 'granted', 'api' FROM unnest($1::bigint[]) a",
        [r["id"] for r in rows], sorted(REQUIRED_PURPOSES),
    )  # fmt: skip
    return rows


async def run(
    db: fixtures.BenchDatabase,
    wide: fixtures.Wide,
    first_slot: int,
    *,
    seconds: float,
    connections: int,
    expected_rps: float,
) -> dict[str, float]:
    count = min(int(max(expected_rps, 200.0) * seconds * 3) + 500, wide.slots - first_slot)
    owner = await asyncpg.connect(to_libpq(db.owner))
    try:
        people = await _people(owner, count, 9 * 10**11 + first_slot)
    finally:
        await owner.close()
    pool = await asyncpg.create_pool(to_libpq(db.app), min_size=connections, max_size=connections)
    try:
        reader = AvailabilityReader(size=wide.slots)  # the worker's copies, as the app keeps them
        now = datetime.now(UTC)
        work: list[tuple[int, int, datetime, str, int, list[int] | None]] = []
        for offset, person in enumerate(people):
            staff_id, start = wide.slot(first_slot + offset)
            day = start.date()
            key = (wide.slug, wide.service_id, staff_id, day, day)
            context = await reader.read(pool, *key)
            assert context is not None and context.service is not None
            assert context.schedule is not None
            offers = context.offer_map()
            query = build_query(
                context.business, context.service, offers, context.schedule, [staff_id], day,
                day, now,
            )  # fmt: skip
            plan = bookings.plan_booking(
                context.business, context.service, offers, query, [staff_id],
                bookings.BookingRequest(service_id=wide.service_id, staff_id=staff_id,
                                        start=start, source="api"),
                person=bookings.Person(person["id"], "ru", f"Клиент {offset}", None),
                actor=Actor(kind="client", account_id=person["id"], ip="127.0.0.1"), now=now,
            )  # fmt: skip
            payload = msgspec.json.encode(plan.payload).decode()
            work.append((person["telegram_id"], staff_id, start, payload, *reader.held(key)))

        required = sorted(REQUIRED_PURPOSES)
        today = now.date()
        done = 0
        errors = 0
        first_error = ""
        position = 0
        deadline = 0.0

        async def worker() -> None:
            nonlocal done, errors, position, first_error
            async with pool.acquire() as connection:
                while time.perf_counter() < deadline and position < len(work):
                    telegram_id, staff_id, start, payload, version, held = work[position]
                    position += 1
                    try:
                        await connection.fetchval(
                            _BOOKING_CONTEXT, wide.slug, telegram_id, wide.service_id,
                            staff_id, start, today, required, version, held,
                        )  # fmt: skip
                        await connection.fetchval(_INSERT, payload)
                        done += 1
                    except asyncpg.PostgresError as exc:
                        first_error = first_error or repr(exc)
                        errors += 1

        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    if errors:
        print(f"  booking floor: {errors} errors, the first: {first_error}", flush=True)
    return {
        "rps": done / elapsed,
        "bookings": done,
        "errors": errors,
        "used_up": float(position >= len(work)),
    }
