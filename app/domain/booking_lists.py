"""The business's bookings as a list: filtered by period, master, status and source, a page at
a time, and the same rows exported as CSV (every export of client data is audited).

Times are read and shown in the business's zone; a period is whole local days, ``start`` to
``end`` inclusive. A master sees only their own column (as ``bookings._within_reach``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from app.db.session import Database
from app.domain import audit
from app.domain.audit import Actor
from app.domain.errors import MAX_ID, NotFound, ValidationFailed
from app.domain.members import Member
from app.i18n import N_, gettext, localized, money
from app.models import Business

STATUSES = ("pending", "confirmed", "cancelled", "completed", "no_show")
SOURCES = ("mini_app", "dashboard", "api", "walk_in")
PAGE_SIZE = 50
MAX_PAGE = 10_000
MAX_EXPORT_DAYS = 366
CLIENT_MAX = 120
DEFAULT_DAYS = 30
BOM = "\ufeff"

STATUS_LABELS = {
    "pending": N_("Pending"),
    "confirmed": N_("Confirmed"),
    "cancelled": N_("Cancelled"),
    "completed": N_("Completed"),
    "no_show": N_("No-show"),
}
SOURCE_LABELS = {
    "mini_app": N_("Mini App"),
    "dashboard": N_("Dashboard"),
    "api": N_("API"),
    "walk_in": N_("Walk-in"),
}

_ROWS = text(
    "SELECT b.id, lower(b.period) AS start, upper(b.period) AS end, b.status, b.source, "
    "b.service_name, b.price_tiyn, b.staff_id, st.name AS staff_name, "
    "c.name AS client_name, c.phone AS client_phone FROM bookings b "
    "JOIN staff st ON st.id = b.staff_id LEFT JOIN clients c ON c.id = b.client_id "
    "WHERE b.business_id = :b AND b.starts_at >= :lo AND b.starts_at < :hi "
    "AND (CAST(:staff AS bigint) IS NULL OR b.staff_id = CAST(:staff AS bigint)) "
    "AND (CAST(:status AS text) IS NULL OR b.status = CAST(:status AS text)) "
    "AND (CAST(:source AS text) IS NULL OR b.source = CAST(:source AS text)) "
    "AND (CAST(:client AS text) IS NULL OR c.name ILIKE CAST(:client AS text) "
    "OR c.phone LIKE CAST(:client AS text)) "
    "ORDER BY b.starts_at, b.id LIMIT :limit OFFSET :offset"
)
_MASTERS = text(
    "SELECT id, name FROM staff WHERE business_id = :b "
    "AND (CAST(:staff AS bigint) IS NULL OR id = CAST(:staff AS bigint)) ORDER BY name, id"
)


@dataclass(frozen=True, slots=True)
class Filters:
    """What the list is asked for (already checked)."""

    start: date | None = None
    end: date | None = None
    staff_id: int | None = None
    status: str | None = None
    source: str | None = None
    client: str | None = None  # part of a client's name or phone
    page: int = 1


@dataclass(frozen=True, slots=True)
class ListedBooking:
    id: int
    start: datetime
    end: datetime
    status: str
    source: str
    service_name: dict[str, str]
    price_tiyn: int
    staff_id: int
    staff_name: str
    client_name: str | None
    client_phone: str | None


@dataclass(frozen=True, slots=True)
class BookingPage:
    rows: list[ListedBooking]
    start: date
    end: date
    page: int
    has_next: bool
    masters: list[tuple[int, str]]


def _date(value: str | None, field: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors[field] = gettext(N_("Enter a date as YYYY-MM-DD."))
        return None


def parse_filters(query: Mapping[str, str], *, need_period: bool = False) -> Filters:
    """The list's (or the export's) query, checked: a bad date, an unknown status, source or
    master id, or a period longer than a year is ``ValidationFailed`` beside its field."""
    errors: dict[str, str] = {}
    start = _date(query.get("from"), "from", errors)
    end = _date(query.get("to"), "to", errors)
    if need_period and "from" not in errors and start is None:
        errors["from"] = gettext(N_("Choose the first day."))
    if need_period and "to" not in errors and end is None:
        errors["to"] = gettext(N_("Choose the last day."))
    if start and end:
        if end < start:
            errors["to"] = gettext(N_("The last day cannot be before the first."))
        elif (end - start).days + 1 > MAX_EXPORT_DAYS:
            errors["to"] = gettext(N_("Choose a period of at most 366 days."))
    staff_id: int | None = None
    if raw := (query.get("staff") or "").strip():
        if raw.isdigit() and 0 < int(raw) <= MAX_ID:
            staff_id = int(raw)
        else:
            errors["staff"] = gettext(N_("Choose a master from the list."))
    status = (query.get("status") or "").strip() or None
    if status is not None and status not in STATUSES:
        errors["status"] = gettext(N_("Choose a status from the list."))
    source = (query.get("source") or "").strip() or None
    if source is not None and source not in SOURCES:
        errors["source"] = gettext(N_("Choose a source from the list."))
    client = " ".join((query.get("client") or "").split())[:CLIENT_MAX] or None
    raw_page = (query.get("page") or "1").strip()
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) <= MAX_PAGE else 1
    if errors:
        raise ValidationFailed(fields=errors)
    return Filters(start=start, end=end, staff_id=staff_id, status=status, source=source,
                   client=client, page=page)  # fmt: skip


def _period(filters: Filters, zone: ZoneInfo) -> tuple[date, date]:
    today = datetime.now(zone).date()
    start = filters.start or (filters.end - timedelta(days=DEFAULT_DAYS) if filters.end else today)
    end = filters.end or start + timedelta(days=DEFAULT_DAYS)
    return start, end


def _row(r: object, zone: ZoneInfo) -> ListedBooking:
    return ListedBooking(
        id=r.id, start=r.start.astimezone(zone), end=r.end.astimezone(zone),  # type: ignore[attr-defined]
        status=r.status, source=r.source, service_name=r.service_name,  # type: ignore[attr-defined]
        price_tiyn=r.price_tiyn, staff_id=r.staff_id, staff_name=r.staff_name,  # type: ignore[attr-defined]
        client_name=r.client_name, client_phone=r.client_phone,  # type: ignore[attr-defined]
    )  # fmt: skip


def _like(value: str | None) -> str | None:
    """A LIKE pattern matching the text anywhere, its own % and _ taken literally."""
    if value is None:
        return None
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _scope(by: Member, filters: Filters) -> int | None:
    """The master filter the member may use: a master only ever their own column."""
    if by.at_least("admin"):
        return filters.staff_id
    return by.staff_id or 0


async def list_bookings(db: Database, by: Member, filters: Filters) -> BookingPage:
    """One page of the business's bookings in the period, soonest first."""
    staff = _scope(by, filters)
    own = None if by.at_least("admin") else (by.staff_id or 0)
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        business = await session.get(Business, by.business_id)
        assert business is not None  # the member's business
        zone = ZoneInfo(business.timezone)
        start, end = _period(filters, zone)
        lo = datetime.combine(start, time(), tzinfo=zone)
        hi = datetime.combine(end + timedelta(days=1), time(), tzinfo=zone)
        rows = await session.execute(_ROWS, {
            "b": by.business_id, "lo": lo, "hi": hi, "staff": staff, "status": filters.status,
            "source": filters.source, "client": _like(filters.client), "limit": PAGE_SIZE + 1,
            "offset": (filters.page - 1) * PAGE_SIZE,
        })  # fmt: skip
        listed = [_row(r, zone) for r in rows]
        masters = [(m.id, m.name) for m in await session.execute(
            _MASTERS, {"b": by.business_id, "staff": own})]  # fmt: skip
    return BookingPage(rows=listed[:PAGE_SIZE], start=start, end=end, page=filters.page,
                       has_next=len(listed) > PAGE_SIZE, masters=masters)  # fmt: skip


