"""The client Mini App, ``/app/``: pick a service, a master, a day and a time; book; manage bookings.

Pages are whole documents; htmx swaps partials where one URL serves both (``Vary: HX-Request``).
Everything works without JavaScript; inside Telegram ``static/miniapp.js`` adds the native chrome.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import set_context
from app.domain import bookings as booking_service
from app.domain import messages
from app.domain.availability import Slot, find_slots
from app.domain.catalog import active_services, active_staff
from app.domain.consent import has_valid_consent
from app.domain.errors import DomainError, NotFound, SlotTaken, ValidationFailed
from app.domain.schedules import business_by_slug, load_query, service_offers
from app.i18n import N_, gettext, localized
from app.models import Booking, Business, Staff
from app.routes.deps import DB, AppSettings
from app.routes.view import (
    Form,
    actor_of,
    consent_redirect,
    error_page,
    load_viewer,
    page_context,
    require_viewer,
    see_other,
)
from app.security.web import Viewer

DAYS_SHOWN = 14
MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class DayOption:
    day: date
    count: int
    selected: bool


@dataclass(frozen=True, slots=True)
class TimeOption:
    start: datetime
    staff_id: int | None  # None: any free master


def _parse_staff(value: str | None) -> int | None:
    if value in (None, "", "any"):
        return None
    assert value is not None
    if value.isdigit() and 1 <= int(value) <= MAX_ID:
        return int(value)
    raise ValidationFailed(fields={"staff": gettext(N_("Give a master's id or “any”."))})


def _parse_day(value: str | None, today: date) -> date:
    if not value:
        return today
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed(fields={"date": gettext(N_("This value is not valid."))}) from exc
    if not today <= day < today + timedelta(days=DAYS_SHOWN):
        return today
    return day


def _parse_start(value: str | None) -> datetime:
    try:
        start = datetime.fromisoformat(value or "")
    except ValueError as exc:
        raise ValidationFailed(fields={"start": gettext(N_("This value is not valid."))}) from exc
    if start.tzinfo is None:
        raise ValidationFailed(fields={"start": gettext(N_("Give the time with its UTC offset."))})
    return start


def _times(slots: list[Slot], staff_id: int | None) -> list[TimeOption]:
    """One button per start time; for "any master" the first free master is decided at booking."""
    if staff_id is not None:
        return [TimeOption(s.start, s.staff_id) for s in slots]
    unique: OrderedDict[datetime, TimeOption] = OrderedDict()
    for s in slots:
        unique.setdefault(s.start, TimeOption(s.start, None))
    return list(unique.values())


async def _picker(
    session: AsyncSession,
    business: Business,
    service_id: int,
    staff_param: str | None,
    day_param: str | None,
) -> dict[str, Any]:
    """Everything the master/day/time picker shows, for a service."""
    staff_id = _parse_staff(staff_param)
    offers = await service_offers(session, business.id, service_id)
    if staff_id is not None and staff_id not in offers.offers:
        raise NotFound(gettext(N_("This master does not perform this service.")))
    tz = ZoneInfo(business.timezone)
    now = datetime.now(UTC)
    today = now.astimezone(tz).date()
    staff_ids = [staff_id] if staff_id is not None else list(offers.offers)
    slots: list[Slot] = []
    if staff_ids:
        query = await load_query(
            session, business, offers, staff_ids, today, today + timedelta(days=DAYS_SHOWN - 1), now
        )
        slots = find_slots(query)
    by_day: dict[date, list[Slot]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.date(), []).append(slot)
    selected = _parse_day(day_param, today)
    if not day_param and selected not in by_day and by_day:
        selected = min(by_day)  # open on the first day that has a free time
    days = [
        DayOption(day=d, count=len(_times(by_day.get(d, []), staff_id)), selected=d == selected)
        for d in (today + timedelta(days=i) for i in range(DAYS_SHOWN))
    ]
    masters = [m for m in await active_staff(session, business.id) if m.id in offers.offers]
    return {
        "business": business,
        "service": offers.service,
        "offers": offers.offers,
        "masters": masters,
        "staff_id": staff_id,
        "staff_param": str(staff_id) if staff_id else "any",
        "days": days,
        "day": selected,
        "times": _times(by_day.get(selected, []), staff_id),
    }


# --- browsing ---------------------------------------------------------------------------------


@get("/app/b/{slug:str}", include_in_schema=False)
async def business_page(
    request: Request[Any, Any, Any], slug: FromPath[str], db: DB, settings: AppSettings
) -> Template:
    async with db.transaction() as session:
        viewer = await load_viewer(session, request, settings)
        business = await business_by_slug(session, slug)
        entries = await active_services(session, business.id)
    categories: OrderedDict[str, list[Any]] = OrderedDict()
    for entry in entries:
        if entry.staff_ids:
            categories.setdefault(
                localized(entry.service.category) if entry.service.category else "", []
            ).append(entry)
    return Template(
        "miniapp/business.html",
        context={
            **page_context(request, viewer),
            "business": business,
            "categories": categories,
        },
    )


@get("/app/b/{slug:str}/s/{service_id:int}", include_in_schema=False)
async def service_page(
    request: HTMXRequest,
    slug: FromPath[str],
    service_id: FromPath[int],
    db: DB,
    settings: AppSettings,
    staff: Annotated[str | None, QueryParameter(max_length=20)] = None,
    day: Annotated[str | None, QueryParameter(name="date", max_length=10)] = None,
) -> Template:
    async with db.transaction() as session:
        viewer = await load_viewer(session, request, settings)
        business = await business_by_slug(session, slug)
        await set_context(session, business_id=business.id)
        picker = await _picker(session, business, service_id, staff, day)
    context = {
        **page_context(request, viewer),
        **picker,
        "back_url": f"/app/b/{slug}",
        "mode": "book",
    }
    return Template("miniapp/service.html", context=context)


@get("/app/b/{slug:str}/s/{service_id:int}/times", include_in_schema=False)
async def times_partial(
    request: HTMXRequest,
    slug: FromPath[str],
    service_id: FromPath[int],
    db: DB,
    settings: AppSettings,
    staff: Annotated[str | None, QueryParameter(max_length=20)] = None,
    day: Annotated[str | None, QueryParameter(name="date", max_length=10)] = None,
) -> Response[Any]:
    """The slot grid for one day (htmx); a plain request gets the whole page instead."""
    if not request.htmx:
        query = urlencode({k: v for k, v in (("staff", staff), ("date", day)) if v})
        return Redirect(f"/app/b/{slug}/s/{service_id}?{query}")
    async with db.transaction() as session:
        viewer = await load_viewer(session, request, settings)
        business = await business_by_slug(session, slug)
        await set_context(session, business_id=business.id)
        picker = await _picker(session, business, service_id, staff, day)
    context = {**page_context(request, viewer), **picker, "mode": "book"}
    return Template("miniapp/partials/times.html", context=context, headers={"Vary": "HX-Request"})


# --- booking ----------------------------------------------------------------------------------


async def _confirm_context(
    session: AsyncSession,
    business: Business,
    service_id: int,
    staff_param: str | None,
    start: datetime,
) -> dict[str, Any]:
    staff_id = _parse_staff(staff_param)
    offers = await service_offers(session, business.id, service_id)
    if staff_id is not None and staff_id not in offers.offers:
        raise NotFound()
    offer = (
        offers.offers[staff_id]
        if staff_id is not None
        else next(iter(offers.offers.values()), None)
    )
    if offer is None:
        raise NotFound()
    master = None
    if staff_id is not None:
        master = (await session.execute(select(Staff).where(Staff.id == staff_id))).scalar_one()
    tz = ZoneInfo(business.timezone)
    return {
        "business": business,
        "service": offers.service,
        "offer": offer,
        "master": master,
        "staff_param": str(staff_id) if staff_id else "any",
        "start": start.astimezone(tz),
    }


@get("/app/b/{slug:str}/confirm", include_in_schema=False)
async def confirm_page(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db: DB,
    settings: AppSettings,
    service: Annotated[int, QueryParameter(ge=1, le=MAX_ID)],
    start: Annotated[str, QueryParameter(max_length=40)],
    staff: Annotated[str | None, QueryParameter(max_length=20)] = None,
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        if not await has_valid_consent(session, viewer.account.id):
            return consent_redirect(str(request.url.path) + "?" + request.url.query)
        business = await business_by_slug(session, slug)
        context = await _confirm_context(session, business, service, staff, _parse_start(start))
    return Template(
        "miniapp/confirm.html",
        context={**page_context(request, viewer), **context,
                 "back_url": f"/app/b/{slug}/s/{service}?staff={context['staff_param']}"},
    )  # fmt: skip


@post("/app/b/{slug:str}/book", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def book(
    request: HTMXRequest,
    slug: FromPath[str],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        if not await has_valid_consent(session, viewer.account.id):
            return consent_redirect(f"/app/b/{slug}")
        business = await business_by_slug(session, slug)
        await set_context(session, business_id=business.id, account_id=viewer.account.id)
        try:
            service_id = int(data.get("service_id", ""))
        except ValueError as exc:
            raise ValidationFailed(
                fields={"service_id": gettext(N_("This value is not valid."))}
            ) from exc
        start = _parse_start(data.get("start"))
        comment = (data.get("comment") or "").strip() or None
        name = (data.get("name") or "").strip()[:120] or None
        if name and not viewer.account.name:
            viewer.account.name = name
        try:
            async with session.begin_nested():
                booking, _created = await booking_service.create_booking(
                    session,
                    business,
                    booking_service.BookingRequest(
                        service_id=service_id,
                        staff_id=_parse_staff(data.get("staff")),
                        start=start,
                        comment=comment,
                        source="mini_app",
                        client_name=name,
                    ),
                    account=viewer.account,
                    actor=actor_of(request, viewer),
                )
        except (SlotTaken, ValidationFailed) as error:
            context = await _confirm_context(
                session, business, service_id, data.get("staff"), start
            )
            return Template(
                "miniapp/confirm.html",
                context={**page_context(request, viewer), **context, "error": error,
                         "comment": comment or "", "name": name or ""},
                status_code=error.status,
            )  # fmt: skip
    return see_other(request, f"/app/bookings/{booking.id}?new=1")


# --- my bookings ------------------------------------------------------------------------------


@get("/app/bookings", include_in_schema=False)
async def my_bookings(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        await set_context(session, account_id=viewer.account.id)
        items = await booking_service.bookings_of_account(session, viewer.account.id)
    now = datetime.now(UTC)
    upcoming = sorted((b for b in items if b.is_live and b.end > now), key=lambda b: b.start)
    past = [b for b in items if not (b.is_live and b.end > now)]
    return Template(
        "miniapp/bookings.html",
        context={**page_context(request, viewer), "upcoming": upcoming, "past": past},
    )


async def _own_booking(
    session: AsyncSession, viewer: Viewer, booking_id: int
) -> tuple[Booking, Business]:
    await set_context(session, account_id=viewer.account.id)
    booking = await booking_service.get_booking(session, booking_id, account_id=viewer.account.id)
    await set_context(session, business_id=booking.business_id)
    business = (
        await session.execute(select(Business).where(Business.id == booking.business_id))
    ).scalar_one()
    return booking, business


@get("/app/bookings/{booking_id:int}", include_in_schema=False)
async def booking_page(
    request: Request[Any, Any, Any], booking_id: FromPath[int], db: DB, settings: AppSettings
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        booking, business = await _own_booking(session, viewer, _bounded(booking_id))
        master = (
            await session.execute(select(Staff).where(Staff.id == booking.staff_id))
        ).scalar_one()
        thread = await messages.thread(session, booking)
        await messages.mark_read_by_client(session, booking)
    now = datetime.now(UTC)
    deadline = booking_service.cancel_deadline(booking, business)
    tz = ZoneInfo(business.timezone)
    assert booking.period.lower is not None
    return Template(
        "miniapp/booking.html",
        context={
            **page_context(request, viewer),
            "booking": booking,
            "business": business,
            "master": master,
            "start": booking.period.lower.astimezone(tz),
            "is_live": booking.status in ("pending", "confirmed") and booking.period.lower > now,
            "can_change": booking.status in ("pending", "confirmed") and now <= deadline,
            "deadline": deadline.astimezone(tz),
            "is_new": request.query_params.get("new") == "1",
            "messages": thread,
            "back_url": "/app/bookings",
        },
    )


def _bounded(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound()
    return value


@post(
    "/app/bookings/{booking_id:int}/cancel", include_in_schema=False, status_code=HTTP_303_SEE_OTHER
)
async def cancel_booking(
    request: Request[Any, Any, Any], booking_id: FromPath[int], db: DB, settings: AppSettings
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        booking, business = await _own_booking(session, viewer, _bounded(booking_id))
        try:
            async with session.begin_nested():
                await booking_service.cancel_booking(
                    session, business, booking, by="client", actor=actor_of(request, viewer)
                )
        except DomainError as error:
            return error_page(request, settings, viewer, error, f"/app/bookings/{booking.id}")
    return see_other(request, f"/app/bookings/{booking_id}")


@get("/app/bookings/{booking_id:int}/reschedule", include_in_schema=False)
async def reschedule_page(
    request: HTMXRequest,
    booking_id: FromPath[int],
    db: DB,
    settings: AppSettings,
    staff: Annotated[str | None, QueryParameter(max_length=20)] = None,
    day: Annotated[str | None, QueryParameter(name="date", max_length=10)] = None,
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        booking, business = await _own_booking(session, viewer, _bounded(booking_id))
        picker = await _picker(
            session, business, booking.service_id, staff or str(booking.staff_id), day
        )
    context = {**page_context(request, viewer), **picker, "mode": "reschedule", "booking": booking,
               "back_url": f"/app/bookings/{booking.id}"}  # fmt: skip
    template = (
        "miniapp/partials/times.html"
        if request.htmx and request.htmx.target == "times"
        else "miniapp/service.html"
    )
    return Template(template, context=context, headers={"Vary": "HX-Request"})


@post(
    "/app/bookings/{booking_id:int}/reschedule",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
)
async def reschedule(
    request: Request[Any, Any, Any],
    booking_id: FromPath[int],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        booking, business = await _own_booking(session, viewer, _bounded(booking_id))
        await set_context(session, business_id=business.id, account_id=viewer.account.id)
        try:
            async with session.begin_nested():
                new_booking = await booking_service.reschedule_booking(
                    session,
                    business,
                    booking,
                    new_start=_parse_start(data.get("start")),
                    new_staff_id=_parse_staff(data.get("staff")),
                    by="client",
                    actor=actor_of(request, viewer),
                    account=viewer.account,
                )
        except DomainError as error:
            return error_page(
                request, settings, viewer, error, f"/app/bookings/{booking.id}/reschedule"
            )
    return see_other(request, f"/app/bookings/{new_booking.id}?new=1")


@get("/app/bookings/{booking_id:int}/calendar.ics", include_in_schema=False)
async def booking_ics(
    request: Request[Any, Any, Any], booking_id: FromPath[int], db: DB, settings: AppSettings
) -> Response[Any]:
    from icalendar import Calendar, Event

    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        booking, business = await _own_booking(session, viewer, _bounded(booking_id))
    calendar = Calendar()
    calendar.add("prodid", "-//PoZapisi//pozapisi.kz//")
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", f"{booking.public_code}@pozapisi.kz")
    event.add("summary", f"{localized(booking.service_name)} — {business.name}")
    event.add("dtstart", booking.period.lower)
    event.add("dtend", booking.period.upper)
    event.add("dtstamp", datetime.now(UTC))
    if business.address:
        event.add("location", business.address)
    event.add("status", "CANCELLED" if booking.status == "cancelled" else "CONFIRMED")
    calendar.add_component(event)
    return Response(
        calendar.to_ical(),
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="pozapisi-{booking.public_code}.ics"'
        },
    )


@get("/app/bookings/{booking_id:int}/messages", include_in_schema=False)
async def booking_messages(
    request: HTMXRequest, booking_id: FromPath[int], db: DB, settings: AppSettings
) -> Response[Any]:
    """The thread as a partial; the booking page polls it so new messages appear by themselves."""
    if not request.htmx:
        return Redirect(f"/app/bookings/{booking_id}")
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        booking, _business = await _own_booking(session, viewer, _bounded(booking_id))
        items = await messages.thread(session, booking)
        await messages.mark_read_by_client(session, booking)
    return Template(
        "miniapp/partials/messages.html",
        context={**page_context(request, viewer), "booking": booking, "messages": items},
        headers={"Vary": "HX-Request"},
    )


@post(
    "/app/bookings/{booking_id:int}/messages",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
)
async def post_message(
    request: HTMXRequest,
    booking_id: FromPath[int],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        booking, _business = await _own_booking(session, viewer, _bounded(booking_id))
        error = None
        try:
            async with session.begin_nested():
                await messages.post_from_client(
                    session, booking, account_id=viewer.account.id, body=data.get("body", "")
                )
        except ValidationFailed as failed:
            error = failed
        if not request.htmx:
            if error:
                return error_page(request, settings, viewer, error, f"/app/bookings/{booking.id}")
            return see_other(request, f"/app/bookings/{booking.id}#messages")
        items = await messages.thread(session, booking)
    return Template(
        "miniapp/partials/messages.html",
        context={**page_context(request, viewer), "booking": booking, "messages": items, "error": error,
                 "draft": data.get("body", "") if error else ""},
        status_code=422 if error else 200,
    )  # fmt: skip


ROUTES = [
    booking_messages,
    post_message,
    business_page,
    service_page,
    times_partial,
    confirm_page,
    book,
    my_bookings,
    booking_page,
    cancel_booking,
    reschedule_page,
    reschedule,
    booking_ics,
]
