"""The client Mini App, ``/app/``: pick a service, a master, a day and a time; book; manage bookings.

Each handler parses, is given the viewer by its dependency (``app.security.web``), makes one
domain call and renders. Pages are whole documents; htmx swaps partials where one URL serves both
(``Vary: HX-Request``). Everything works without JavaScript; inside Telegram
``static/miniapp.js`` adds the native chrome.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_204_NO_CONTENT, HTTP_303_SEE_OTHER

from app import links
from app.domain import bookings, catalog, choices, messages
from app.domain.accounts import ByAccount
from app.domain.availability import Slot
from app.domain.errors import ConsentRequired, DomainError, SlotTaken, ValidationFailed
from app.i18n import N_, gettext, localized
from app.routes.deps import DB, MaybeSignedIn, SignedIn
from app.routes.params import MAX_ID, PathId, staff_choice
from app.routes.rendering import Form, consent_redirect, error_page, page_context, see_other
from app.security.limits import limited_viewer
from app.security.web import actor_of


@dataclass(frozen=True, slots=True)
class DayOption:
    day: date
    count: int
    selected: bool


@dataclass(frozen=True, slots=True)
class TimeOption:
    start: datetime
    staff_id: int | None  # None: any free master


def _parse_day(value: str | None) -> date | None:
    """The ``date`` parameter: None when absent (the first day with a free time is shown)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed(fields={"date": gettext(N_("This value is not valid."))}) from exc


def _parse_start(value: str | None) -> datetime:
    try:
        start = datetime.fromisoformat(value or "")
    except ValueError as exc:
        raise ValidationFailed(fields={"start": gettext(N_("This value is not valid."))}) from exc
    if start.tzinfo is None:
        raise ValidationFailed(fields={"start": gettext(N_("Give the time with its UTC offset."))})
    return start


def _parse_id(value: str | None, field: str) -> int:
    if value and value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID:
        return int(value)
    raise ValidationFailed(fields={field: gettext(N_("This value is not valid."))})


def _times(slots: list[Slot], staff_id: int | None) -> list[TimeOption]:
    """One button per start time; for "any master" the first free master is decided at booking."""
    if staff_id is not None:
        return [TimeOption(s.start, s.staff_id) for s in slots]
    unique: OrderedDict[datetime, TimeOption] = OrderedDict()
    for s in slots:
        unique.setdefault(s.start, TimeOption(s.start, None))
    return list(unique.values())


def _picker(found: choices.Choices, staff_id: int | None) -> dict[str, Any]:
    """Everything the master/day/time picker shows, for a service."""
    days = [
        DayOption(day=d, count=found.counts.get(d, 0), selected=d == found.day)
        for d in (found.today + timedelta(days=i) for i in range(found.days))
    ]
    return {
        "business": found.business,
        "service": found.service,
        "offers": found.offers,
        "masters": found.masters,
        "staff_id": staff_id,
        "staff_param": str(staff_id) if staff_id else "any",
        "days": days,
        "day": found.day,
        "times": _times(found.slots, staff_id),
    }


# --- browsing ---------------------------------------------------------------------------------


@get(links.BUSINESS_PAGE, include_in_schema=False, name="miniapp:business")
async def business_page(
    request: Request[Any, Any, Any], slug: FromPath[str], db: DB, maybe_viewer: MaybeSignedIn
) -> Template:
    shop = await catalog.storefront(db, slug)
    categories: OrderedDict[str, list[Any]] = OrderedDict()
    for entry in shop.services:
        if entry.staff_ids:
            categories.setdefault(
                localized(entry.service.category) if entry.service.category else "", []
            ).append(entry)
    return Template(
        "miniapp/business.html",
        context={**page_context(request, maybe_viewer), "business": shop.business,
                 "categories": categories},
    )  # fmt: skip


