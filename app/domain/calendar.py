"""The dashboard's calendar (issue 14): a day of the business's masters, or a week of one
master, as a grid of quarter hours; and the walk-in booking a member makes from it.

A calendar is read with a fixed number of statements whatever the number of bookings: the
business, its masters, the bookings of the date range (with their service and client names)
and the schedule (``pz_schedule``, read through the slot engine's own ``build_query`` so the
shading follows the same rules as the slots clients see). A walk-in goes through
``bookings.create_booking_in`` with no account: the one way a booking is made."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select, text

from app.db.session import Database
from app.domain import bookings, otp
from app.domain.audit import Actor
from app.domain.availability_reader import Offer, Schedule, build_query
from app.domain.errors import MAX_ID, NotFound, ValidationFailed
from app.domain.members import Member
from app.i18n import N_, gettext
from app.models import Business, Service, Staff, StaffService

VIEWS = ("day", "week")
STEP_MIN = 15
# the statuses drawn as blocks (a cancelled booking frees its time: it is not drawn)
DRAWN = ("pending", "confirmed", "completed", "no_show")
NAME_MAX = 120

_BOOKINGS = text(
    "SELECT b.id, b.staff_id, b.status, lower(b.period) AS start, upper(b.period) AS end, "
    "b.service_name, b.source, c.name AS client_name, c.phone AS client_phone FROM bookings b "
    "LEFT JOIN clients c ON c.id = b.client_id "
    "WHERE b.business_id = :b AND b.staff_id = ANY(:staff) AND b.status = ANY(:statuses) "
    "AND b.period && tstzrange(:t1, :t2) ORDER BY lower(b.period), b.id"
)
_SCHEDULE = text("SELECT CAST(pz_schedule(:b, :staff, :d1, :d2, :tz) AS text)")


@dataclass(frozen=True, slots=True)
class _Timing:
    duration_min: int = STEP_MIN
    buffer_before_min: int = 0
    buffer_after_min: int = 0


@dataclass(frozen=True, slots=True)
class Block:
    """A booking as the calendar draws it (times in the business's zone)."""

    id: int
    staff_id: int
    status: str
    start: datetime
    end: datetime
    service_name: dict[str, str]
    client_name: str | None
    client_phone: str | None

    @property
    def status_label(self) -> str:
        return gettext(bookings.STATUS_LABELS.get(self.status, self.status))


@dataclass(slots=True)
class Cell:
    """One quarter hour of one column, or (``rows`` > 1) a run of them holding bookings."""

    start: datetime
    kind: str  # "work", "off", "blocked", "closed", "booking"
    rows: int = 1
    blocks: list[Block] = field(default_factory=list)
    now: bool = False


@dataclass(frozen=True, slots=True)
class Column:
    staff_id: int
    staff_name: str
    day: date
    closed: bool
    cells: dict[int, Cell]  # by row index; rows covered by a longer cell are absent


@dataclass(frozen=True, slots=True)
class Master:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class CalendarView:
    view: str
    day: date
    days: list[date]
    today: date
    staff_id: int | None  # the master a week shows
    masters: list[Master]
    columns: list[Column]
    rows: list[time]
    previous: date
    next: date
    timezone: str


@dataclass(frozen=True, slots=True)
class Choice:
    id: int
    name: dict[str, str]


@dataclass(frozen=True, slots=True)
class NewBookingForm:
    masters: list[Master]
    services: list[Choice]
    timezone: str


def parse_query(
    raw_date: str | None, raw_view: str | None, raw_staff: str | None
) -> tuple[date | None, str, int | None]:
    """The calendar's query string (no date: the business's today), or ValidationFailed
    naming each bad parameter."""
    errors: dict[str, str] = {}
    day: date | None = None
    if raw_date:
        try:
            if len(raw_date) != 10:
                raise ValueError
            day = date.fromisoformat(raw_date)
        except ValueError:
            errors["date"] = gettext(N_("Give the date as YYYY-MM-DD."))
    view = raw_view or "day"
    if view not in VIEWS:
        errors["view"] = gettext(N_("Choose the day or the week view."))
    staff: int | None = None
    if raw_staff:
        if raw_staff.isdigit() and 1 <= int(raw_staff) <= MAX_ID:
            staff = int(raw_staff)
        else:
            errors["staff"] = gettext(N_("Choose a master from the list."))
    if errors:  # the page names what is wrong: the calendar has no form to put it beside
        raise ValidationFailed(" ".join(errors.values()), fields=errors)
    return day, view, staff


def _seconds(wall: time) -> int:
    return wall.hour * 3600 + wall.minute * 60 + wall.second


def _own_only(member: Member) -> bool:
    return not member.at_least("admin")


async def calendar(
    db: Database,
    member: Member,
    *,
    day: date | None,
    view: str = "day",
    staff_id: int | None = None,
    now: datetime | None = None,
) -> CalendarView:
    """The calendar of ``day`` (the business's today when None): every active master's column
    (a master: their own), or with ``view`` week the seven days of one master from Monday."""
    now = now or datetime.now(UTC)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        business = await s.get(Business, member.business_id)
        assert business is not None  # the member's business
        zone = ZoneInfo(business.timezone)
        today = now.astimezone(zone).date()
        day = day or today
        rows_ = await s.execute(
            select(Staff.id, Staff.name)
            .where(Staff.business_id == member.business_id, Staff.archived_at.is_(None))
            .order_by(Staff.sort_order, Staff.id)
        )
        masters = [Master(r.id, r.name) for r in rows_]
        if _own_only(member):
            masters = [m for m in masters if m.id == member.staff_id]
        known = {m.id for m in masters}
        if staff_id is not None and staff_id not in known:
            raise NotFound(gettext(N_("There is no such master here.")))
        if view == "week":
            first = day - timedelta(days=day.weekday())
            days = [first + timedelta(days=i) for i in range(7)]
            chosen = staff_id or (masters[0].id if masters else None)
            shown = [m for m in masters if m.id == chosen]
            step = timedelta(days=7)
        else:
            days = [day]
            shown = [m for m in masters if staff_id is None or m.id == staff_id]
            chosen = staff_id
            step = timedelta(days=1)
        ids = [m.id for m in shown]
        begin = datetime.combine(days[0], time(0), tzinfo=zone)
        end = datetime.combine(days[-1] + timedelta(days=1), time(0), tzinfo=zone)
        found = await s.execute(
            _BOOKINGS,
            {"b": business.id, "staff": ids, "statuses": list(DRAWN), "t1": begin, "t2": end},
        )
        blocks = [
            Block(
                id=r.id,
                staff_id=r.staff_id,
                status=r.status,
                start=r.start.astimezone(zone),
                end=r.end.astimezone(zone),
                service_name=r.service_name,
                client_name=r.client_name,
                client_phone=r.client_phone,
            )
            for r in found
        ]
        raw = await s.scalar(
            _SCHEDULE,
            {"b": business.id, "staff": ids, "d1": days[0], "d2": days[-1], "tz": business.timezone},
        )  # fmt: skip
    schedule = msgspec.json.decode(raw, type=Schedule)
    query = build_query(
        business, _Timing(), {i: Offer(i, STEP_MIN, 0) for i in ids}, schedule, ids, days[0],
        days[-1], now,
    )  # fmt: skip
    hours: dict[tuple[int, date], list[tuple[time, time]]] = {}
    closed: set[tuple[int, date]] = set()
    for staff in query.staff:
        for d in days:
            if d in query.holidays:
                closed.add((staff.staff_id, d))
                hours[(staff.staff_id, d)] = []
                continue
            found_hours = staff.overrides.get(d)
            if found_hours is None:
                weekday = query.works_as.get(d, d.weekday()) if query.works_as else d.weekday()
                found_hours = staff.weekly_hours.get(weekday, [])
            hours[(staff.staff_id, d)] = list(found_hours)
    # each master's busy times (time off, other bookings' buffers), looked up by column: a scan
    # of every master's for every quarter hour made a day of 10 masters cost 14,000 comparisons
    busy: dict[int, list[tuple[datetime, datetime]]] = {}
    for st, busy_from, busy_to in schedule.blocked:
        busy.setdefault(st, []).append(
            (datetime.fromtimestamp(busy_from, zone), datetime.fromtimestamp(busy_to, zone))
        )

    # the hours shown: the working day's, widened to every booking, at least 09:00-18:00
    first_hour, last_hour = 9, 18
    for intervals in hours.values():
        for opens, closes in intervals:
            first_hour = min(first_hour, opens.hour)
            last_hour = max(
                last_hour, 24 if closes == time(0) else closes.hour + (closes.minute > 0)
            )
    for b in blocks:
        if b.start.date() in days:
            first_hour = min(first_hour, b.start.hour)
        last_hour = max(
            last_hour, 24 if b.end.date() > b.start.date() else b.end.hour + (b.end.minute > 0)
        )
    last_hour = min(last_hour, 24)
    per_hour = 60 // STEP_MIN
    count = (last_hour - first_hour) * per_hour
    times = [
        (datetime.combine(date.min, time(first_hour)) + timedelta(minutes=STEP_MIN * i)).time()
        for i in range(count)
    ]

    def column(master: Master, d: date) -> Column:
        cells: dict[int, Cell] = {}
        origin = datetime.combine(d, time(first_hour), tzinfo=zone)
        working = hours.get((master.id, d), [])
        mine = [
            b
            for b in blocks
            if b.staff_id == master.id
            and b.start < origin + timedelta(hours=last_hour - first_hour)
            and b.end > origin
        ]
        current: Cell | None = None
        current_end = current_row = 0
        for b in mine:
            start_row = max(0, int((b.start - origin).total_seconds() // (STEP_MIN * 60)))
            end_row = min(count, -(-int((b.end - origin).total_seconds()) // (STEP_MIN * 60)))
            end_row = max(end_row, start_row + 1)
            if current is not None and start_row < current_end:
                current.blocks.append(b)
                if end_row > current_end:
                    current_end = end_row
                    current.rows = current_end - current_row
                continue
            current = Cell(start=origin + timedelta(minutes=STEP_MIN * start_row), kind="booking",
                           rows=end_row - start_row, blocks=[b])  # fmt: skip
            current_row = start_row
            cells[start_row] = current
            current_end = end_row
        covered = {r for row, c in cells.items() for r in range(row, row + c.rows)}
        # the quarter hours a busy time overlaps: row r (from origin + r steps to the next)
        # overlaps [a, b) when a < its end and b > its start
        blocked_rows: set[int] = set()
        for a, b_ in busy.get(master.id, ()):
            first = max(0, math.floor((a - origin).total_seconds() / (STEP_MIN * 60)))
            last = min(count, math.ceil((b_ - origin).total_seconds() / (STEP_MIN * 60)))
            blocked_rows.update(range(first, last))
        # the quarter hours starting inside working hours (opens <= start < closes; closing at
        # 00:00 is the day's end); row r starts r steps after first_hour on the wall clock
        working_rows: set[int] = set()
        for opens, closes in working:
            closing = 24 * 3600 if closes == time(0) else _seconds(closes)
            first = max(0, math.ceil((_seconds(opens) - first_hour * 3600) / (STEP_MIN * 60)))
            last = min(count, math.ceil((closing - first_hour * 3600) / (STEP_MIN * 60)))
            working_rows.update(range(first, last))
        for row in range(count):
            if row in covered:
                continue
            at = origin + timedelta(minutes=STEP_MIN * row)
            if (master.id, d) in closed:
                kind = "closed"
            elif row not in working_rows:
                kind = "off"
            elif row in blocked_rows:
                kind = "blocked"
            else:
                kind = "work"
            cells[row] = Cell(start=at, kind=kind)
        local_now = now.astimezone(zone)
        if d == local_now.date() and origin <= local_now < origin + timedelta(
            minutes=STEP_MIN * count
        ):
            row = int((local_now - origin).total_seconds() // (STEP_MIN * 60))
            while row not in cells and row > 0:
                row -= 1
            if row in cells:
                cells[row].now = True
        return Column(master.id, master.name, d, (master.id, d) in closed, cells)

    columns = [column(m, d) for m in shown for d in days]
    return CalendarView(
        view=view, day=day, days=days, today=today, staff_id=chosen, masters=masters,
        columns=columns, rows=times, previous=day - step, next=day + step,
        timezone=business.timezone,
    )  # fmt: skip


async def new_booking_form(db: Database, member: Member) -> NewBookingForm:
    """What the walk-in form offers: the masters the member may book for, the live services."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        business = await s.get(Business, member.business_id)
        assert business is not None
        staff = await s.execute(
            select(Staff.id, Staff.name)
            .where(Staff.business_id == member.business_id, Staff.archived_at.is_(None))
            .order_by(Staff.sort_order, Staff.id)
        )
        masters = [Master(r.id, r.name) for r in staff]
        if _own_only(member):
            masters = [m for m in masters if m.id == member.staff_id]
        services = await s.execute(
            select(Service.id, Service.name)
            .where(Service.business_id == member.business_id, Service.archived_at.is_(None))
            .order_by(Service.id)
        )
        return NewBookingForm(masters, [Choice(r.id, r.name) for r in services], business.timezone)


def _id(form: Mapping[str, str], name: str, errors: dict[str, str], message: str) -> int:
    raw = (form.get(name) or "").strip()
    if raw.isdigit() and 1 <= int(raw) <= MAX_ID:
        return int(raw)
    errors[name] = gettext(message)
    return 0


def parse_walk_in(form: Mapping[str, str]) -> bookings.BookingRequest:
    """The walk-in form as a booking request, or ValidationFailed with every bad field."""
    errors: dict[str, str] = {}
    service_id = _id(form, "service_id", errors, N_("Choose a service."))
    staff_id = _id(form, "staff_id", errors, N_("Choose a master."))
    start = datetime.min
    raw_start = (form.get("start") or "").strip()
    try:
        if not 0 < len(raw_start) <= 40:
            raise ValueError
        start = datetime.fromisoformat(raw_start)
        if start.tzinfo is None:
            errors["start"] = gettext(N_("Give the time with its UTC offset."))
    except ValueError:
        errors["start"] = gettext(N_("Give the date and time, e.g. 2026-05-14T10:00+05:00."))
    name = " ".join((form.get("client_name") or "").split())
    if not name:
        errors["client_name"] = gettext(N_("Enter the client's name."))
    elif len(name) > NAME_MAX:
        errors["client_name"] = gettext(N_("At most 120 characters."))
    phone = ""
    try:
        phone = otp.normalize_phone(form.get("client_phone") or "", field="client_phone")
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if errors:
        raise ValidationFailed(fields=errors)
    return bookings.BookingRequest(
        service_id=service_id, staff_id=staff_id, start=start, source="walk_in",
        client_name=name, client_phone=phone,
    )  # fmt: skip


async def book_walk_in(
    db: Database, member: Member, form: Mapping[str, str], *, actor: Actor
) -> bookings.BookingMade:
    """A booking the business makes for a client in front of it (or on the phone): owners and
    admins for any master, a master for themself only (another master's column is NotFound).
    A time no longer free is ``SlotTaken`` (409)."""
    wanted = parse_walk_in(form)
    if _own_only(member) and wanted.staff_id != member.staff_id:
        raise ValidationFailed(fields={"staff_id": gettext(N_("You can book only for yourself."))})
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        business = await s.get(Business, member.business_id)
        assert business is not None
        performs = await s.scalar(
            select(StaffService.staff_id).where(
                StaffService.business_id == member.business_id,
                StaffService.staff_id == wanted.staff_id,
                StaffService.service_id == wanted.service_id,
            )
        )
        ours = await s.scalar(
            select(Staff.id).where(
                Staff.business_id == member.business_id, Staff.id == wanted.staff_id
            )
        )
        if performs is None and ours is not None:
            # one of this business's masters who does not do this service: bad input, beside
            # the field (another business's master or service stays NotFound)
            message = gettext(N_("This master does not perform this service."))
            raise ValidationFailed(fields={"service_id": message})
        booking, _ = await bookings.create_booking_in(
            s, business, wanted, account=None, actor=actor
        )
        zone = ZoneInfo(business.timezone)
        begin, end = booking.period.lower, booking.period.upper
        assert begin is not None and end is not None  # a booking's period is bounded
        return bookings.BookingMade(
            id=booking.id, status=booking.status, start=begin.astimezone(zone),
            end=end.astimezone(zone), staff_id=booking.staff_id,
            service_id=booking.service_id, created=True,
        )  # fmt: skip
