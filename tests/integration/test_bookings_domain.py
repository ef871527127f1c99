"""The booking life cycle through ``app.domain.bookings``, as the runtime role under RLS.

Each change must write, in the same transaction, one audit entry and the outbox rows: the
client, the booked master's account and every owner/admin who wants booking notices; reminders
24 h and 2 h ahead only when those moments are still in the future.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import set_context
from app.domain import access, bookings, outbox
from app.domain.audit import Actor
from app.domain.errors import NotFound, SlotTaken, ValidationFailed
from app.models import Account, Booking, Business, Membership, Staff
from tests.factories import BusinessFixture, create_business, local_start, next_telegram_id

DAY = timedelta(days=1)


@pytest.fixture
async def owner_db(owner_engine: Any) -> Any:
    """A session as the tables' owner that may commit (arrange) and then keep reading."""
    async with AsyncSession(owner_engine, expire_on_commit=False) as session:
        yield session
        await session.rollback()


@dataclass
class World:
    business: BusinessFixture
    client: int  # account ids
    other_client: int
    master: int  # the account of the first master (staff.account_id)
    quiet_admin: int  # an admin who turned booking notices off
    second_master: int  # a member linked to the second master only

    @property
    def id(self) -> int:
        return self.business.id

    @property
    def owner(self) -> int:
        assert self.business.owner_account_id is not None
        return self.business.owner_account_id


async def make_world(owner_db: AsyncSession, **kwargs: Any) -> World:
    business = await create_business(owner_db, **kwargs)
    people = [
        Account(name=name, telegram_id=next_telegram_id(), locale=locale)
        for name, locale in (("Client", "kk"), ("Other", "ru"), ("Master", "ru"),
                             ("Admin", "en"), ("Master 2", "ru"))
    ]  # fmt: skip
    owner_db.add_all(people)
    await owner_db.flush()
    client, other, master, admin, second = (p.id for p in people)
    await owner_db.execute(
        update(Staff).where(Staff.id == business.staff_ids[0]).values(account_id=master)
    )
    owner_db.add_all(
        [
            Membership(
                business_id=business.id, account_id=admin, role="admin", notify_bookings=False
            ),
            Membership(
                business_id=business.id,
                account_id=second,
                role="master",
                staff_id=business.staff_ids[1],
            ),
        ]
    )
    await owner_db.commit()
    return World(business, client, other, master, admin, second)


def actor_for(account_id: int | None, kind: str = "client") -> Actor:
    return Actor(kind=kind, account_id=account_id, ip="192.0.2.7", user_agent="pytest")


async def _business(session: AsyncSession, business_id: int) -> Business:
    return (await session.execute(select(Business).where(Business.id == business_id))).scalar_one()


async def create(
    db: Any,
    world: World,
    start: datetime,
    *,
    account_id: int | None,
    staff_id: int | None = None,
    now: datetime | None = None,
) -> int:
    async with db.transaction(business_id=world.id, account_id=account_id) as session:
        account = await session.get(Account, account_id) if account_id else None
        booking, created = await bookings.create_booking_in(
            session,
            await _business(session, world.id),
            bookings.BookingRequest(
                service_id=world.business.service_id, staff_id=staff_id, start=start,
                client_name=None if account else "Walk-in",
            ),
            account=account, actor=actor_for(account_id), now=now,
        )  # fmt: skip
        assert created
        return booking.id


async def change(db: Any, world: World, booking_id: int, action: str, **kwargs: Any) -> Booking:
    """Run one life-cycle function on a booking in its own transaction."""
    async with db.transaction(business_id=world.id) as session:
        business = await _business(session, world.id)
        booking = await access.get_booking(session, booking_id)
        if action == "reschedule":
            account_id = booking.account_id
            if account_id:  # an account is read only acting for it (row-level security)
                await set_context(session, account_id=account_id)
            account = await session.get(Account, account_id) if account_id else None
            kwargs.setdefault("account", account)
        function = {
            "confirm": bookings.confirm_booking_in,
            "cancel": bookings.cancel_booking_in,
            "attendance": bookings.mark_attendance_in,
            "reschedule": bookings.reschedule_booking_in,
        }[action]
        kwargs.setdefault("actor", actor_for(booking.account_id))
        return await function(session, business, booking, **kwargs)


