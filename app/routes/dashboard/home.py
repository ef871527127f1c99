"""The dashboard's front door: ``/dashboard/`` and switching between one's businesses."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post

from app.routes.dashboard.render import page, see_other
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.rendering import Form
from app.security import dashboard as dash
from app.security.dashboard import role


@get("/", name="dashboard:home", dependencies=role("master"), include_in_schema=False)
async def home(
    request: Request[Any, Any, Any],
    dashboard: SignedInDashboard,
    member: ActingMember,
) -> Response[Any]:
    return page(request, dashboard, "dashboard/home.html")


@post("/business", name="dashboard:choose-business", include_in_schema=False, status_code=303)
async def choose_business(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Work in another of one's businesses (the switcher in the header)."""
    raw = data.get("business_id", "")
    if raw.isdigit() and len(raw) <= 18:
        await dash.choose(db, dashboard, int(raw))
    return see_other(request.app.route_reverse("dashboard:home"))


ROUTES = [home, choose_business]
