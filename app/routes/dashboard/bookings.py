"""Dashboard: bookings — for now the ones waiting for the business's confirmation, and the two
answers to them (pinned paths): ``POST /dashboard/bookings/{id}/confirm`` and ``…/cancel``.

Owners and admins see and answer every pending booking; a master only their own (the domain
decides: another master's booking is 404, like another business's). With htmx the answered
row is swapped for its new state; without script a 303 leads back to the list. The booking
panel (``GET /dashboard/bookings/{id}``) comes with issue 14."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from app.domain import bookings
from app.domain.errors import ValidationFailed
from app.i18n import gettext
from app.routes.dashboard.render import page, see_other
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.params import MAX_ID
from app.routes.rendering import Form
from app.security.dashboard import ANY_MEMBER, staff_actor

REASON_MAX = 500


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def _row(
    request: Request[Any, Any, Any],
    dashboard: Any,
    booking_id: Annotated[int, FromPath],
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


def _bounded(booking_id: int) -> int:
    # an id no row can have is simply not found (never a database error)
    return booking_id if 1 <= booking_id <= MAX_ID else 0


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
    booking_id: Annotated[int, FromPath],
) -> Response[Any]:
    try:
        made = await bookings.confirm_booking(
            db, _bounded(booking_id), by=member,
            actor=staff_actor(request, member),
        )  # fmt: skip
    except ValidationFailed as refused:  # no longer waiting (expired, cancelled, confirmed)
        if _is_htmx(request):
            return _row(request, dashboard, booking_id, outcome="refused",
                        problem=gettext(refused.message))  # fmt: skip
        raise
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
    booking_id: Annotated[int, FromPath],
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    reason = " ".join((data.get("reason") or "").split()) or None
    try:
        made = await bookings.cancel_booking(
            db, _bounded(booking_id), by=member, reason=reason,
            actor=staff_actor(request, member),
        )  # fmt: skip
    except ValidationFailed as refused:
        if _is_htmx(request):
            problem = next(iter(refused.fields.values()), gettext(refused.message))
            return _row(request, dashboard, booking_id, outcome="refused", problem=problem)
        raise
    if _is_htmx(request):
        return _row(request, dashboard, booking_id, outcome="cancelled", made=made)
    return see_other(request.app.route_reverse("dashboard:pending") + "?done=cancelled")


ROUTES = [pending, confirm, cancel]