async def row(owner_db: AsyncSession, booking_id: int) -> Any:
    return (
        await owner_db.execute(
            text(
                "SELECT id, status, staff_id, account_id, lower(period) AS s, upper(period) AS e, "
                "lower(blocked_period) AS bs, upper(blocked_period) AS be, pending_expires_at, "
                "cancelled_by, cancel_reason, rescheduled_from_id, updated_at "
                "FROM bookings WHERE id = :i"
            ),
            {"i": booking_id},
        )
    ).one_or_none()


async def audit_actions(owner_db: AsyncSession, world: World, booking_id: int) -> Counter[str]:
    rows = await owner_db.execute(
        text(
            "SELECT action FROM audit_log WHERE chain_key = :b AND entity = 'booking' "
            "AND entity_id = :i"
        ),
        {"b": world.id, "i": booking_id},
    )
    return Counter(r.action for r in rows)


async def audit_total(owner_db: AsyncSession, world: World) -> int:
    return int(
        await owner_db.scalar(
            text("SELECT count(*) FROM audit_log WHERE chain_key = :b"), {"b": world.id}
        )
    )


async def notes(owner_db: AsyncSession, booking_id: int) -> set[tuple[str, int, datetime, str]]:
    """(event, recipient account, scheduled_at, status) of every message about a booking."""
    rows = await owner_db.execute(
        text(
            "SELECT event, account_id, scheduled_at, status FROM notifications "
            "WHERE booking_id = :i"
        ),
        {"i": booking_id},
    )
    found = [(r.event, r.account_id, r.scheduled_at, r.status) for r in rows]
    assert len(found) == len(set(found)), found  # nothing queued twice
    return set(found)


def announced(world: World, event: str, at: datetime, *, client: bool = True) -> set[Any]:
    """What one event queues: the client (when known), the master's account, the owner."""
    expected = {(f"staff.{event}", world.master, at, "pending"),
                (f"staff.{event}", world.owner, at, "pending")}  # fmt: skip
    if client:
        expected.add((event, world.client, at, "pending"))
    return expected


def reminders(world: World, start: datetime, status: str = "pending", *hours: int) -> set[Any]:
    return {
        ("booking.reminder", world.client, start - timedelta(hours=h), status)
        for h in (hours or (24, 2))
    }


def visit(world: World, days: int = 5, at: time = time(10)) -> datetime:
    return local_start(world.business, days_ahead=days, at=at).astimezone(UTC)


# ---------------------------------------------------------------- create, confirm


async def test_pending_booking_then_confirmed(db, owner_db):
    world = await make_world(owner_db, auto_confirm=False)
    start = visit(world)
    created_at = start - 3 * DAY
    booking_id = await create(db, world, start, account_id=world.client, now=created_at)

    booking = await row(owner_db, booking_id)
    assert booking.status == "pending"
    assert booking.pending_expires_at == created_at + timedelta(minutes=120)
    assert (booking.s, booking.e) == (start, start + timedelta(minutes=60))
    assert (booking.bs, booking.be) == (start, start + timedelta(minutes=70))
    assert booking.staff_id == world.business.staff_ids[0]  # the first free master
    assert await audit_actions(owner_db, world, booking_id) == {"booking.create": 1}
    # the quiet admin and the other master hear nothing
    assert await notes(owner_db, booking_id) == (
        announced(world, "booking.created", created_at) | reminders(world, start)
    )

    confirmed_at = created_at + timedelta(minutes=30)
    await change(db, world, booking_id, "confirm", now=confirmed_at)
    booking = await row(owner_db, booking_id)
    assert (booking.status, booking.pending_expires_at) == ("confirmed", None)
    assert booking.updated_at == confirmed_at
    assert await audit_actions(owner_db, world, booking_id) == {
        "booking.create": 1,
        "booking.confirmed": 1,
    }
    # confirming queues the notices again but never a second set of reminders
    assert await notes(owner_db, booking_id) == (
        announced(world, "booking.created", created_at)
        | announced(world, "booking.confirmed", confirmed_at)
        | reminders(world, start)
    )

    with pytest.raises(ValidationFailed):
        await change(db, world, booking_id, "confirm", now=confirmed_at)
    assert await audit_actions(owner_db, world, booking_id) == {
        "booking.create": 1,
        "booking.confirmed": 1,
    }


