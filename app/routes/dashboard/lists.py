"""Dashboard: the bookings list (``GET /dashboard/bookings``, filtered and paginated), its CSV
export (pinned ``GET /dashboard/bookings.csv?from=…&to=…``) and the owner's audit view.

A master sees and exports only their own bookings; owners and admins the whole business's.
Every export is audited by the domain."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post

from app.domain import booking_lists, feeds
from app.domain.errors import ValidationFailed
from app.routes.dashboard.render import field_errors, page, see_other
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.params import PathId, staff_choice
from app.routes.rendering import Form
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
    include_in_schema=False, opt={"nav_counts": False},  # a file: no navigation to count for
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


def _feed_url(request: Request[Any, Any, Any], token: str) -> str:
    """The feed's full address, on the site's public origin (a calendar app fetches it from
    outside, not through whatever host this request came by)."""
    path = request.app.route_reverse("ical:feed", filename=f"{token}.ics")
    return request.app.state.settings.public_base_url.rstrip("/") + path


@get("/feeds", name="dashboard:feeds", dependencies=ANY_MEMBER, include_in_schema=False)
async def feeds_page(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    listing = await feeds.list_feeds(db, member)
    return page(request, dashboard, "dashboard/lists/feeds.html", listing=listing, errors={},
                new_url=None, done=request.query_params.get("done"))  # fmt: skip


@post("/feeds", name="dashboard:feed-create", dependencies=ANY_MEMBER, include_in_schema=False)
async def feed_create(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """A new feed; its address is shown on this answer only (it is kept as a digest)."""
    try:
        staff_id = staff_choice(data.get("staff_id"))
        made = await feeds.create_feed(
            db, member, staff_id=staff_id, include_phone=data.get("include_phone") == "1",
            actor=staff_actor(request, member),
        )  # fmt: skip
    except ValidationFailed as refused:
        listing = await feeds.list_feeds(db, member)
        return page(request, dashboard, "dashboard/lists/feeds.html", status=422,
                    listing=listing, errors=field_errors(refused), new_url=None,
                    done=None)  # fmt: skip
    listing = await feeds.list_feeds(db, member)
    return page(request, dashboard, "dashboard/lists/feeds.html", status=201, listing=listing,
                errors={}, new_url=_feed_url(request, made.token), done=None)  # fmt: skip


@post(
    "/feeds/{feed_id:int}/revoke", name="dashboard:feed-revoke", dependencies=ANY_MEMBER,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def feed_revoke(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, feed_id: PathId
) -> Response[Any]:
    await feeds.revoke_feed(db, member, feed_id, actor=staff_actor(request, member))
    return see_other(request.app.route_reverse("dashboard:feeds") + "?done=revoked")


ROUTES = [bookings_list, bookings_csv, audit_view, feeds_page, feed_create, feed_revoke]