@get("/b/{slug:str}/s/{service_id:int}", include_in_schema=False, name="miniapp:service")
async def service_page(
    request: HTMXRequest,
    slug: FromPath[str],
    service_id: PathId,
    db: DB,
    maybe_viewer: MaybeSignedIn,
    staff: Annotated[str | None, QueryParameter(max_length=20)] = None,
    day: Annotated[str | None, QueryParameter(name="date", max_length=10)] = None,
) -> Template:
    staff_id = staff_choice(staff)
    found = await choices.service_choices(db, slug, service_id, staff_id, _parse_day(day))
    context = {
        **page_context(request, maybe_viewer),
        **_picker(found, staff_id),
        "back_url": request.app.route_reverse("miniapp:business", slug=slug),
        "mode": "book",
    }
    return Template("miniapp/service.html", context=context)


@get("/b/{slug:str}/s/{service_id:int}/times", include_in_schema=False, name="miniapp:times")
async def times_partial(
    request: HTMXRequest,
    slug: FromPath[str],
    service_id: PathId,
    db: DB,
    maybe_viewer: MaybeSignedIn,
    staff: Annotated[str | None, QueryParameter(max_length=20)] = None,
    day: Annotated[str | None, QueryParameter(name="date", max_length=10)] = None,
) -> Response[Any]:
    """The slot grid for one day (htmx); a plain request gets the whole page instead."""
    if not request.htmx:
        query = urlencode({k: v for k, v in (("staff", staff), ("date", day)) if v})
        page = request.app.route_reverse("miniapp:service", slug=slug, service_id=service_id)
        return Redirect(f"{page}?{query}")
    staff_id = staff_choice(staff)
    found = await choices.service_choices(db, slug, service_id, staff_id, _parse_day(day))
    context = {**page_context(request, maybe_viewer), **_picker(found, staff_id),
               "mode": "book"}  # fmt: skip
    return Template("miniapp/partials/times.html", context=context, headers={"Vary": "HX-Request"})


# --- booking ----------------------------------------------------------------------------------


def _summary_context(summary: choices.Summary) -> dict[str, Any]:
    return {
        "business": summary.business,
        "service": summary.service,
        "offer": summary.offer,
        "master": summary.master,
        "staff_param": str(summary.master.id) if summary.master else "any",
        "start": summary.start,
    }


@get("/b/{slug:str}/confirm", include_in_schema=False, name="miniapp:confirm")
async def confirm_page(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db: DB,
    viewer: SignedIn,
    service: Annotated[int, QueryParameter(ge=1, le=MAX_ID)],
    start: Annotated[str, QueryParameter(max_length=40)],
    staff: Annotated[str | None, QueryParameter(max_length=20)] = None,
) -> Response[Any]:
    try:
        summary = await choices.booking_summary(
            db, slug, service, staff_choice(staff), _parse_start(start),
            by=ByAccount(viewer.account.id),
        )  # fmt: skip
    except ConsentRequired:
        return consent_redirect(request, str(request.url.path) + "?" + request.url.query)
    context = _summary_context(summary)
    back = request.app.route_reverse("miniapp:service", slug=slug, service_id=service)
    return Template(
        "miniapp/confirm.html",
        context={**page_context(request, viewer), **context,
                 "back_url": f"{back}?staff={context['staff_param']}"},
    )  # fmt: skip


