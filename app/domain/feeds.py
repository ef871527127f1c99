"""Calendar feeds: a master's private iCalendar address (``/ical/{token}.ics``), so their
bookings show in the phone's calendar. The address's secret is shown once, at creation, and
kept only as its sha256 digest; revoking ends it (the address answers 404). The feed carries
the client's phone only when the owner allowed it for that feed (policy 5.1: a phone leaves
the dashboard only by the owner's choice).

A master creates and revokes feeds for their own column; owners and admins for any master of
the business; only the owner may include phones. Every creation and revocation is audited."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from sqlalchemy import select, text

from app.db.session import Database
from app.domain import audit
from app.domain.audit import Actor
from app.domain.booking_lists import STATUS_LABELS
from app.domain.errors import NotFound, ValidationFailed
from app.domain.members import Member
from app.i18n import N_, gettext, localized, use_locale
from app.models import Business, CalendarFeed, Staff

TOKEN_BYTES = 32
PAST_DAYS = 30  # how far back a feed reaches
FUTURE_DAYS = 365  # and forward
FEED_LIMIT = 2000


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Feed:
    id: int
    staff_id: int
    staff_name: str
    include_phone: bool
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeedsPage:
    feeds: list[Feed]
    masters: list[tuple[int, str]]  # the masters the member may make a feed for


@dataclass(frozen=True, slots=True)
class NewFeed:
    id: int
    token: str  # shown once


def _own(by: Member) -> int | None:
    """The one master a member who is only a master may act for; None: any."""
    return None if by.at_least("admin") else (by.staff_id or 0)


async def list_feeds(db: Database, by: Member) -> FeedsPage:
    own = _own(by)
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        staff_q = select(Staff.id, Staff.name).where(Staff.business_id == by.business_id)
        feeds_q = (
            select(CalendarFeed, Staff.name)
            .join(Staff, Staff.id == CalendarFeed.staff_id)
            .where(CalendarFeed.business_id == by.business_id)
            .order_by(CalendarFeed.revoked_at.is_not(None), CalendarFeed.id.desc())
        )
        if own is not None:
            staff_q = staff_q.where(Staff.id == own)
            feeds_q = feeds_q.where(CalendarFeed.staff_id == own)
        masters = [(r.id, r.name) for r in await session.execute(staff_q.order_by(Staff.name))]
        business = await session.get(Business, by.business_id)
        assert business is not None
        zone = ZoneInfo(business.timezone)
        feeds = [
            Feed(
                id=f.id,
                staff_id=f.staff_id,
                staff_name=name,
                include_phone=f.include_phone,
                created_at=f.created_at.astimezone(zone),
                revoked_at=f.revoked_at.astimezone(zone) if f.revoked_at else None,
            )
            for f, name in (await session.execute(feeds_q)).all()
        ]
    return FeedsPage(feeds=feeds, masters=masters)


async def create_feed(
    db: Database, by: Member, *, staff_id: int | None, include_phone: bool, actor: Actor
) -> NewFeed:
    """A new feed for a master; its address's secret, shown once."""
    own = _own(by)
    if staff_id is None:
        staff_id = own
    if staff_id is None or (own is not None and staff_id != own):
        raise ValidationFailed(fields={"staff_id": gettext(N_("Choose a master from the list."))})
    if include_phone and not by.at_least("owner"):
        raise ValidationFailed(
            fields={
                "include_phone": gettext(N_("Only the owner may put clients' phones in a feed."))
            }
        )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        found = await session.scalar(
            select(Staff.id).where(Staff.id == staff_id, Staff.business_id == by.business_id)
        )
        if found is None:
            raise ValidationFailed(
                fields={"staff_id": gettext(N_("Choose a master from the list."))}
            )
        feed = CalendarFeed(
            business_id=by.business_id, staff_id=staff_id, token_hash=digest(token),
            include_phone=include_phone,
        )  # fmt: skip
        session.add(feed)
        await session.flush()
        await audit.record(
            session, actor=actor, action="calendar_feed.create", entity="calendar_feed",
            entity_id=feed.id, business_id=by.business_id,
            after={"staff_id": staff_id, "include_phone": include_phone},
        )  # fmt: skip
        return NewFeed(id=feed.id, token=token)


