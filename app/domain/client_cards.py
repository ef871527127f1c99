"""A business's clients and its correspondence with them (issue 14 items 6 and 7).

Policy 5.1: what the business sees of a client is only the name, the phone, the services booked
and their times, plus its own notes and tags. The values returned here carry nothing else (no
account, e-mail, Telegram id or avatar), and every read is scoped to the member's business
(the transaction's tenant; row-level security is the second wall).

Threads are the client's messages about their bookings (app.domain.messages); a reply is
attached to the client's latest booking so the client reads it under that booking, written by
``bookings.reply_to_client`` (the thread, and ``message.business`` through the outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import audit, bookings, plans
from app.domain.audit import Actor
from app.domain.errors import NotFound, ValidationFailed
from app.domain.members import Member
from app.domain.messages import clean_body
from app.domain.otp import normalize_phone
from app.i18n import N_, gettext
from app.models import Booking, Business, Client, Message

PAGE_SIZE = 30
VISITS_SHOWN = 500
THREAD_SHOWN = 500
INBOX_SHOWN = 100
NOTES_MAX = bookings.NOTES_MAX  # the booking panel appends its notes to the same card
TAG_MAX = 40
TAGS_MAX = 20
Q_MAX = 120


@dataclass(frozen=True, slots=True)
class ClientRow:
    id: int
    name: str | None
    phone: str | None
    tags: list[str]


@dataclass(frozen=True, slots=True)
class ClientPage:
    q: str
    page: int
    rows: list[ClientRow]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Visit:
    booking_id: int
    starts_at: datetime
    service_name: dict[str, Any]
    status: str
    price_tiyn: int


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    id: int
    sender: str
    body: str
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True, slots=True)
class Card:
    id: int
    name: str | None
    phone: str | None
    notes: str
    tags: list[str]
    visits: list[Visit]
    completed: int
    spend_tiyn: int
    no_shows: int
    cancellations: int
    messages: list[ThreadMessage]


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    client_id: int
    name: str | None
    phone: str | None
    unread: int
    last_body: str
    last_sender: str
    last_at: datetime


# --- reading ---------------------------------------------------------------------------------


def _search_terms(q: str) -> tuple[str, str | None]:
    """The typed text for a name search, and a phone to look for when it reads as one."""
    text_ = q.strip()[:Q_MAX]
    digits = "".join(ch for ch in text_ if ch.isdigit())
    if len(digits) < 3:
        return text_, None
    try:
        return text_, normalize_phone(text_)
    except ValidationFailed:
        return text_, digits


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(db: Database, member: Member, q: str = "", page: int = 1) -> ClientPage:
    """The business's clients, by name or phone (a typed phone is normalised), newest first."""
    page = max(1, min(page, 10_000))
    name, phone = _search_terms(q)
    query = select(Client.id, Client.name, Client.phone, Client.tags).where(
        Client.business_id == member.business_id
    )
    if name:
        matches = [Client.name.ilike(_like(name))]
        if phone:
            matches.append(Client.phone.like(_like(phone)))
        query = query.where(or_(*matches))
    query = query.order_by(Client.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        found = (await s.execute(query)).all()
    rows = [ClientRow(r.id, r.name, r.phone, list(r.tags or [])) for r in found[:PAGE_SIZE]]
    return ClientPage(q=name, page=page, rows=rows, has_more=len(found) > PAGE_SIZE)


async def _client(
    session: AsyncSession, member: Member, client_id: int, *, lock: bool = False
) -> Client:
    query = select(Client).where(Client.id == client_id, Client.business_id == member.business_id)
    if lock:
        query = query.with_for_update()
    client = (await session.execute(query)).scalar_one_or_none()
    if client is None:
        raise NotFound()
    return client


async def _thread(session: AsyncSession, member: Member, client_id: int) -> list[ThreadMessage]:
    rows = (
        await session.execute(
            select(Message.id, Message.sender, Message.body, Message.created_at, Message.read_at)
            .where(Message.business_id == member.business_id, Message.client_id == client_id)
            .order_by(Message.id.desc())
            .limit(THREAD_SHOWN)
        )
    ).all()
    return [ThreadMessage(r.id, r.sender, r.body, r.created_at, r.read_at) for r in reversed(rows)]


async def card(db: Database, member: Member, client_id: int) -> Card:
    """The client's card: this business's bookings of them, totals, notes, tags, the thread.
    Four statements however many visits there are. Another business's client: NotFound."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        client = await _client(s, member, client_id)
        of_client = (Booking.business_id == member.business_id, Booking.client_id == client.id)
        totals = (
            await s.execute(
                select(
                    func.count().filter(Booking.status == "completed"),
                    func.coalesce(
                        func.sum(Booking.price_tiyn).filter(Booking.status == "completed"), 0
                    ),
                    func.count().filter(Booking.status == "no_show"),
                    func.count().filter(Booking.status == "cancelled"),
                ).where(*of_client)
            )
        ).one()
        visits = [
            Visit(r.id, r.starts_at, dict(r.service_name or {}), r.status, r.price_tiyn)
            for r in (
                await s.execute(
                    select(
                        Booking.id,
                        Booking.starts_at,
                        Booking.service_name,
                        Booking.status,
                        Booking.price_tiyn,
                    )
                    .where(*of_client)
                    .order_by(Booking.starts_at.desc())
                    .limit(VISITS_SHOWN)
                )
            ).all()
        ]
        messages = await _thread(s, member, client.id)
        zone = ZoneInfo(
            (
                await s.execute(select(Business.timezone).where(Business.id == member.business_id))
            ).scalar_one()
        )
        visits = [
            Visit(v.booking_id, v.starts_at.astimezone(zone), v.service_name, v.status,
                  v.price_tiyn)
            for v in visits
        ]  # fmt: skip
        return Card(
            id=client.id,
            name=client.name,
            phone=client.phone,
            notes=client.notes or "",
            tags=list(client.tags or []),
            visits=visits,
            completed=int(totals[0]),
            spend_tiyn=int(totals[1]),
            no_shows=int(totals[2]),
            cancellations=int(totals[3]),
            messages=messages,
        )


# --- notes and tags --------------------------------------------------------------------------


def clean_tags(raw: str | None) -> list[str]:
    """Comma-separated tags: trimmed, without repeats, each at most 40 characters."""
    tags: list[str] = []
    for part in (raw or "").split(","):
        tag = " ".join(part.split())
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise ValidationFailed(fields={"tags": gettext(N_("A tag is at most 40 characters."))})
        if tag.casefold() not in {t.casefold() for t in tags}:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise ValidationFailed(fields={"tags": gettext(N_("At most 20 tags."))})
    return tags


def clean_notes(raw: str | None) -> str | None:
    notes = (raw or "").strip()
    if len(notes) > NOTES_MAX:
        raise ValidationFailed(fields={"notes": gettext(N_("At most 4000 characters."))})
    return notes or None


async def update_notes(
    db: Database, member: Member, client_id: int, *, notes: str | None, tags: str | None,
    actor: Actor,
) -> None:  # fmt: skip
    """The business's own notes and tags on a client (audited)."""
    new_notes, new_tags = clean_notes(notes), clean_tags(tags)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        client = await _client(s, member, client_id, lock=True)
        before = {"notes": client.notes, "tags": list(client.tags or [])}
        after = {"notes": new_notes, "tags": new_tags}
        if before == after:
            return
        await plans.require_client_notes(s, member.business_id)
        client.notes, client.tags = new_notes, new_tags
        await s.flush()
        await audit.record(
            s,
            actor=actor,
            action="client.notes",
            entity="client",
            entity_id=client.id,
            business_id=member.business_id,
            before=before,
            after=after,
        )


# --- the inbox -------------------------------------------------------------------------------


async def inbox(db: Database, member: Member) -> list[ThreadSummary]:
    """Every client thread of the business, the latest first, with its unread count (the
    client's messages nobody at the business has read) and its last message. Two statements."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        grouped = (
            select(
                Message.client_id.label("client_id"),
                func.max(Message.id).label("last_id"),
                func.count()
                .filter(Message.sender == "client", Message.read_at.is_(None))
                .label("unread"),
            )
            .where(Message.business_id == member.business_id)
            .group_by(Message.client_id)
            .subquery()
        )
        rows = (
            await s.execute(
                select(
                    grouped.c.client_id,
                    grouped.c.unread,
                    Client.name,
                    Client.phone,
                    Message.body,
                    Message.sender,
                    Message.created_at,
                )
                .join(Message, Message.id == grouped.c.last_id)
                .join(
                    Client,
                    (Client.id == grouped.c.client_id) & (Client.business_id == member.business_id),
                )
                .order_by(grouped.c.last_id.desc())
                .limit(INBOX_SHOWN)
            )
        ).all()
    return [
        ThreadSummary(r.client_id, r.name, r.phone, int(r.unread), r.body, r.sender, r.created_at)
        for r in rows
    ]


async def unread_count(db: Database, member: Member) -> int:
    """The client messages of the business nobody has read yet."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        return int(
            (
                await s.execute(
                    select(func.count()).where(
                        Message.business_id == member.business_id,
                        Message.sender == "client",
                        Message.read_at.is_(None),
                    )
                )
            ).scalar_one()
        )


