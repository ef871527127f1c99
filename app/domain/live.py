"""What keeps an open dashboard current without a reload (issue 14 item 4): the navigation's
counts (bookings waiting for confirmation, unread client messages) and a change stamp.

An open page polls (htmx, every few seconds while its tab is visible) with the stamp it was
drawn at; the stamp is read in ONE statement, and only when it differs is anything drawn again.
The dashboard's guard reads it (:func:`counts_in`) in the transaction it checks the session in,
for whole pages (their navigation's badges) and for the polls: an unchanged poll costs no
transaction of its own.
Polling, not server-sent events: a poll holds no connection while the page stays open, so 50
open calendars cost 50 short requests every 5 s rather than 50 connections held (to the app,
and through it to PostgreSQL or a PgBouncer in transaction mode), and it passes any proxy.

The stamp changes whenever what a page shows may have changed:
- every change to a booking of the business (made in the Mini App, by the client's
  cancellation, from the dashboard, or by the expiry job) appends to the business's audit chain:
  the chain's newest ``seq`` (read backwards on the unique (chain_key, seq) index);
- a client message arriving or being read changes the unread count;
- the quarter hour (the calendar's "now" line moves by quarter hours).
A master's stamp follows the whole business's chain: the audit log does not name the master,
and scoping it would take a read of the master's bookings on every poll. Their counts are their
own (pending bookings of their column; no inbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain import calendar as calendars
from app.domain.members import Member

QUARTER_S = 15 * 60
STAMP_MAX = 64
INBOX_ROLE = "admin"  # who sees the inbox (dashboard:inbox), and so the unread count

# one statement, each part on an index: the chain's tip on uq_audit_log_chain_seq (backwards,
# one row), the pending bookings on ix_bookings_pending_expires_at (partial: only waiting ones),
# the unread messages on ix_messages_business_id; the messages are counted only for roles that
# see the inbox (CASE evaluates its subquery only when taken)
_COUNTS = text(
    "SELECT "
    "(SELECT a.seq FROM audit_log a WHERE a.chain_key = :b ORDER BY a.seq DESC LIMIT 1) AS seq, "
    "(SELECT count(*) FROM bookings k WHERE k.business_id = :b AND k.status = 'pending' "
    " AND (CAST(:staff AS bigint) IS NULL OR k.staff_id = CAST(:staff AS bigint))) AS pending, "
    "CASE WHEN CAST(:inbox AS boolean) THEN (SELECT count(*) FROM messages m "
    " WHERE m.business_id = :b AND m.sender = 'client' AND m.read_at IS NULL) END AS unread"
)


@dataclass(frozen=True, slots=True)
class Counts:
    """The navigation's badges and the stamp of what the member's pages show."""

    pending: int  # bookings waiting for confirmation (a master: their own)
    unread: int | None  # unread client messages; None for a role that does not see the inbox
    stamp: str


@dataclass(frozen=True, slots=True)
class Update:
    """A poll's answer: the counts now, whether they moved past the page's stamp, and (an open
    calendar's poll) the calendar drawn again when they did."""

    counts: Counts
    changed: bool
    calendar: calendars.CalendarView | None = None


def parse_stamp(raw: str | None) -> str:
    """The stamp a page sent back ("" when none or not one of ours: a stamp never matches it)."""
    raw = (raw or "").strip()
    if len(raw) > STAMP_MAX or not all(c.isdigit() or c == "-" for c in raw):
        return ""
    return raw


async def counts_in(session: AsyncSession, member: Member, now: datetime | None = None) -> Counts:
    """The counts in the caller's transaction (the guard's, which knows the business only once
    it has read the session): acts for the member's business from here on."""
    now = now or datetime.now(UTC)
    await set_context(session, business_id=member.business_id)
    own = None if member.at_least("admin") else (member.staff_id or 0)
    inbox = member.at_least(INBOX_ROLE)
    row = (
        await session.execute(_COUNTS, {"b": member.business_id, "staff": own, "inbox": inbox})
    ).one()
    seq, pending = int(row.seq or 0), int(row.pending)
    unread = None if row.unread is None else int(row.unread)
    quarter = int(now.timestamp()) // QUARTER_S
    stamp = f"{seq}-{pending}-{'' if unread is None else unread}-{quarter}"
    return Counts(pending=pending, unread=unread, stamp=stamp)


async def read_counts(db: Database, member: Member, now: datetime | None = None) -> Counts:
    """The counts and stamp for the member, in a transaction of their own."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        return await counts_in(s, member, now)


async def nav_update(
    db: Database, member: Member, *, since: str, counts: Counts | None = None
) -> Update:
    """The navigation's poll: the counts, and whether they changed since ``since``. ``counts``
    already read (by the dashboard's guard, with the session) are used as they are."""
    current = counts or await read_counts(db, member)
    return Update(current, changed=not since or current.stamp != since)


async def calendar_update(
    db: Database,
    member: Member,
    *,
    since: str,
    day: date | None,
    view: str = "day",
    staff_id: int | None = None,
    counts: Counts | None = None,
    now: datetime | None = None,
) -> Update:
    """An open calendar's poll: the counts (``counts`` when already read), and the calendar
    again only when the stamp moved past ``since``. The stamp is read before the calendar, so
    a change made in between shows now and moves the stamp once more: the next poll draws
    again, never misses it."""
    current = counts or await read_counts(db, member, now)
    if since and current.stamp == since:
        return Update(current, changed=False)
    shown = await calendars.calendar(db, member, day=day, view=view, staff_id=staff_id, now=now)
    return Update(current, changed=True, calendar=shown)