async def revoke_feed(db: Database, by: Member, feed_id: int, *, actor: Actor) -> None:
    """End a feed: its address answers 404 from now on. Another business's feed, or another
    master's for a master, is ``NotFound``; revoking twice changes nothing."""
    own = _own(by)
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        feed = await session.scalar(
            select(CalendarFeed)
            .where(CalendarFeed.id == feed_id, CalendarFeed.business_id == by.business_id)
            .with_for_update()
        )
        if feed is None or (own is not None and feed.staff_id != own):
            raise NotFound()
        if feed.revoked_at is not None:
            return
        feed.revoked_at = datetime.now(UTC)
        await audit.record(
            session, actor=actor, action="calendar_feed.revoke", entity="calendar_feed",
            entity_id=feed.id, business_id=by.business_id,
            before={"revoked": False}, after={"revoked": True},
        )  # fmt: skip


_LOOKUP = text("SELECT feed_id, business_id, staff_id, include_phone FROM pz_feed_for_token(:d)")
_EVENTS = text(
    "SELECT b.id, b.public_code, lower(b.period) AS start, upper(b.period) AS end, b.status, "
    "b.service_name, c.name AS client_name, c.phone AS client_phone FROM bookings b "
    "LEFT JOIN clients c ON c.id = b.client_id "
    "WHERE b.business_id = :b AND b.staff_id = :s AND b.starts_at >= :lo AND b.starts_at < :hi "
    "ORDER BY b.starts_at, b.id LIMIT :limit"
)


async def feed_calendar(db: Database, token: str, *, now: datetime | None = None) -> bytes:
    """The feed's iCalendar text (``text/calendar``): the master's bookings from a month ago to
    a year ahead, each with its service, time, status and client name (the phone only when the
    feed includes it). An unknown or revoked token is ``NotFound``."""
    if not token or len(token) > 128:
        raise NotFound()
    async with db.transaction() as session:
        found = (await session.execute(_LOOKUP, {"d": digest(token)})).first()
    if found is None:
        raise NotFound()
    now = now or datetime.now(UTC)
    async with db.transaction(business_id=found.business_id) as session:
        business = await session.get(Business, found.business_id)
        staff = await session.get(Staff, found.staff_id)
        assert business is not None and staff is not None
        rows = (await session.execute(_EVENTS, {
            "b": found.business_id, "s": found.staff_id, "lo": now - timedelta(days=PAST_DAYS),
            "hi": now + timedelta(days=FUTURE_DAYS), "limit": FEED_LIMIT,
        })).all()  # fmt: skip
    with use_locale(business.default_locale):
        return _ical(business, staff, list(rows), found.include_phone, now)


def _ical(
    business: Business, staff: Staff, rows: list[Any], include_phone: bool, now: datetime
) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//PoZapisi//pozapisi.kz//")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{business.name} — {staff.name}")
    calendar.add("x-wr-timezone", business.timezone)
    for r in rows:
        event = Event()
        event.add("uid", f"{r.public_code}@pozapisi.kz")
        who = r.client_name or gettext(N_("no name"))
        event.add("summary", f"{localized(r.service_name)} — {who}")
        event.add("dtstart", r.start)
        event.add("dtend", r.end)
        event.add("dtstamp", now)
        lines = [gettext(N_("Status: %(status)s")) % {"status": gettext(STATUS_LABELS[r.status])}]
        lines.append(gettext(N_("Client: %(name)s")) % {"name": who})
        if include_phone and r.client_phone:
            lines.append(gettext(N_("Phone: %(phone)s")) % {"phone": r.client_phone})
        event.add("description", "\n".join(lines))
        event.add("status", "CANCELLED" if r.status in ("cancelled", "no_show") else (
            "TENTATIVE" if r.status == "pending" else "CONFIRMED"))  # fmt: skip
        calendar.add_component(event)
    return bytes(calendar.to_ical())