async def thread(db: Database, member: Member, client_id: int) -> tuple[Card, int]:
    """A client's card and how many of their messages are unread (reading marks nothing)."""
    found = await card(db, member, client_id)
    unread = sum(1 for m in found.messages if m.sender == "client" and m.read_at is None)
    return found, unread


async def mark_read(
    db: Database, member: Member, client_id: int, now: datetime | None = None
) -> int:
    """The business has read the client's messages; how many were marked."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        await _client(s, member, client_id)
        result = await s.execute(
            update(Message)
            .where(
                Message.business_id == member.business_id,
                Message.client_id == client_id,
                Message.sender == "client",
                Message.read_at.is_(None),
            )
            .values(read_at=now or datetime.now(UTC))
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def reply(
    db: Database, member: Member, client_id: int, *, body: str, now: datetime | None = None
) -> int:
    """The business writes to the client about their latest booking here: the one way a
    business writes to a client, ``bookings.reply_to_client`` (the thread, and the client told
    through the outbox when they have an account to reach). The booking's id."""
    clean_body(body)  # an empty or too long reply is refused before anything is read
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        client = await _client(s, member, client_id)
        booking_id = (
            await s.execute(
                select(Booking.id)
                .where(Booking.business_id == member.business_id, Booking.client_id == client.id)
                .order_by(Booking.starts_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    if booking_id is None:
        raise ValidationFailed(
            fields={"body": gettext(N_("This client has no booking to write about."))}
        )
    await bookings.reply_to_client(db, booking_id, by=member, body=body, now=now)
    return int(booking_id)
