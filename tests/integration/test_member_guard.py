"""The guard the dashboard builds on: a signed-in person acts for a business only as a member
with at least the role a route asks for, and the domain call then acts for that business.

A small app holds two routes shaped like the dashboard's (``dependencies=role(...)``): confirm a
booking (admin or owner) and mark attendance (any member, a master included). A lesser role is
refused (403) before anything is read; another business's booking is not found (404)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from app.domain import bookings
from app.domain.accounts import ByAccount
from app.domain.audit import Actor
from app.domain.members import Member
from app.main import create_app
from app.routes.deps import DB
from app.security.dashboard import role
from app.security.web import actor_of
from tests.conftest import make_settings
from tests.factories import create_business, local_start
from tests.support.dashboard import sign_in_as


@post("/t/bookings/{booking_id:int}/confirm", dependencies=role("admin"), status_code=200)
async def confirm(
    request: Request[Any, Any, Any],
    booking_id: FromPath[int],
    db: DB,
    member: NamedDependency[Member],
) -> dict[str, Any]:
    made = await bookings.confirm_booking(
        db, booking_id, by=member, actor=actor_of(request, member.account_id, "staff")
    )
    return {"status": made.status}


@post("/t/bookings/{booking_id:int}/no-show", dependencies=role("master"), status_code=200)
async def no_show(
    request: Request[Any, Any, Any],
    booking_id: FromPath[int],
    db: DB,
    member: NamedDependency[Member],
) -> dict[str, Any]:
    made = await bookings.mark_attendance(
        db, booking_id, by=member, attended=False,
        actor=actor_of(request, member.account_id, "staff"),
    )  # fmt: skip
    return {"status": made.status}


@pytest.fixture
async def guarded(database: Any, settings: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The real app with the two dashboard-shaped routes registered beside its own."""
    app = create_app(settings, app_url=database.app)
    app.register(confirm)
    app.register(no_show)
    async with AsyncTestClient(app, base_url="https://testserver.local") as client:
        yield client


async def _person(owner_session: Any, business_id: int | None, role: str | None) -> int:
    telegram_id = int(datetime.now(UTC).timestamp() * 1_000_000) % 10**12
    account_id = await owner_session.scalar(
        text("INSERT INTO accounts (telegram_id, locale) VALUES (:t, 'ru') RETURNING id"),
        {"t": telegram_id},
    )
    if business_id is not None and role is not None:
        await owner_session.execute(
            text("INSERT INTO memberships (business_id, account_id, role) VALUES (:b, :a, :r)"),
            {"b": business_id, "a": account_id, "r": role},
        )
    await owner_session.commit()
    return int(account_id)


async def _sign_in(client: Any, owner_session: Any, account_id: int) -> dict[str, str]:
    client.cookies.clear()
    csrf = await sign_in_as(client, owner_session, make_settings(), account_id)
    return {"X-CSRF-Token": csrf}


async def _pending_booking(db: Any, owner_session: Any) -> tuple[Any, int]:
    business = await create_business(owner_session, auto_confirm=False)
    await owner_session.commit()
    client_id = await _person(owner_session, None, None)
    await owner_session.execute(
        text(
            "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
            "SELECT :a, version, purposes, 'granted', 'api' FROM policy_versions "
            "ORDER BY effective_at DESC LIMIT 1"
        ),
        {"a": client_id},
    )
    await owner_session.commit()
    made = await bookings.create_booking(
        db, business.slug,
        bookings.BookingRequest(service_id=business.service_id, staff_id=None,
                                start=local_start(business, 3)),
        client=ByAccount(client_id), actor=Actor(kind="client"),
    )  # fmt: skip
    assert made.status == "pending"
    return business, made.id


async def _status(owner_session: Any, booking_id: int) -> str:
    status = await owner_session.scalar(
        text("SELECT status FROM bookings WHERE id = :b"), {"b": booking_id}
    )
    await owner_session.commit()
    return str(status)


async def test_an_admin_confirms_and_the_transaction_acts_for_the_business(
    guarded, db, owner_session
) -> None:  # type: ignore[no-untyped-def]
    business, booking_id = await _pending_booking(db, owner_session)
    admin = await _person(owner_session, business.id, "admin")
    headers = await _sign_in(guarded, owner_session, admin)
    done = await guarded.post(f"/t/bookings/{booking_id}/confirm", headers=headers)
    assert done.status_code == 200
    assert done.json() == {"status": "confirmed"}
    assert await _status(owner_session, booking_id) == "confirmed"
    actor = await owner_session.scalar(
        text(
            "SELECT actor_account_id FROM audit_log WHERE entity_id = :b "
            "AND action = 'booking.confirmed'"
        ),
        {"b": booking_id},
    )
    await owner_session.commit()
    assert actor == admin


async def test_a_master_may_not_confirm_but_may_mark_attendance(guarded, db, owner_session) -> None:  # type: ignore[no-untyped-def]
    business, booking_id = await _pending_booking(db, owner_session)
    master = await _person(owner_session, business.id, "master")
    # the booking's own master: a master reaches only the bookings in their column
    await owner_session.execute(
        text(
            "UPDATE memberships SET staff_id = (SELECT staff_id FROM bookings WHERE id = :b) "
            "WHERE account_id = :a"
        ),
        {"b": booking_id, "a": master},
    )
    await owner_session.commit()
    headers = await _sign_in(guarded, owner_session, master)
    refused = await guarded.post(f"/t/bookings/{booking_id}/confirm", headers=headers)
    assert refused.status_code == 403  # the role is refused before the booking is looked at
    assert await _status(owner_session, booking_id) == "pending"
    early = await guarded.post(f"/t/bookings/{booking_id}/no-show", headers=headers)
    assert early.status_code == 422  # the visit has not started: the rule still holds
    await owner_session.execute(
        text(
            "UPDATE bookings SET period = tstzrange(now() - interval '2 hours', "
            "now() - interval '1 hour'), blocked_period = tstzrange(now() - interval '2 hours', "
            "now() - interval '1 hour') WHERE id = :b"
        ),
        {"b": booking_id},
    )
    await owner_session.commit()
    late = await guarded.post(f"/t/bookings/{booking_id}/no-show", headers=headers)
    assert late.status_code == 200
    assert await _status(owner_session, booking_id) == "no_show"


async def test_another_business_and_its_bookings_are_out_of_reach(
    guarded, db, owner_session
) -> None:  # type: ignore[no-untyped-def]
    _business, booking_id = await _pending_booking(db, owner_session)
    other, _other_booking = await _pending_booking(db, owner_session)
    owner_elsewhere = other.owner_account_id  # the other business's one owner
    assert owner_elsewhere is not None
    headers = await _sign_in(guarded, owner_session, owner_elsewhere)
    # working in their own business, naming another business's booking: not found (RLS and
    # the domain's lookup by the member's business both hide it), and nothing changes
    crossed = await guarded.post(f"/t/bookings/{booking_id}/confirm", headers=headers)
    assert crossed.status_code == 404
    assert await _status(owner_session, booking_id) == "pending"
