"""Dashboard: the bookings list (``GET /dashboard/bookings``, filtered and paginated), its CSV
export (pinned ``GET /dashboard/bookings.csv?from=…&to=…``) and the owner's audit view.

A master sees and exports only their own bookings; owners and admins the whole business's.
Every export is audited by the domain."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from app.domain import booking_lists
from app.domain.errors import ValidationFailed
from app.routes.dashboard.render import field_errors, page
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.security.dashboard import ANY_MEMBER, OWNER, staff_actor


@get("/bookings", name="dashboard:bookings", dependencies=ANY_MEMBER, include_in_schema=False)
async def bookings_list(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    query = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    try:
        filters = booking_lists.parse_filters(query)
    except ValidationFailed as refused:
        return page(request, dashboard, "dashboard/lists/bookings.html", status=422,
                    listing=None, query=query, errors=field_errors(refused),
                    statuses=booking_lists.STATUS_LABELS,
                    sources=booking_lists.SOURCE_LABELS)  # fmt: skip
    listing = await booking_lists.list_bookings(db, member, filters)
    return page(request, dashboard, "dashboard/lists/bookings.html", listing=listing,
                query=query, errors={}, statuses=booking_lists.STATUS_LABELS,
                sources=booking_lists.SOURCE_LABELS)  # fmt: skip


@get(
    "/bookings.csv", name="dashboard:bookings-csv", dependencies=ANY_MEMBER,
    include_in_schema=False,
)  # fmt: skip
async def bookings_csv(
    request: Request[Any, Any, Any], db: DB, member: ActingMember
) -> Response[bytes]:
    query = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    filters = booking_lists.parse_filters(query, need_period=True)  # refused: a 422 page
    body = await booking_lists.export_csv(db, member, filters, actor=staff_actor(request, member))
    assert filters.start is not None and filters.end is not None
    name = f"bookings-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    return Response(
        body.encode("utf-8"), media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "Cache-Control": "private, no-store"},
    )  # fmt: skip


@get("/audit", name="dashboard:audit", dependencies=OWNER, include_in_schema=False)
async def audit_view(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    raw = request.query_params.get("page") or "1"
    number = int(raw) if raw.isdigit() and len(raw) < 6 else 1
    trail = await booking_lists.audit_trail(db, member, page=number)
    return page(request, dashboard, "dashboard/lists/audit.html", trail=trail,
                kinds=booking_lists.ACTOR_KINDS)  # fmt: skip


ROUTES = [bookings_list, bookings_csv, audit_view]
