"""Reminders with a controllable clock: once per reminder time, never for a past or cancelled
booking, caught up after downtime, and kept true to the business's setting."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domain.audit import Actor
from app.domain.bookings import BookingRequest, cancel_booking_in, create_booking_in
from app.models import Account, Booking, Business
from tests.factories import BusinessFixture, create_business, local_start
from tests.workers.conftest import new_account
from tests.workers.provider_stub import ProviderStub
from workers import reminders
from workers.relay import Relay

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
REMINDER_MARK = "⏰"


async def setup(owner: AsyncSession) -> tuple[BusinessFixture, Account]:
    async with owner.begin():
        business = await create_business(owner)
        client = await new_account(owner)
    return business, client


async def book(
    owner: AsyncSession,
    fixture: BusinessFixture,
    client: Account,
    start: datetime,
    *,
    now: datetime,
    master: int = 0,
) -> Booking:
    async with owner.begin():
        business = await owner.get(Business, fixture.id)
        assert business is not None
        booking, created = await create_booking_in(
            owner,
            business,
            BookingRequest(
                service_id=fixture.service_id, staff_id=fixture.staff_ids[master], start=start
            ),
            account=client,
            actor=Actor(kind="client", account_id=client.id),
            now=now,
        )
    assert created
    return booking


def reminders_to(stub: ProviderStub, client: Account) -> int:
    return sum(
        1
        for call in stub.accepted("telegram")
        if call.address == str(client.telegram_id) and REMINDER_MARK in call.text
    )


async def reminder_rows(engine: AsyncEngine, booking_id: int) -> list[tuple[str, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT status, last_error FROM notifications WHERE booking_id = :b "
                "AND event = 'booking.reminder' ORDER BY scheduled_at"
            ),
            {"b": booking_id},
        )
        return [(r.status, r.last_error) for r in rows]


async def test_24h_and_2h_reminders_fire_once_each(
    relay: Relay, owner: AsyncSession, wowner: AsyncEngine, stub: ProviderStub
) -> None:
    fixture, client = await setup(owner)
    start = local_start(fixture, days_ahead=5, at=time(16))
    booking = await book(owner, fixture, client, start, now=start - 3 * DAY)
    assert len(await reminder_rows(wowner, booking.id)) == 2

    for moment, expected in [
        (start - 25 * HOUR, 0),
        (start - 24 * HOUR + timedelta(minutes=1), 1),
        (start - 24 * HOUR + timedelta(minutes=2), 1),  # a second pass sends nothing again
        (start - 3 * HOUR, 1),
        (start - 2 * HOUR + timedelta(seconds=5), 2),
        (start - 30 * timedelta(minutes=1), 2),
        (start + HOUR, 2),
    ]:
        await relay.drain(clock=lambda m=moment: m)
        assert reminders_to(stub, client) == expected, moment
    assert await reminder_rows(wowner, booking.id) == [("sent", None), ("sent", None)]


async def test_a_booking_cancelled_before_its_reminders_gets_none(
    relay: Relay, owner: AsyncSession, wowner: AsyncEngine, stub: ProviderStub
) -> None:
    fixture, client = await setup(owner)
    start = local_start(fixture, days_ahead=5, at=time(11))
    booking = await book(owner, fixture, client, start, now=start - 3 * DAY)
    async with owner.begin():
        business = await owner.get(Business, fixture.id)
        live = await owner.get(Booking, booking.id)
        assert business is not None and live is not None
        await cancel_booking_in(
            owner, business, live, by="client", actor=Actor(kind="client", account_id=client.id),
            now=start - 30 * HOUR,
        )  # fmt: skip
    for moment in (start - 24 * HOUR, start - 2 * HOUR, start - HOUR):
        await relay.drain(clock=lambda m=moment: m)
    assert reminders_to(stub, client) == 0
    assert [status for status, _ in await reminder_rows(wowner, booking.id)] == ["cancelled"] * 2


async def test_the_booking_is_checked_again_when_the_reminder_is_due(
    relay: Relay, owner: AsyncSession, wowner: AsyncEngine, stub: ProviderStub
) -> None:
    """Even if a path forgot to withdraw the reminders, a cancelled booking gets none."""
    fixture, client = await setup(owner)
    start = local_start(fixture, days_ahead=5, at=time(12))
    booking = await book(owner, fixture, client, start, now=start - 3 * DAY)
    async with owner.begin():
        await owner.execute(
            text("UPDATE bookings SET status = 'cancelled' WHERE id = :id"), {"id": booking.id}
        )
    await relay.drain(clock=lambda: start - HOUR)
    assert reminders_to(stub, client) == 0
    assert await reminder_rows(wowner, booking.id) == [
        ("cancelled", "booking cancelled"),
        ("cancelled", "booking cancelled"),
    ]


async def test_a_worker_down_for_3_hours_catches_up_without_reminding_past_bookings(
    relay: Relay, owner: AsyncSession, wowner: AsyncEngine, stub: ProviderStub
) -> None:
    fixture, client = await setup(owner)
    day = local_start(fixture, days_ahead=6, at=time(0))
    started_during_downtime = day.replace(hour=14, minute=30)  # its 2 h reminder: 12:30
    still_ahead = day.replace(hour=16)  # its 2 h reminder: 14:00
    p = await book(owner, fixture, client, started_during_downtime, now=day - 3 * DAY)
    f = await book(owner, fixture, client, still_ahead, now=day - 3 * DAY, master=1)

    await relay.drain(clock=lambda: still_ahead - 24 * HOUR + timedelta(minutes=1))
    assert reminders_to(stub, client) == 2  # both 24 h reminders, on time
    await relay.drain(clock=lambda: day.replace(hour=12))  # the last run before the outage
    assert reminders_to(stub, client) == 2

    await relay.drain(clock=lambda: day.replace(hour=15))  # back after 3 hours
    assert reminders_to(stub, client) == 3  # only the booking still ahead is reminded
    assert await reminder_rows(wowner, p.id) == [
        ("sent", None),
        ("cancelled", "booking already started"),
    ]
    assert await reminder_rows(wowner, f.id) == [("sent", None), ("sent", None)]


async def test_after_a_long_outage_only_the_latest_due_reminder_is_sent(
    relay: Relay, owner: AsyncSession, wowner: AsyncEngine, stub: ProviderStub
) -> None:
    fixture, client = await setup(owner)
    start = local_start(fixture, days_ahead=5, at=time(17))
    booking = await book(owner, fixture, client, start, now=start - 3 * DAY)
    await relay.drain(clock=lambda: start - HOUR)  # down from before the 24 h mark until now
    assert reminders_to(stub, client) == 1
    assert await reminder_rows(wowner, booking.id) == [
        ("cancelled", "superseded by a later reminder"),
        ("sent", None),
    ]


async def test_sweep_restores_missing_reminders_and_follows_the_business_setting(
    owner: AsyncSession, wowner: AsyncEngine, worker_engine: AsyncEngine
) -> None:
    fixture, client = await setup(owner)
    start = local_start(fixture, days_ahead=5, at=time(10))
    booking = await book(owner, fixture, client, start, now=start - 3 * DAY)

    # rows the booking wrote carry the same key the sweep would write: nothing to add
    result = await reminders.sweep(worker_engine, start - 2 * HOUR - timedelta(minutes=30))
    assert result.scheduled == 0

    async with wowner.begin() as conn:
        await conn.execute(
            text("DELETE FROM notifications WHERE booking_id = :b AND event = 'booking.reminder'"),
            {"b": booking.id},
        )
    result = await reminders.sweep(worker_engine, start - 2 * HOUR - timedelta(minutes=30))
    assert result.scheduled == 1  # the 2 h one (the 24 h one is in the past by now)
    again = await reminders.sweep(worker_engine, start - 2 * HOUR - timedelta(minutes=20))
    assert again.scheduled == 0

    async with wowner.begin() as conn:
        await conn.execute(
            text("UPDATE businesses SET reminder_offsets_min = '{180}' WHERE id = :id"),
            {"id": fixture.id},
        )
    result = await reminders.sweep(worker_engine, start - 3 * HOUR - timedelta(minutes=30))
    assert (result.scheduled, result.withdrawn) == (1, 1)
    rows = await reminder_rows(wowner, booking.id)
    assert sorted(status for status, _ in rows) == ["cancelled", "pending"]