EXPORT_LIMIT = 100_000


async def export_csv(db: Database, by: Member, filters: Filters, *, actor: Actor) -> str:
    """The period's bookings as CSV text (a byte-order mark first, so spreadsheet programs read
    Cyrillic right), headers in the current language, times in the business's zone. The export
    is audited (``bookings.export``) in the same transaction that reads it."""
    assert filters.start is not None and filters.end is not None  # parse_filters(need_period)
    staff = _scope(by, filters)
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        business = await session.get(Business, by.business_id)
        assert business is not None
        zone = ZoneInfo(business.timezone)
        lo = datetime.combine(filters.start, time(), tzinfo=zone)
        hi = datetime.combine(filters.end + timedelta(days=1), time(), tzinfo=zone)
        rows = [_row(r, zone) for r in await session.execute(_ROWS, {
            "b": by.business_id, "lo": lo, "hi": hi, "staff": staff, "status": filters.status,
            "source": filters.source, "client": _like(filters.client), "limit": EXPORT_LIMIT,
            "offset": 0,
        })]  # fmt: skip
        await audit.record(
            session, actor=actor, action="bookings.export", entity="business",
            entity_id=by.business_id, business_id=by.business_id,
            after={"from": filters.start.isoformat(), "to": filters.end.isoformat(),
                   "staff_id": staff, "status": filters.status, "source": filters.source,
                   "rows": len(rows)},
        )  # fmt: skip
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow([gettext(h) for h in (
        N_("Booking"), N_("Date"), N_("Start"), N_("End"), N_("Service"), N_("Price"),
        N_("Master"), N_("Client"), N_("Phone"), N_("Status"), N_("Source"),
    )])  # fmt: skip
    for b in rows:
        writer.writerow([
            b.id, b.start.date().isoformat(), b.start.strftime("%H:%M"), b.end.strftime("%H:%M"),
            localized(b.service_name), money(b.price_tiyn), b.staff_name, _cell(b.client_name),
            _cell(b.client_phone), gettext(STATUS_LABELS[b.status]),
            gettext(SOURCE_LABELS[b.source]),
        ])  # fmt: skip
    return out.getvalue()