@post(
    "/b/{slug:str}/book",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="miniapp:book",
    dependencies={"viewer": limited_viewer("booking")},
)
async def book(
    request: HTMXRequest,
    slug: FromPath[str],
    db: DB,
    viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    service_id = _parse_id(data.get("service_id"), "service_id")
    staff_id = staff_choice(data.get("staff"))
    start = _parse_start(data.get("start"))
    comment = (data.get("comment") or "").strip() or None
    name = (data.get("name") or "").strip()[:120] or None
    key = (data.get("idempotency_key") or "").strip()[:80] or None
    wanted = bookings.BookingRequest(
        service_id=service_id, staff_id=staff_id, start=start, comment=comment,
        source="mini_app", client_name=name, idempotency_key=key,
    )  # fmt: skip
    try:
        made = await bookings.create_booking(
            db, slug, wanted, client=ByAccount(viewer.account.id),
            actor=actor_of(request, viewer.account.id),
        )  # fmt: skip
    except ConsentRequired:
        return consent_redirect(request, request.app.route_reverse("miniapp:business", slug=slug))
    except (SlotTaken, ValidationFailed) as error:
        summary = await choices.booking_summary(
            db, slug, service_id, staff_id, start, by=ByAccount(viewer.account.id)
        )
        return Template(
            "miniapp/confirm.html",
            context={**page_context(request, viewer), **_summary_context(summary),
                     "error": error, "comment": comment or "", "name": name or ""},
            status_code=error.status,
        )  # fmt: skip
    page = request.app.route_reverse("miniapp:booking", booking_id=made.id)
    return see_other(request, f"{page}?new=1")


# --- my bookings ------------------------------------------------------------------------------


@get("/bookings", include_in_schema=False, name="miniapp:bookings")
async def my_bookings(request: Request[Any, Any, Any], db: DB, viewer: SignedIn) -> Response[Any]:
    items = await bookings.client_bookings(db, ByAccount(viewer.account.id))
    now = datetime.now(UTC)
    upcoming = sorted((b for b in items if b.is_live and b.end > now), key=lambda b: b.start)
    past = [b for b in items if not (b.is_live and b.end > now)]
    return Template(
        "miniapp/bookings.html",
        context={**page_context(request, viewer), "upcoming": upcoming, "past": past},
    )


@get(links.BOOKING_PAGE, include_in_schema=False, name="miniapp:booking")
async def booking_page(
    request: Request[Any, Any, Any], booking_id: PathId, db: DB, viewer: SignedIn
) -> Response[Any]:
    page = await bookings.client_booking(db, booking_id, by=ByAccount(viewer.account.id))
    return Template(
        "miniapp/booking.html",
        context={
            **page_context(request, viewer),
            "booking": page.booking,
            "business": page.business,
            "master_name": page.master_name,
            "start": page.start,
            "is_live": page.is_upcoming,
            "can_change": page.can_change,
            "can_cancel": page.can_cancel,
            "can_move": page.can_move,
            "deadline": page.deadline,
            "move_deadline": page.move_deadline,
            "is_new": request.query_params.get("new") == "1",
            "messages": page.messages,
            "back_url": request.app.route_reverse("miniapp:bookings"),
        },
    )


@post(
    "/bookings/{booking_id:int}/cancel",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="miniapp:cancel",
)
async def cancel_booking(
    request: Request[Any, Any, Any], booking_id: PathId, db: DB, viewer: SignedIn
) -> Response[Any]:
    page = request.app.route_reverse("miniapp:booking", booking_id=booking_id)
    try:
        await bookings.cancel_booking(
            db, booking_id, by=ByAccount(viewer.account.id),
            actor=actor_of(request, viewer.account.id),
        )  # fmt: skip
    except DomainError as error:
        return error_page(request, viewer, error, page)
    return see_other(request, page)


@get(
    "/bookings/{booking_id:int}/reschedule",
    include_in_schema=False,
    name="miniapp:reschedule",
)
async def reschedule_page(
    request: HTMXRequest,
    booking_id: PathId,
    db: DB,
    viewer: SignedIn,
    staff: Annotated[str | None, QueryParameter(max_length=20)] = None,
    day: Annotated[str | None, QueryParameter(name="date", max_length=10)] = None,
) -> Response[Any]:
    staff_id = staff_choice(staff)
    booking, found = await choices.move_choices(
        db, booking_id, staff_id, _parse_day(day), by=ByAccount(viewer.account.id)
    )
    context = {
        **page_context(request, viewer),
        **_picker(found, staff_id if staff_id is not None else booking.staff_id),
        "mode": "reschedule",
        "booking": booking,
        "back_url": request.app.route_reverse("miniapp:booking", booking_id=booking.id),
    }
    template = (
        "miniapp/partials/times.html"
        if request.htmx and request.htmx.target == "times"
        else "miniapp/service.html"
    )
    return Template(template, context=context, headers={"Vary": "HX-Request"})


@post(
    "/bookings/{booking_id:int}/reschedule",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="miniapp:move",
)
async def reschedule(
    request: Request[Any, Any, Any],
    booking_id: PathId,
    db: DB,
    viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        moved = await bookings.reschedule_booking(
            db, booking_id, by=ByAccount(viewer.account.id),
            new_start=_parse_start(data.get("start")), new_staff_id=staff_choice(data.get("staff")),
            actor=actor_of(request, viewer.account.id),
        )  # fmt: skip
    except DomainError as error:
        back = request.app.route_reverse("miniapp:reschedule", booking_id=booking_id)
        return error_page(request, viewer, error, back)
    page = request.app.route_reverse("miniapp:booking", booking_id=moved.id)
    return see_other(request, f"{page}?new=1")


@get("/bookings/{booking_id:int}/calendar.ics", include_in_schema=False, name="miniapp:ics")
async def booking_ics(booking_id: PathId, db: DB, viewer: SignedIn) -> Response[Any]:
    from icalendar import Calendar, Event

    page = await bookings.client_booking(db, booking_id, by=ByAccount(viewer.account.id))
    booking, business = page.booking, page.business
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


# --- correspondence ---------------------------------------------------------------------------


@get("/bookings/{booking_id:int}/messages", include_in_schema=False, name="miniapp:messages")
async def booking_messages(
    request: HTMXRequest, booking_id: PathId, db: DB, viewer: SignedIn
) -> Response[Any]:
    """The thread as a partial; the booking page polls it so new messages appear by themselves.
    Reading changes nothing: the partial asks ``miniapp:messages-read`` (a POST) when it shows
    messages from the business the client has not seen."""
    if not request.htmx:
        return Redirect(request.app.route_reverse("miniapp:booking", booking_id=booking_id))
    booking, items = await messages.read_thread(db, booking_id, by=ByAccount(viewer.account.id))
    return Template(
        "miniapp/partials/messages.html",
        context={**page_context(request, viewer), "booking": booking, "messages": items},
        headers={"Vary": "HX-Request"},
    )


@post(
    "/bookings/{booking_id:int}/messages/read",
    include_in_schema=False,
    status_code=HTTP_204_NO_CONTENT,
    name="miniapp:messages-read",
)
async def mark_messages_read(booking_id: PathId, db: DB, viewer: SignedIn) -> None:
    await messages.mark_read(db, booking_id, by=ByAccount(viewer.account.id))


@post(
    "/bookings/{booking_id:int}/messages",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="miniapp:write",
    dependencies={"viewer": limited_viewer("messages")},
)
async def post_message(
    request: HTMXRequest,
    booking_id: PathId,
    db: DB,
    viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    page = request.app.route_reverse("miniapp:booking", booking_id=booking_id)
    try:
        booking, items = await messages.write_to_business(
            db, booking_id, by=ByAccount(viewer.account.id), body=data.get("body", "")
        )
    except ValidationFailed as error:
        if not request.htmx:
            return error_page(request, viewer, error, page)
        booking, items = await messages.read_thread(db, booking_id, by=ByAccount(viewer.account.id))
        return Template(
            "miniapp/partials/messages.html",
            context={**page_context(request, viewer), "booking": booking, "messages": items,
                     "error": error, "draft": data.get("body", "")},
            status_code=422,
        )  # fmt: skip
    if not request.htmx:
        return see_other(request, f"{page}#messages")
    return Template(
        "miniapp/partials/messages.html",
        context={**page_context(request, viewer), "booking": booking, "messages": items},
        status_code=200,
    )


ROUTES = [
    booking_messages,
    mark_messages_read,
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