async def test_reminders_only_when_still_ahead(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    first, second = world.business.staff_ids
    five_hours = await create(
        db, world, start, account_id=world.client, staff_id=first, now=start - timedelta(hours=5)
    )
    soon = await create(
        db, world, start, account_id=world.other_client, staff_id=second,
        now=start - timedelta(minutes=90),
    )  # fmt: skip
    walk_in = await create(
        db, world, start + timedelta(hours=4), account_id=None, staff_id=first,
        now=start - 3 * DAY,
    )  # fmt: skip

    assert {n for n in await notes(owner_db, five_hours) if n[0] == "booking.reminder"} == (
        reminders(world, start, "pending", 2)
    )
    assert [n for n in await notes(owner_db, soon) if n[0] == "booking.reminder"] == []
    # a walk-in has no account to remind or tell; the business side still hears of it
    assert await notes(owner_db, walk_in) == announced(
        world, "booking.created", start - 3 * DAY, client=False
    )


# ---------------------------------------------------------------- cancel


async def test_client_cancels_before_the_deadline(db, owner_db):
    world = await make_world(owner_db)  # deadline: 120 min before the visit
    start = visit(world)
    created_at = start - 3 * DAY
    booking_id = await create(db, world, start, account_id=world.client, now=created_at)
    cancelled_at = start - timedelta(minutes=120)  # the last moment it is allowed
    await change(db, world, booking_id, "cancel", by="client", now=cancelled_at)

    booking = await row(owner_db, booking_id)
    assert (booking.status, booking.cancelled_by, booking.cancel_reason) == (
        "cancelled",
        "client",
        None,
    )
    assert await audit_actions(owner_db, world, booking_id) == {
        "booking.create": 1,
        "booking.cancelled": 1,
    }
    assert await notes(owner_db, booking_id) == (
        announced(world, "booking.created", created_at)
        | announced(world, "booking.cancelled", cancelled_at)
        | reminders(world, start, "cancelled")
    )
    # the time is free again for someone else
    again = await create(
        db, world, start, account_id=world.other_client, staff_id=booking.staff_id,
        now=cancelled_at,
    )  # fmt: skip
    assert (await row(owner_db, again)).status == "confirmed"


async def test_client_cannot_cancel_after_the_deadline(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    booking_id = await create(db, world, start, account_id=world.client, now=start - 3 * DAY)
    before = await row(owner_db, booking_id)
    notes_before = await notes(owner_db, booking_id)
    with pytest.raises(ValidationFailed) as refused:
        await change(
            db, world, booking_id, "cancel", by="client", now=start - timedelta(minutes=119)
        )
    assert "2" in refused.value.message  # names the deadline in hours
    assert await row(owner_db, booking_id) == before
    assert await notes(owner_db, booking_id) == notes_before
    assert await audit_actions(owner_db, world, booking_id) == {"booking.create": 1}


async def test_business_cancels_at_any_time_with_a_reason(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    created_at = start - 3 * DAY
    booking_id = await create(db, world, start, account_id=world.client, now=created_at)
    owner_actor = actor_for(world.owner, "staff")
    with pytest.raises(ValidationFailed):
        await change(db, world, booking_id, "cancel", by="business", actor=owner_actor,
                     reason="x" * 501, now=start - timedelta(minutes=10))  # fmt: skip
    cancelled_at = start - timedelta(minutes=10)
    await change(db, world, booking_id, "cancel", by="business", actor=owner_actor,
                 reason="The master is ill", now=cancelled_at)  # fmt: skip
    booking = await row(owner_db, booking_id)
    assert (booking.status, booking.cancelled_by, booking.cancel_reason) == (
        "cancelled",
        "business",
        "The master is ill",
    )
    assert await audit_actions(owner_db, world, booking_id) == {
        "booking.create": 1,
        "booking.cancelled": 1,
    }
    actor = await owner_db.scalar(
        text(
            "SELECT actor_account_id FROM audit_log WHERE chain_key = :b AND entity_id = :i "
            "AND action = 'booking.cancelled'"
        ),
        {"b": world.id, "i": booking_id},
    )
    assert actor == world.owner
    payload = await owner_db.scalar(
        text(
            "SELECT payload FROM notifications WHERE booking_id = :i AND event = 'booking.cancelled'"
        ),
        {"i": booking_id},
    )
    assert payload["by"] == "business"
    # a cancelled booking cannot be cancelled again
    with pytest.raises(ValidationFailed):
        await change(db, world, booking_id, "cancel", by="business", now=cancelled_at)


# ---------------------------------------------------------------- after the visit


async def test_completed_and_no_show_only_after_the_start(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    first, second = world.business.staff_ids
    came = await create(db, world, start, account_id=world.client, staff_id=first,
                        now=start - 3 * DAY)  # fmt: skip
    missed = await create(db, world, start, account_id=world.other_client, staff_id=second,
                          now=start - 3 * DAY)  # fmt: skip
    staff = actor_for(world.master, "staff")
    with pytest.raises(ValidationFailed):
        await change(db, world, came, "attendance", attended=True, actor=staff,
                     now=start - timedelta(minutes=1))  # fmt: skip
    assert (await row(owner_db, came)).status == "confirmed"

    await change(db, world, came, "attendance", attended=True, actor=staff,
                 now=start + timedelta(minutes=5))  # fmt: skip
    await change(db, world, missed, "attendance", attended=False, actor=staff,
                 now=start + timedelta(hours=1))  # fmt: skip
    assert (await row(owner_db, came)).status == "completed"
    assert (await row(owner_db, missed)).status == "no_show"
    assert await audit_actions(owner_db, world, came) == {
        "booking.create": 1,
        "booking.completed": 1,
    }
    assert await audit_actions(owner_db, world, missed) == {
        "booking.create": 1,
        "booking.no_show": 1,
    }
    # reminders not sent by then are withdrawn
    assert {n for n in await notes(owner_db, came) if n[0] == "booking.reminder"} == reminders(
        world, start, "cancelled"
    )
    for booking_id in (came, missed):
        with pytest.raises(ValidationFailed):
            await change(db, world, booking_id, "attendance", attended=True,
                         now=start + timedelta(hours=2))  # fmt: skip
        with pytest.raises(ValidationFailed):
            await change(db, world, booking_id, "cancel", by="business",
                         now=start + timedelta(hours=2))  # fmt: skip


# ---------------------------------------------------------------- reschedule


async def test_reschedule_to_a_free_slot(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    first = world.business.staff_ids[0]
    created_at = start - 3 * DAY
    old_id = await create(db, world, start, account_id=world.client, staff_id=first,
                          now=created_at)  # fmt: skip
    target = start + timedelta(hours=4)  # 14:00 local
    moved_at = created_at + timedelta(hours=1)
    new = await change(db, world, old_id, "reschedule", new_start=target, new_staff_id=None,
                       by="client", now=moved_at)  # fmt: skip

    old, fresh = await row(owner_db, old_id), await row(owner_db, new.id)
    assert new.id != old_id
    assert (old.status, old.cancel_reason, old.cancelled_by) == (
        "cancelled",
        "rescheduled",
        "client",
    )
    assert (old.s, old.e) == (start, start + timedelta(hours=1))  # history is kept as it was
    assert (fresh.status, fresh.staff_id, fresh.account_id) == ("confirmed", first, world.client)
    assert (fresh.s, fresh.e) == (target, target + timedelta(hours=1))
    assert fresh.rescheduled_from_id == old_id
    live = await owner_db.execute(
        text(
            "SELECT id FROM bookings WHERE business_id = :b AND status IN ('pending', 'confirmed')"
        ),
        {"b": world.id},
    )
    assert [r.id for r in live] == [new.id]

    assert await audit_actions(owner_db, world, old_id) == {
        "booking.create": 1,
        "booking.reschedule": 1,
    }
    assert await audit_actions(owner_db, world, new.id) == {"booking.create": 1}
    assert await notes(owner_db, old_id) == (
        announced(world, "booking.created", created_at) | reminders(world, start, "cancelled")
    )
    assert await notes(owner_db, new.id) == (
        announced(world, "booking.rescheduled", moved_at) | reminders(world, target)
    )


async def test_reschedule_to_a_taken_slot_changes_nothing(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    first = world.business.staff_ids[0]
    target = start + timedelta(hours=4)
    mine = await create(db, world, start, account_id=world.client, staff_id=first,
                        now=start - 3 * DAY)  # fmt: skip
    theirs = await create(db, world, target, account_id=world.other_client, staff_id=first,
                          now=start - 3 * DAY)  # fmt: skip
    before = (await row(owner_db, mine), await row(owner_db, theirs))
    notes_before = await notes(owner_db, mine)
    audit_before = await audit_total(owner_db, world)
    count_before = await owner_db.scalar(
        text("SELECT count(*) FROM bookings WHERE business_id = :b"), {"b": world.id}
    )

    async with db.transaction(business_id=world.id) as session:
        business = await _business(session, world.id)
        booking = await access.get_booking(session, mine)
        account = await session.get(Account, world.client)
        for moment in (target, target + timedelta(minutes=30), target - timedelta(minutes=45)):
            with pytest.raises(SlotTaken):
                await bookings.reschedule_booking_in(
                    session, business, booking, new_start=moment, new_staff_id=first,
                    by="client", actor=actor_for(world.client), account=account,
                    now=start - 2 * DAY,
                )  # fmt: skip
        # still inside the same transaction: the old booking is live and untouched
        status = await session.scalar(text("SELECT status FROM bookings WHERE id = :i"),
                                      {"i": mine})  # fmt: skip
        assert status == "confirmed"
    # and after commit nothing at all has changed
    assert (await row(owner_db, mine), await row(owner_db, theirs)) == before
    assert await notes(owner_db, mine) == notes_before
    assert await audit_total(owner_db, world) == audit_before
    assert (
        await owner_db.scalar(
            text("SELECT count(*) FROM bookings WHERE business_id = :b"), {"b": world.id}
        )
        == count_before
    )


async def test_reschedule_by_less_than_its_own_length(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    first, second = world.business.staff_ids
    now = start - 3 * DAY
    booking_id = await create(db, world, start, account_id=world.client, staff_id=first, now=now)
    later = await change(db, world, booking_id, "reschedule", by="client", now=now,
                         new_start=start + timedelta(minutes=30), new_staff_id=None)  # fmt: skip
    earlier = await change(db, world, later.id, "reschedule", by="client", now=now,
                           new_start=start + timedelta(minutes=15), new_staff_id=None)  # fmt: skip
    other_master = await change(db, world, earlier.id, "reschedule", by="business", now=now,
                                new_start=start + timedelta(minutes=15), new_staff_id=second,
                                actor=actor_for(world.owner, "staff"))  # fmt: skip
    final = await row(owner_db, other_master.id)
    assert (final.status, final.staff_id, final.s) == (
        "confirmed",
        second,
        start + timedelta(minutes=15),
    )
    chain = [booking_id, later.id, earlier.id]
    for previous, following in zip(chain, [*chain[1:], other_master.id], strict=True):
        assert (await row(owner_db, following)).rescheduled_from_id == previous
        assert (await row(owner_db, previous)).status == "cancelled"


async def test_client_cannot_move_a_booking_after_the_deadline(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    booking_id = await create(db, world, start, account_id=world.client, now=start - 3 * DAY)
    late = start - timedelta(minutes=30)
    with pytest.raises(ValidationFailed):
        await change(db, world, booking_id, "reschedule", by="client", now=late,
                     new_start=start + timedelta(hours=4), new_staff_id=None)  # fmt: skip
    assert (await row(owner_db, booking_id)).status == "confirmed"
    # the business still may
    moved = await change(db, world, booking_id, "reschedule", by="business", now=late,
                         new_start=start + timedelta(hours=4), new_staff_id=None,
                         actor=actor_for(world.owner, "staff"))  # fmt: skip
    assert (await row(owner_db, moved.id)).status == "confirmed"


# ---------------------------------------------------------------- one transaction


class Boom(Exception):
    pass


async def test_rolled_back_transaction_leaves_no_trace(db, owner_db):
    world = await make_world(owner_db)
    start = visit(world)
    head_before = await owner_db.scalar(
        text("SELECT seq FROM audit_chain_heads WHERE chain_key = :b"), {"b": world.id}
    )
    clients_before = await owner_db.scalar(
        text("SELECT count(*) FROM clients WHERE business_id = :b"), {"b": world.id}
    )
    made: list[int] = []

    async def book_then_fail() -> None:
        async with db.transaction(business_id=world.id, account_id=world.client) as session:
            booking, _ = await bookings.create_booking_in(
                session, await _business(session, world.id),
                bookings.BookingRequest(service_id=world.business.service_id, staff_id=None,
                                        start=start),
                account=await session.get(Account, world.client), actor=actor_for(world.client),
            )  # fmt: skip
            made.append(booking.id)
            # inside the transaction everything is there ...
            assert await session.scalar(
                text("SELECT count(*) FROM notifications WHERE booking_id = :i"), {"i": booking.id}
            )
            raise Boom

    with pytest.raises(Boom):
        await book_then_fail()
    (booking_id,) = made
    # ... and after the rollback nothing is
    assert await row(owner_db, booking_id) is None
    assert await audit_actions(owner_db, world, booking_id) == Counter()
    assert await notes(owner_db, booking_id) == set()
    assert (
        await owner_db.scalar(
            text("SELECT seq FROM audit_chain_heads WHERE chain_key = :b"), {"b": world.id}
        )
        == head_before
    )
    assert (
        await owner_db.scalar(
            text("SELECT count(*) FROM clients WHERE business_id = :b"), {"b": world.id}
        )
        == clients_before
    )
    # the chain goes on without a gap
    kept = await create(db, world, start, account_id=world.client)
    seq = await owner_db.scalar(
        text("SELECT seq FROM audit_log WHERE chain_key = :b AND entity_id = :i"),
        {"b": world.id, "i": kept},
    )
    assert seq == (head_before or 0) + 1


async def test_notification_keys_are_unique_and_enqueue_is_idempotent(db, owner_db):
    world = await make_world(owner_db, auto_confirm=False)
    start = visit(world)
    created_at = start - 3 * DAY
    booking_id = await create(db, world, start, account_id=world.client, now=created_at)
    await change(db, world, booking_id, "confirm", now=created_at + timedelta(minutes=5))
    keys = [
        r.idempotency_key
        for r in await owner_db.execute(
            text("SELECT idempotency_key FROM notifications WHERE booking_id = :i"),
            {"i": booking_id},
        )
    ]
    assert len(keys) == len(set(keys)) == 2 * 3 + 2  # two events × three people + 2 reminders

    message = outbox.Outgoing(
        event="booking.note", scheduled_at=start, account_id=world.client,
        business_id=world.id, booking_id=booking_id,
    )  # fmt: skip
    for _ in range(2):  # a retried transaction, or a second scheduler
        async with db.transaction(business_id=world.id) as session:
            await outbox.enqueue(session, [message, message])
    count = await owner_db.scalar(
        text("SELECT count(*) FROM notifications WHERE booking_id = :b AND event = 'booking.note'"),
        {"b": booking_id},
    )
    assert count == 1


async def test_another_business_cannot_see_or_change_the_booking(db, owner_db):
    world = await make_world(owner_db)
    stranger = await create_business(owner_db)
    await owner_db.commit()
    booking_id = await create(db, world, visit(world), account_id=world.client)
    async with db.transaction(business_id=stranger.id) as session:
        with pytest.raises(NotFound):
            await access.get_booking(session, booking_id)
        changed = await session.execute(
            text("UPDATE bookings SET status = 'cancelled' WHERE id = :i"), {"i": booking_id}
        )
        assert changed.rowcount == 0
    assert (await row(owner_db, booking_id)).status == "confirmed"
