"""Correspondence between a business and a client about a booking (policy 2.5)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import outbox
from app.domain.access import booking_for
from app.domain.accounts import Client
from app.domain.errors import ValidationFailed
from app.i18n import N_, gettext
from app.models import Booking, Message

MAX_LENGTH = 2000


def clean_body(body: str | None) -> str:
    text_ = (body or "").strip()
    if not text_:
        raise ValidationFailed(fields={"body": gettext(N_("Write a message first."))})
    if len(text_) > MAX_LENGTH:
        raise ValidationFailed(fields={"body": gettext(N_("At most 2000 characters."))})
    return text_


async def thread(session: AsyncSession, booking: Booking, *, after_id: int = 0) -> list[Message]:
    """Messages about this booking, oldest first (newer than ``after_id`` when polling)."""
    rows = await session.execute(
        select(Message)
        .where(
            Message.booking_id == booking.id,
            Message.business_id == booking.business_id,
            Message.id > after_id,
        )
        .order_by(Message.id)
        .limit(500)
    )
    return list(rows.scalars())


async def post_from_client(
    session: AsyncSession,
    booking: Booking,
    *,
    account_id: int,
    body: str,
    now: datetime | None = None,
) -> Message:
    """The client writes to the business; the master and the owner/admins are notified."""
    now = now or datetime.now(UTC)
    message = Message(
        business_id=booking.business_id,
        client_id=booking.client_id,
        booking_id=booking.id,
        sender="client",
        author_account_id=account_id,
        body=clean_body(body),
        created_at=now,
    )
    session.add(message)
    await session.flush()
    recipients = await outbox.business_recipients(session, booking.business_id, booking.staff_id)
    await outbox.enqueue(
        session,
        [
            outbox.Outgoing(
                event="staff.message.client",
                scheduled_at=now,
                account_id=account_id_,
                business_id=booking.business_id,
                booking_id=booking.id,
                locale=locale,
                payload={"message_id": message.id, "code": booking.public_code},
            )
            for account_id_, locale in recipients
            if account_id_ != account_id
        ],
    )
    return message


async def mark_read_by_client(
    session: AsyncSession, booking: Booking, now: datetime | None = None
) -> None:
    await session.execute(
        update(Message)
        .where(
            Message.booking_id == booking.id,
            Message.sender == "business",
            Message.read_at.is_(None),
        )
        .values(read_at=now or datetime.now(UTC))
    )


# --- entry points: each owns its transaction ---------------------------------------------------


async def read_thread(
    db: Database, booking_id: int, *, by: Client
) -> tuple[Booking, list[Message]]:
    """The client's booking and its correspondence (reading marks nothing: see ``mark_read``)."""
    async with booking_for(db, booking_id, by) as (session, booking, _business):
        return booking, await thread(session, booking)


async def write_to_business(
    db: Database, booking_id: int, *, by: Client, body: str
) -> tuple[Booking, list[Message]]:
    """The client writes about their booking; the thread as it now stands."""
    async with booking_for(db, booking_id, by) as (session, booking, _business):
        await post_from_client(session, booking, account_id=booking.account_id or 0, body=body)
        return booking, await thread(session, booking)


async def mark_read(db: Database, booking_id: int, *, by: Client) -> None:
    """The client has seen the business's messages about this booking."""
    async with booking_for(db, booking_id, by) as (session, booking, _business):
        await mark_read_by_client(session, booking)
