"""Dashboard: the calendar and walk-in bookings (issue 14; pinned paths in DESIGN.md
"Dashboard contracts"): ``GET /dashboard/calendar?date=&view=&staff=``, the "new booking" form
(``GET /dashboard/bookings/new?staff=&start=``) an empty slot of the calendar opens, and
``POST /dashboard/bookings``; and what keeps an open page current (issue 14 item 4,
:mod:`app.domain.live`): ``GET /dashboard/calendar/live`` (the open calendar's poll) and
``GET /dashboard/live`` (the navigation's counts on every other page). Both take the ``stamp``
the page was drawn at and answer 204 when nothing changed (htmx swaps nothing), else what
changed, with the counts swapped out of band and the new stamp (also in ``X-Live-Stamp``).

Every member sees the calendar (a master only their own column); owners and admins book for
any master, a master for themself. The domain (:mod:`app.domain.calendar`) reads and books."""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, Response, get, post

from app.domain import calendar, live
from app.domain.errors import SlotTaken, ValidationFailed
from app.i18n import N_, gettext
from app.routes.dashboard.render import field_errors, page, see_other
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.rendering import Form
from app.security.dashboard import ANY_MEMBER, staff_actor

FIELDS = ("service_id", "staff_id", "start", "client_name", "client_phone")


def quarter_refs(start: datetime) -> tuple[str, str, str]:
    """Template filter: what an empty quarter hour of the grid writes about its time — the id
    part, the ``start`` query value and the label's date and time. A day draws hundreds of
    such cells, the same few dozen times over every master: formatted once per time."""
    return _quarter_refs(start, start.tzinfo)


@lru_cache(maxsize=8192)
def _quarter_refs(start: datetime, zone: tzinfo | None) -> tuple[str, str, str]:
    # the zone is part of the key: the same instant in two zones is equal, but reads apart
    return (start.strftime("%Y%m%d%H%M"), quote(start.isoformat(), safe="/"),
            start.strftime("%Y-%m-%d %H:%M"))  # fmt: skip


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


@get(
    "/calendar", name="dashboard:calendar", dependencies=ANY_MEMBER, include_in_schema=False,
    opt={"nav_counts": True},  # its htmx fragment carries the stamp its poll starts from
)  # fmt: skip
async def show(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    q = request.query_params
    day, view, staff = calendar.parse_query(q.get("date"), q.get("view"), q.get("staff"))
    shown = await calendar.calendar(db, member, day=day, view=view, staff_id=staff)
    template = (
        "dashboard/calendar/_grid.html" if _is_htmx(request) else "dashboard/calendar/index.html"
    )
    return page(request, dashboard, template, cal=shown)


@get(
    "/bookings/new", name="dashboard:booking-new", dependencies=ANY_MEMBER,
    include_in_schema=False,
)  # fmt: skip
async def new(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    choices = await calendar.new_booking_form(db, member)
    values = {
        "staff_id": request.query_params.get("staff", ""),
        "start": request.query_params.get("start", ""),
        "service_id": request.query_params.get("service", ""),
    }
    return page(request, dashboard, "dashboard/calendar/new.html", form=choices, values=values,
                errors={})  # fmt: skip


@post(
    "/bookings", name="dashboard:booking-create", dependencies=ANY_MEMBER,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def create(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    values = {name: str(data.get(name, ""))[:200] for name in FIELDS}
    try:
        made = await calendar.book_walk_in(db, member, data, actor=staff_actor(request, member))
    except (ValidationFailed, SlotTaken) as refused:
        if isinstance(refused, SlotTaken):
            errors = {"_form": gettext(N_("This time was just taken. Choose another time."))}
            status = 409
        else:
            errors = field_errors(refused)
            status = 422
        choices = await calendar.new_booking_form(db, member)
        return page(request, dashboard, "dashboard/calendar/new.html", status=status,
                    form=choices, values=values, errors=errors)  # fmt: skip
    where = request.app.route_reverse("dashboard:calendar")
    url = f"{where}?date={made.start.date().isoformat()}&view=day"
    if _is_htmx(request):
        shown = await calendar.calendar(db, member, day=made.start.date(), view="day")
        response = page(request, dashboard, "dashboard/calendar/_grid.html", status=201,
                        cal=shown, made=made)  # fmt: skip
        response.headers["HX-Push-Url"] = url
        return response
    return see_other(url + f"&made={made.id}")


def _live(response: Response[Any], counts: live.Counts) -> Response[Any]:
    response.headers["X-Live-Stamp"] = counts.stamp
    response.headers["Cache-Control"] = "no-store"
    return response


def _unchanged(counts: live.Counts) -> Response[Any]:
    return _live(Response(content=b"", status_code=204), counts)


# the polls ask the guard for the counts (opt nav_counts): it reads them in the transaction it
# checks the session in, so an unchanged answer costs no transaction of its own
@get(
    "/calendar/live", name="dashboard:calendar-live", dependencies=ANY_MEMBER,
    include_in_schema=False, opt={"nav_counts": True},
)  # fmt: skip
async def calendar_live(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    q = request.query_params
    day, view, staff = calendar.parse_query(q.get("date"), q.get("view"), q.get("staff"))
    update = await live.calendar_update(
        db, member, since=live.parse_stamp(q.get("stamp")), counts=dashboard.counts, day=day,
        view=view, staff_id=staff,
    )  # fmt: skip
    if update.calendar is None:
        return _unchanged(update.counts)
    return _live(page(request, dashboard, "dashboard/calendar/_live.html", cal=update.calendar,
                      counts=update.counts), update.counts)  # fmt: skip


@get(
    "/live", name="dashboard:live", dependencies=ANY_MEMBER, include_in_schema=False,
    opt={"nav_counts": True},
)  # fmt: skip
async def nav_live(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    update = await live.nav_update(db, member, since=live.parse_stamp(
        request.query_params.get("stamp")), counts=dashboard.counts)  # fmt: skip
    if not update.changed:
        return _unchanged(update.counts)
    return _live(page(request, dashboard, "dashboard/_live_nav.html", counts=update.counts),
                 update.counts)  # fmt: skip


ROUTES = [show, new, create, calendar_live, nav_live]
