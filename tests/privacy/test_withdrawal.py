"""Withdrawing consent (policy 8.4) stops at once every message not yet sent to the person and
the visits they booked, recorded as a request (8.6); the businesses keep the bookings, cancelled,
with the reason. The race with a worker is in tests/workers/test_withdrawal_race.py."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import outbox, profile
from app.domain.audit import Actor
from app.domain.errors import Unauthorized
from app.domain.privacy import withdraw_consent
from app.models import Booking
from app.settings import Settings
from tests.factories import create_business
from tests.privacy.conftest import Person, book, make_person
from tests.privacy.test_consent_and_requests import grant
from tests.support.dashboard import sign_in_as
from workers.relay import _MARK_RETRY

pytestmark = pytest.mark.policy("8.4")


async def pending_for(owner_session: AsyncSession, person: Person) -> list[tuple[str, str]]:
    """Messages still due to the person: to their account or to one of their addresses."""
    rows = await owner_session.execute(
        text(
            "SELECT event, coalesce(address, '') FROM notifications WHERE status = 'pending' "
            "AND (account_id = :a OR address = ANY(:addresses)) ORDER BY id"
        ),
        {"a": person.id, "addresses": [person.phone, person.email]},
    )
    return [(r[0], r[1]) for r in rows]


async def queue_code(owner_session: AsyncSession, address: str) -> None:
    """A sign-in code waiting for an address (a row with no account, as app.domain.otp writes)."""
    await owner_session.execute(
        text(
            "INSERT INTO notifications (address, event, channel, locale, payload, "
            "idempotency_key, scheduled_at) VALUES (:addr, 'otp.code', 'sms', 'ru', "
            "'{\"code\": \"123456\"}', md5(random()::text), now() + interval '1 minute')"
        ),
        {"addr": address},
    )
    await owner_session.commit()


async def test_withdrawal_stops_every_message_and_cancels_the_visits_it_needed(
    db: Database,
    owner_session: AsyncSession,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    a = await create_business(owner_session)
    b = await create_business(owner_session)
    await owner_session.commit()
    p = await make_person(owner_session)
    q = await make_person(owner_session, first="Aliya")
    for person in (p, q):
        await grant(db, person.id)
    future_a = await book(db, a, p.id, days_ahead=2, at=time(10))
    future_b = await book(db, b, p.id, days_ahead=3, at=time(11))
    past = await book(db, a, p.id, days_ahead=-2, at=time(12))
    await owner_session.execute(
        text("UPDATE bookings SET status = 'completed' WHERE id = :id"), {"id": past}
    )
    q_booking = await book(db, a, q.id, days_ahead=2, at=time(15))
    await queue_code(owner_session, p.phone)
    before = await pending_for(owner_session, p)
    # the booking service queued the confirmation and both reminders of each visit, and a code
    assert [e for e, _ in before].count("booking.reminder") == 4
    assert ("otp.code", p.phone) in before
    q_before = await pending_for(owner_session, q)
    assert q_before

    await profile.withdraw_consent(
        db, p.id, channel="mini_app",
        actor=Actor(kind="client", account_id=p.id, ip="192.0.2.5", user_agent="Phone/2"),
    )  # fmt: skip

    assert await pending_for(owner_session, p) == []
    stopped = await owner_session.execute(
        text(
            "SELECT DISTINCT last_error FROM notifications WHERE status = 'cancelled' "
            "AND (account_id = :a OR address = :phone)"
        ),
        {"a": p.id, "phone": p.phone},
    )
    assert set(stopped.scalars()) == {"consent withdrawn"}
    assert await pending_for(owner_session, q) == q_before  # nobody else's messages stop

    # each business still has the visit, cancelled by the client with the reason, on its chain
    for business, booking_id in ((a, future_a), (b, future_b)):
        async with db.transaction(business_id=business.id) as session:
            seen = await session.get(Booking, booking_id)
            assert seen is not None
            assert (seen.status, seen.cancelled_by, seen.cancel_reason) == (
                "cancelled", "client", "consent withdrawn",
            )  # fmt: skip
        told = await owner_session.scalar(
            text(
                "SELECT count(*) FROM notifications WHERE booking_id = :b "
                "AND event = 'staff.booking.cancelled' AND status = 'pending' "
                "AND account_id = :owner"
            ),
            {"b": booking_id, "owner": business.owner_account_id},
        )
        assert told == 1  # the owner is told (their consent is not the one withdrawn)
        audited = await owner_session.scalar(
            text(
                "SELECT count(*) FROM audit_log WHERE chain_key = :b AND action = "
                "'booking.cancelled' AND entity_id = :id AND actor_account_id = :a"
            ),
            {"b": business.id, "id": booking_id, "a": p.id},
        )
        assert audited == 1
    # the owner's booking panel says why, in the owner's language
    await owner_session.execute(
        text("UPDATE accounts SET locale = 'kk' WHERE id = :o"), {"o": a.owner_account_id}
    )
    assert a.owner_account_id is not None
    await sign_in_as(client, owner_session, settings, a.owner_account_id)
    panel = await client.get(f"/dashboard/bookings/{future_a}")
    assert panel.status_code == 200
    assert "Клиент өз деректерін өңдеуге берген келісімін кері қайтарып алды" in panel.text

    statuses = dict(
        (
            await owner_session.execute(
                text("SELECT id, status FROM bookings WHERE id = ANY(:ids)"),
                {"ids": [past, q_booking]},
            )
        ).all()
    )
    assert statuses == {past: "completed", q_booking: "confirmed"}  # the rest is untouched

    # recorded as a request (8.6), answered at once, and on the platform's chain
    request = (
        await owner_session.execute(
            text(
                "SELECT kind, status, channel, details, done_at IS NOT NULL AS done "
                "FROM data_requests WHERE account_id = :a"
            ),
            {"a": p.id},
        )
    ).one()
    assert (request.kind, request.status, request.channel, request.done) == (
        "withdraw", "done", "mini_app", True,
    )  # fmt: skip
    assert request.details["bookings_cancelled"] == 2
    assert request.details["notifications_stopped"] >= 7  # 2 confirmations, 4 reminders, a code
    withdrawn = (
        await owner_session.execute(
            text(
                "SELECT a.actor_account_id, host(d.ip) AS ip, d.user_agent FROM audit_log a "
                "JOIN audit_details d ON d.audit_id = a.id WHERE a.chain_key = 0 "
                "AND a.action = 'consent.withdraw' AND a.actor_account_id = :a"
            ),
            {"a": p.id},
        )
    ).one()
    assert tuple(withdrawn) == (p.id, "192.0.2.5", "Phone/2")


async def test_nothing_queued_later_becomes_due_until_consent_is_given_again(
    db: Database, owner_session: AsyncSession
) -> None:
    a = await create_business(owner_session)
    await owner_session.commit()
    p = await make_person(owner_session)
    await grant(db, p.id)
    booking_id = await book(db, a, p.id, days_ahead=2)
    async with db.transaction(account_id=p.id) as session:
        await withdraw_consent(session, p.id, "mini_app", None, None)
    start = datetime.now(UTC) + timedelta(days=2)

    def reminder(hours: int) -> outbox.Outgoing:
        return outbox.Outgoing(
            event="booking.reminder", scheduled_at=start - timedelta(hours=hours),
            account_id=p.id, business_id=a.id, booking_id=booking_id,
        )  # fmt: skip

    # any writer of the outbox (here the one the booking service and the reminder job use):
    # the row is kept, cancelled, and never due
    async with db.transaction(business_id=a.id) as session:
        assert await outbox.enqueue(session, [reminder(5)]) == 1
    late = (
        await owner_session.execute(
            text(
                "SELECT id, status, last_error FROM notifications WHERE booking_id = :b "
                "AND event = 'booking.reminder' AND scheduled_at = :at"
            ),
            {"b": booking_id, "at": start - timedelta(hours=5)},
        )
    ).one()
    assert (late.status, late.last_error) == ("cancelled", "consent withdrawn")
    # a worker putting a row back to pending after a failed try does not revive it either
    await owner_session.execute(
        text("UPDATE notifications SET status = 'sending', attempts = 1 WHERE id = :id"),
        {"id": late.id},
    )
    await owner_session.execute(
        _MARK_RETRY,
        {"id": late.id, "attempts": 1, "at": datetime.now(UTC), "error": "network: blip",
         "maybe_delivered": False},
    )  # fmt: skip
    await owner_session.commit()
    assert await pending_for(owner_session, p) == []
    # what the person asks for themselves to use their rights still goes: a sign-in code
    async with db.transaction(account_id=p.id) as session:
        await outbox.enqueue(
            session,
            [outbox.Outgoing(event="otp.code", scheduled_at=datetime.now(UTC), account_id=p.id,
                             payload={"code": "654321"})],
        )  # fmt: skip
    assert await pending_for(owner_session, p) == [("otp.code", "")]

    # consent given again: messages flow again
    await grant(db, p.id)
    async with db.transaction(business_id=a.id) as session:
        assert await outbox.enqueue(session, [reminder(6)]) == 1
    assert [e for e, _ in await pending_for(owner_session, p)] == ["otp.code", "booking.reminder"]
    await owner_session.execute(
        text("UPDATE notifications SET status = 'cancelled' WHERE account_id = :a "
             "AND status = 'pending'"),
        {"a": p.id},
    )  # fmt: skip
    await owner_session.commit()


async def test_nobody_withdraws_for_someone_else(db: Database, owner_session: AsyncSession) -> None:
    p = await make_person(owner_session)
    q = await make_person(owner_session, first="Aliya")
    await grant(db, p.id)
    for context in (q.id, None):
        with pytest.raises(Unauthorized):
            async with db.transaction(account_id=context) as session:
                await withdraw_consent(session, p.id, "mini_app", None, None)
    history = await owner_session.scalar(
        text("SELECT array_agg(action ORDER BY id) FROM consents WHERE account_id = :a"),
        {"a": p.id},
    )
    assert history == ["granted"]
