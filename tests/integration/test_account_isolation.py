"""What a business still learns of its client now that accounts are under row-level security
(policy 5.1, 10.3; migration 0016): the language to write to them in, and that a booking it
moves stays theirs — and nothing else of the account.

The RLS matrix itself is ``test_rls.py``; these go through the domain's entry points as a
member of the business, whose transaction cannot read the client's account row.
"""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import bookings
from app.domain.audit import Actor
from app.domain.members import Member
from app.models import Account
from tests.factories import create_business, local_start
from tests.privacy.conftest import book, make_person


def _owner_of(business_id: int, owner_account_id: int) -> tuple[Member, Actor]:
    return (
        Member(account_id=owner_account_id, business_id=business_id, role="owner"),
        Actor(kind="staff", account_id=owner_account_id),
    )


@pytest.mark.policy("10.3")
async def test_the_business_cannot_read_its_clients_account(
    db: Database, owner_session: AsyncSession
) -> None:
    """The premise of the two tests below: acting for the business, the account is not there."""
    business = await create_business(owner_session)
    await owner_session.commit()
    client = await make_person(owner_session)
    await book(db, business, client.id)
    async with db.transaction(business_id=business.id, account_id=business.owner_account_id) as s:
        assert await s.get(Account, client.id) is None
        assert await s.get(Account, business.owner_account_id) is not None  # their own is


@pytest.mark.policy("5.1")
async def test_a_member_confirming_tells_the_client_in_the_clients_language(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await create_business(owner_session, auto_confirm=False)
    await owner_session.commit()
    client = await make_person(owner_session)  # reads Kazakh; the business writes Russian
    booking_id = await book(db, business, client.id)
    member, actor = _owner_of(business.id, business.owner_account_id)

    made = await bookings.confirm_booking(db, booking_id, by=member, actor=actor)

    assert made.status == "confirmed"
    locales = (
        await owner_session.execute(
            text(
                "SELECT locale FROM notifications WHERE booking_id = :b AND account_id = :a "
                "AND event = 'booking.confirmed'"
            ),
            {"b": booking_id, "a": client.id},
        )
    ).scalars().all()  # fmt: skip
    default = await owner_session.scalar(
        text("SELECT default_locale FROM businesses WHERE id = :b"), {"b": business.id}
    )
    assert default == "ru" and locales and set(locales) == {"kk"}


@pytest.mark.policy("10.3")
async def test_a_booking_a_member_moves_stays_the_clients(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await create_business(owner_session)
    await owner_session.commit()
    client = await make_person(owner_session)
    booking_id = await book(db, business, client.id)
    member, actor = _owner_of(business.id, business.owner_account_id)

    moved = await bookings.reschedule_booking(
        db, booking_id, by=member, new_start=local_start(business, 2, time(15)),
        new_staff_id=None, actor=actor,
    )  # fmt: skip

    rows = (
        await owner_session.execute(
            text("SELECT id, account_id, status FROM bookings WHERE id IN (:old, :new)"),
            {"old": booking_id, "new": moved.id},
        )
    ).all()
    assert moved.id != booking_id
    assert {(r.id, r.account_id, r.status) for r in rows} == {
        (booking_id, client.id, "cancelled"),
        (moved.id, client.id, "confirmed"),
    }
