"""The unconfirmed-booking expiry (issue 13 item 6): a booking a manual-confirm business leaves
pending past its time to live is cancelled by the worker's job — as the worker role, through
the one cancel path — and its client is told; nothing else is touched, and two runs (or two
workers at once) tell the client once."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, confirm_booking_in, create_booking_in
from app.models import Account, Booking, Business
from tests.factories import BusinessFixture, create_business, local_start
from tests.workers.conftest import new_account
from tests.workers.provider_stub import ProviderStub
from workers import jobs
from workers.relay import Relay
from workers.runner import cron_jobs

TTL = timedelta(minutes=120)  # the business's pending_ttl_min (the default)


async def setup(owner: AsyncSession) -> tuple[BusinessFixture, Account]:
    async with owner.begin():
        business = await create_business(owner, auto_confirm=False)
        client = await new_account(owner, locale="kk")
    return business, client


async def book(
    owner: AsyncSession, fixture: BusinessFixture, client: Account, start: datetime, now: datetime
) -> int:
    async with owner.begin():
        business = await owner.get(Business, fixture.id)
        assert business is not None
        booking, created = await create_booking_in(
            owner, business,
            BookingRequest(service_id=fixture.service_id, staff_id=fixture.staff_ids[0],
                           start=start),
            account=client, actor=Actor(kind="client", account_id=client.id), now=now,
        )  # fmt: skip
    assert created and booking.status == "pending"
    assert booking.pending_expires_at == now + TTL
    return booking.id


async def state(engine: AsyncEngine, booking_id: int) -> tuple[str, str | None, str | None]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, cancelled_by, cancel_reason FROM bookings WHERE id = :b"),
                {"b": booking_id},
            )
        ).one()
    return row.status, row.cancelled_by, row.cancel_reason


async def queued(engine: AsyncEngine, booking_id: int, event: str) -> list[tuple[int, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT account_id, locale, status FROM notifications "
                "WHERE booking_id = :b AND event = :e ORDER BY account_id"
            ),
            {"b": booking_id, "e": event},
        )
        return [(r.account_id, r.locale, r.status) for r in rows]


async def test_a_pending_booking_past_its_ttl_is_cancelled_and_the_client_told(
    owner: AsyncSession, wowner: AsyncEngine, worker_engine: AsyncEngine
) -> None:
    fixture, client = await setup(owner)
    booked_at = local_start(fixture, days_ahead=4, at=time(9)) - timedelta(days=1)
    overdue = await book(owner, fixture, client, local_start(fixture, 4, time(10)), booked_at)
    waiting = await book(
        owner, fixture, client, local_start(fixture, 4, time(14)), booked_at + timedelta(minutes=1)
    )
    confirmed = await book(owner, fixture, client, local_start(fixture, 4, time(16)), booked_at)
    async with owner.begin():
        business = await owner.get(Business, fixture.id)
        row = await owner.get(Booking, confirmed)
        assert business is not None and row is not None
        await confirm_booking_in(
            owner, business, row, actor=Actor(kind="staff"), now=booked_at + timedelta(minutes=5)
        )

    now = booked_at + TTL + timedelta(seconds=1)
    assert await jobs.expire_bookings(worker_engine, now) >= 1

    assert await state(wowner, overdue) == ("cancelled", "system", "expired")
    assert await queued(wowner, overdue, "booking.expired") == [(client.id, "kk", "pending")]
    # the owner (the business's people) hears of it too; the reminders are withdrawn
    staff = await queued(wowner, overdue, "staff.booking.expired")
    assert [account for account, _, _ in staff] == [fixture.owner_account_id]
    assert {s for _, _, s in await queued(wowner, overdue, "booking.reminder")} == {"cancelled"}
    # a confirmed one and one still within its time are untouched
    assert await state(wowner, confirmed) == ("confirmed", None, None)
    assert await state(wowner, waiting) == ("pending", None, None)
    assert await queued(wowner, waiting, "booking.expired") == []
    # audited as the system's doing
    async with wowner.connect() as conn:
        actions = (
            await conn.execute(
                text(
                    "SELECT action, actor_kind FROM audit_log WHERE entity = 'booking' "
                    "AND entity_id = :b ORDER BY seq"
                ),
                {"b": overdue},
            )
        ).all()
    assert [tuple(a) for a in actions][-1] == ("booking.cancelled", "system")


async def test_running_the_job_twice_or_in_two_workers_tells_the_client_once(
    owner: AsyncSession, wowner: AsyncEngine, worker_engine: AsyncEngine
) -> None:
    fixture, client = await setup(owner)
    booked_at = local_start(fixture, days_ahead=5, at=time(9)) - timedelta(days=1)
    ids = [
        await book(owner, fixture, client, local_start(fixture, 5, time(hour)), booked_at)
        for hour in (9, 11, 14)
    ]
    now = booked_at + TTL + timedelta(minutes=1)
    await asyncio.gather(*(jobs.expire_bookings(worker_engine, now) for _ in range(3)))
    await jobs.expire_bookings(worker_engine, now + timedelta(minutes=1))
    for booking_id in ids:
        assert await state(wowner, booking_id) == ("cancelled", "system", "expired")
        assert len(await queued(wowner, booking_id, "booking.expired")) == 1
        async with wowner.connect() as conn:
            entries = await conn.scalar(
                text(
                    "SELECT count(*) FROM audit_log WHERE entity = 'booking' AND entity_id = :b "
                    "AND action = 'booking.cancelled'"
                ),
                {"b": booking_id},
            )
        assert entries == 1


def test_the_job_runs_every_minute(wsettings) -> None:  # type: ignore[no-untyped-def]
    crons = {job.function.__name__: job.cron for job in cron_jobs(wsettings)}
    assert crons["expire_pending"] == "* * * * *"


async def test_the_client_receives_the_expiry_in_their_language(
    owner: AsyncSession, worker_engine: AsyncEngine, relay: Relay, stub: ProviderStub
) -> None:
    """End to end: the job's message goes out through the relay, in Kazakh, by Telegram."""
    fixture, client = await setup(owner)
    booked_at = local_start(fixture, days_ahead=6, at=time(9)) - timedelta(days=1)
    await book(owner, fixture, client, local_start(fixture, 6, time(10)), booked_at)
    now = booked_at + TTL + timedelta(seconds=30)
    assert await jobs.expire_bookings(worker_engine, now) >= 1
    await relay.drain(clock=lambda: now + timedelta(seconds=1))
    texts = [c.text for c in stub.accepted("telegram") if c.address == str(client.telegram_id)]
    expired = [t for t in texts if "⌛" in t]
    assert len(expired) == 1, texts
    assert "уақытында растамады" in expired[0]  # Kazakh, the client's language
