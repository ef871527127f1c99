"""Signing up, in and out of the dashboard (being built: the sign-in page and sign-out)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from app.routes.dashboard.render import page, see_other
from app.routes.deps import DB, AppSettings, SignedInDashboard
from app.security import dashboard as dash


@get("/signin", name="dashboard:signin", include_in_schema=False)
async def signin_page(request: Request[Any, Any, Any], settings: AppSettings) -> Response[Any]:
    return page(request, None, "dashboard/signin.html", settings=settings)


@post("/signout", name="dashboard:signout", include_in_schema=False, status_code=303)
async def signout(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard
) -> Response[Any]:
    await dash.end(db, request, dashboard)
    return see_other(request.app.route_reverse("dashboard:signin"))


ROUTES = [signin_page, signout]
