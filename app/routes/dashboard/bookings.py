"""Dashboard: bookings — for now the ones waiting for the business's confirmation, and the two
answers to them (pinned paths): ``POST /dashboard/bookings/{id}/confirm`` and ``…/cancel``.

Owners and admins see and answer every pending booking; a master only their own (the domain
decides: another master's booking is 404, like another business's). With htmx the answered
row is swapped for its new state; without script a 303 leads back to the list. The booking
panel (``GET /dashboard/bookings/{id}``) comes with issue 14."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar import Request, Response, get, post

from app.domain import bookings
from app.domain.errors import DomainError, SlotTaken, ValidationFailed
from app.i18n import N_, gettext
from app.routes.dashboard.render import field_errors, page, see_other
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.params import MAX_ID, PathId
from app.routes.rendering import Form
from app.security.dashboard import ANY_MEMBER, staff_actor

REASON_MAX = 500


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def _row(
    request: Request[Any, Any, Any],
    dashboard: Any,
    booking_id: int,
    *,
    outcome: str,
    made: bookings.BookingMade | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response[Any]:
    """The answered row, for htmx to swap in place of the pending one (a refusal too: it is
    the row's new state, and htmx swaps only a 2xx answer)."""
    return page(request, dashboard, "dashboard/bookings/_answered.html", status=status,
                booking_id=booking_id, outcome=outcome, made=made, problem=problem)  # fmt: skip


@get(
    "/bookings/pending", name="dashboard:pending", dependencies=ANY_MEMBER,
    include_in_schema=False,
)  # fmt: skip
async def pending(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    waiting = await bookings.pending_bookings(db, member)
    return page(request, dashboard, "dashboard/bookings/pending.html", waiting=waiting,
                answered=request.query_params.get("done"))  # fmt: skip


@post(
    "/bookings/{booking_id:int}/confirm", name="dashboard:booking-confirm",
    dependencies=ANY_MEMBER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def confirm(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    booking_id: PathId,
) -> Response[Any]:
    try:
        made = await bookings.confirm_booking(
            db, booking_id, by=member,
            actor=staff_actor(request, member),
        )  # fmt: skip
    except ValidationFailed as refused:  # no longer waiting (expired, cancelled, confirmed)
        if request.query_params.get("from") == "panel":
            return await _refused(request, db, dashboard, member, booking_id, refused)
        if _is_htmx(request):
            return _row(request, dashboard, booking_id, outcome="refused",
                        problem=gettext(refused.message))  # fmt: skip
        raise
    if request.query_params.get("from") == "panel":
        return _to_panel(request, booking_id)
    if _is_htmx(request):
        return _row(request, dashboard, booking_id, outcome="confirmed", made=made)
    return see_other(request.app.route_reverse("dashboard:pending") + "?done=confirmed")


@post(
    "/bookings/{booking_id:int}/cancel", name="dashboard:booking-cancel",
    dependencies=ANY_MEMBER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def cancel(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    booking_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    reason = " ".join((data.get("reason") or "").split()) or None
    try:
        made = await bookings.cancel_booking(
            db, booking_id, by=member, reason=reason,
            actor=staff_actor(request, member),
        )  # fmt: skip
    except ValidationFailed as refused:
        if request.query_params.get("from") == "panel":
            return await _refused(request, db, dashboard, member, booking_id, refused)
        if _is_htmx(request):
            problem = next(iter(refused.fields.values()), gettext(refused.message))
            return _row(request, dashboard, booking_id, outcome="refused", problem=problem)
        raise
    if request.query_params.get("from") == "panel":
        return _to_panel(request, booking_id)
    if _is_htmx(request):
        return _row(request, dashboard, booking_id, outcome="cancelled", made=made)
    return see_other(request.app.route_reverse("dashboard:pending") + "?done=cancelled")


# --- the booking panel -------------------------------------------------------------------------

PANEL = "dashboard/bookings/panel.html"
PANEL_FRAGMENT = "dashboard/bookings/_panel.html"


def _to_panel(request: Request[Any, Any, Any], booking_id: int) -> Response[Any]:
    return see_other(request.app.route_reverse("dashboard:booking", booking_id=booking_id))


async def _refused(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: Any,
    member: ActingMember,
    booking_id: int,
    refused: DomainError,
    *,
    form: dict[str, str] | None = None,
) -> Response[Any]:
    """The panel again, the refusal beside its field (or above the actions). With htmx the
    answer is a 200 (htmx swaps only those), else the refusal's own status."""
    errors = field_errors(refused)
    panel = await bookings.booking_panel(db, booking_id, by=member)
    htmx = _is_htmx(request)
    return page(request, dashboard, PANEL_FRAGMENT if htmx else PANEL,
                status=200 if htmx else refused.status, panel=panel, errors=errors,
                form=form or {}, done=None)  # fmt: skip


@get(
    "/bookings/{booking_id:int}", name="dashboard:booking", dependencies=ANY_MEMBER,
    include_in_schema=False,
)  # fmt: skip
async def booking(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    booking_id: PathId,
) -> Response[Any]:
    panel = await bookings.booking_panel(db, booking_id, by=member)
    fragment = _is_htmx(request) and request.headers.get("hx-boosted") != "true"
    shown = page(request, dashboard, PANEL_FRAGMENT if fragment else PANEL, panel=panel,
                 errors={}, form={}, done=request.query_params.get("done"))  # fmt: skip
    if fragment and urlsplit(request.headers.get("hx-current-url", "")).path != request.url.path:
        # swapped in after a move, which makes a new booking: the address names the panel
        # shown, so a reload or a shared link opens this booking, not the one it replaced
        shown.headers["HX-Replace-Url"] = request.url.path
    return shown


def _start_of(data: dict[str, str]) -> datetime:
    """The new start: ISO 8601 with an offset, or a form's local time in the business's zone
    (the form sends the zone beside it)."""
    raw = (data.get("start") or "").strip()
    try:
        start = datetime.fromisoformat(raw)
        if start.tzinfo is None:
            start = start.replace(tzinfo=ZoneInfo((data.get("zone") or "").strip()))
    except (ValueError, ZoneInfoNotFoundError):
        raise ValidationFailed(fields={"start": gettext(N_("Choose a date and time."))}) from None
    return start


def _staff_of(data: dict[str, str]) -> int | None:
    raw = (data.get("staff_id") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise ValidationFailed(fields={"staff_id": gettext(N_("Choose a master."))})
    return int(raw)


@post(
    "/bookings/{booking_id:int}/reschedule", name="dashboard:booking-reschedule",
    dependencies=ANY_MEMBER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def reschedule(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    booking_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        moved = await bookings.reschedule_booking(
            db, booking_id, by=member, new_start=_start_of(data),
            new_staff_id=_staff_of(data), actor=staff_actor(request, member),
        )  # fmt: skip
    except SlotTaken as taken:
        clash = ValidationFailed(fields={"start": gettext(taken.message)})
        clash.status = taken.status
        return await _refused(request, db, dashboard, member, booking_id, clash, form=data)
    except ValidationFailed as refused:
        return await _refused(request, db, dashboard, member, booking_id, refused, form=data)
    return _to_panel(request, moved.id)  # the moved booking is a new one, with its own id


async def _attendance(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: Any,
    member: ActingMember,
    booking_id: int,
    *,
    attended: bool,
) -> Response[Any]:
    try:
        await bookings.mark_attendance(
            db, booking_id, by=member, attended=attended,
            actor=staff_actor(request, member),
        )  # fmt: skip
    except ValidationFailed as refused:
        return await _refused(request, db, dashboard, member, booking_id, refused)
    return _to_panel(request, booking_id)


@post(
    "/bookings/{booking_id:int}/complete", name="dashboard:booking-complete",
    dependencies=ANY_MEMBER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def complete(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    booking_id: PathId,
) -> Response[Any]:
    return await _attendance(request, db, dashboard, member, booking_id, attended=True)


@post(
    "/bookings/{booking_id:int}/no-show", name="dashboard:booking-no-show",
    dependencies=ANY_MEMBER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def no_show(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    booking_id: PathId,
) -> Response[Any]:
    return await _attendance(request, db, dashboard, member, booking_id, attended=False)


@post(
    "/bookings/{booking_id:int}/messages", name="dashboard:booking-messages",
    dependencies=ANY_MEMBER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def reply(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    booking_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await bookings.reply_to_client(db, booking_id, by=member,
                                       body=data.get("body") or "")  # fmt: skip
    except ValidationFailed as refused:
        return await _refused(request, db, dashboard, member, booking_id, refused, form=data)
    return _to_panel(request, booking_id)


@post(
    "/bookings/{booking_id:int}/note", name="dashboard:booking-note",
    dependencies=ANY_MEMBER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def note(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    booking_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await bookings.add_staff_note(
            db, booking_id, by=member, note=data.get("note") or "",
            actor=staff_actor(request, member),
        )  # fmt: skip
    except ValidationFailed as refused:
        return await _refused(request, db, dashboard, member, booking_id, refused, form=data)
    return _to_panel(request, booking_id)


ROUTES = [pending, confirm, cancel, booking, reschedule, complete, no_show, reply, note]
