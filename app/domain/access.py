"""Whose is it: the one rule that decides which bookings a client or a business member may see
and change. ``NotFound`` for anything else, so a stranger never learns that it exists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain.accounts import Client, act_as_client
from app.domain.errors import NotFound
from app.domain.members import Member
from app.models import Booking, Business


async def get_booking(
    session: AsyncSession, booking_id: int, *, account_id: int | None = None
) -> Booking:
    """A booking visible in this transaction (RLS decides); ``account_id`` narrows to one client."""
    stmt = select(Booking).where(Booking.id == booking_id)
    if account_id is not None:
        stmt = stmt.where(Booking.account_id == account_id)
    booking = (await session.execute(stmt)).scalar_one_or_none()
    if booking is None:
        raise NotFound()
    return booking


@asynccontextmanager
async def booking_for(
    db: Database, booking_id: int, by: Client | Member
) -> AsyncIterator[tuple[AsyncSession, Booking, Business]]:
    """The booking ``by`` may act on, in a transaction acting for them and its business;
    ``NotFound`` for anyone else's (never a hint that it exists)."""
    if isinstance(by, Member):
        async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
            booking = await get_booking(session, booking_id)
            yield session, booking, await business_of(session, booking)
        return
    async with db.transaction() as session:
        account_id = await act_as_client(session, by)
        booking = await get_booking(session, booking_id, account_id=account_id)
        await set_context(session, business_id=booking.business_id)
        yield session, booking, await business_of(session, booking)


async def business_of(session: AsyncSession, booking: Booking) -> Business:
    business = await session.get(Business, booking.business_id)
    assert business is not None  # the booking's foreign key
    return business