def _cell(value: str | None) -> str:
    """A value a spreadsheet will not run as a formula (CSV injection)."""
    text_ = value or ""
    if text_[:1] == "+" and text_[1:].isdigit():  # a phone number in E.164: data, not a formula
        return text_
    return "'" + text_ if text_[:1] in ("=", "+", "-", "@", "\t", "\r") else text_


# --- the owner's audit view -------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50
_AUDIT = text(
    "SELECT id, seq, at, actor_account_id, actor_kind, action, entity, entity_id "
    "FROM audit_log WHERE business_id = :b ORDER BY seq DESC LIMIT :limit OFFSET :offset"
)
_PROBLEMS = text("SELECT seq, audit_id, problem FROM audit_chain_problems()")
_NAMES = text("SELECT account_id, name, email FROM pz_team_members(:b)")

ACTOR_KINDS = {
    "client": N_("Client"),
    "staff": N_("Team"),
    "operator": N_("PoZapisi support"),
    "system": N_("System"),
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    seq: int
    at: datetime
    actor_kind: str
    actor_name: str | None  # a team member's name; a client is never named here
    action: str
    entity: str
    entity_id: int | None
    broken: str | None  # the chain's problem at this entry, if any


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    page: int
    has_next: bool
    intact: bool  # the whole chain of this business verifies
    problems: list[tuple[int, str]]  # (seq, problem) of every broken link


def _entry(r: Any, zone: ZoneInfo, names: dict[int, str], broken: dict[int, str]) -> AuditEntry:
    return AuditEntry(
        id=r.id, seq=r.seq, at=r.at.astimezone(zone), actor_kind=r.actor_kind,
        actor_name=names.get(r.actor_account_id) if r.actor_kind == "staff" else None,
        action=r.action, entity=r.entity, entity_id=r.entity_id, broken=broken.get(r.seq),
    )  # fmt: skip


async def audit_trail(db: Database, by: Member, *, page: int = 1) -> AuditPage:
    """A page of the business's audit log, newest first, with the verification of its whole
    hash chain (``audit_chain_problems``: the same checks as ``audit_verify``, one chain).
    Owners only: the caller's guard says so, and the domain checks again."""
    if not by.at_least("owner"):
        raise NotFound()
    page = page if 0 < page <= MAX_PAGE else 1
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        business = await session.get(Business, by.business_id)
        assert business is not None
        zone = ZoneInfo(business.timezone)
        rows = (await session.execute(_AUDIT, {
            "b": by.business_id, "limit": AUDIT_PAGE_SIZE + 1,
            "offset": (page - 1) * AUDIT_PAGE_SIZE,
        })).all()  # fmt: skip
        problems = [(r.seq, r.problem) for r in await session.execute(_PROBLEMS)]
        names = {
            r.account_id: r.name or r.email for r in await session.execute(
                _NAMES, {"b": by.business_id})
        }  # fmt: skip
    broken = dict(problems)
    entries = [_entry(r, zone, names, broken) for r in rows[:AUDIT_PAGE_SIZE]]
    return AuditPage(entries=entries, page=page, has_next=len(rows) > AUDIT_PAGE_SIZE,
                     intact=not problems, problems=problems)  # fmt: skip
