"""The app's home: the businesses that take bookings (straight to the only one, if one)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.response import Redirect, Template

from app.domain import catalog
from app.routes.deps import DB


@get("/", include_in_schema=False, name="home")  # /app: the site root is the landing
async def home(request: Request[Any, Any, Any], db: DB) -> Response[Any]:
    businesses = await catalog.open_businesses(db)
    if len(businesses) == 1:
        return Redirect(request.app.route_reverse("miniapp:business", slug=businesses[0].slug))
    return Template("home.html", context={"businesses": businesses})


ROUTES = [home]
