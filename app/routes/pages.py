"""The app's home: the businesses that take bookings (straight to the only one, if one).

Telegram opens the Mini App here; a link ``t.me/<bot>?startapp=<slug>`` (``app.links.
telegram_mini_app``: a business's printed QR code) adds ``tgWebAppStartParam=<slug>``, which
goes straight to that business's page."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from app.domain import catalog
from app.routes.deps import DB

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # businesses.slug_format


@get("/", include_in_schema=False, name="home")  # /app: the site root is the landing
async def home(
    request: Request[Any, Any, Any],
    db: DB,
    start: Annotated[str | None, QueryParameter(name="tgWebAppStartParam", max_length=512)] = None,
) -> Response[Any]:
    if start and SLUG.match(start):
        return Redirect(request.app.route_reverse("miniapp:business", slug=start))
    businesses = await catalog.open_businesses(db)
    if len(businesses) == 1:
        return Redirect(request.app.route_reverse("miniapp:business", slug=businesses[0].slug))
    return Template("home.html", context={"businesses": businesses})


ROUTES = [home]
