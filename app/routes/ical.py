"""A master's calendar feed (pinned ``GET /ical/{token}.ics``): the private address a phone's
calendar subscribes to. No session: the address's secret is the key (``app.domain.feeds``);
an unknown or revoked one is 404."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, get
from litestar.params import PathParameter

from app.domain import feeds
from app.domain.errors import NotFound
from app.routes.deps import DB

FeedFile = Annotated[str, PathParameter(max_length=140)]
SUFFIX = ".ics"


@get("/ical/{filename:str}", name="ical:feed", include_in_schema=False)
async def ical_feed(filename: FeedFile, db: DB) -> Response[bytes]:
    if not filename.endswith(SUFFIX):
        raise NotFound()
    body = await feeds.feed_calendar(db, filename.removesuffix(SUFFIX))
    return Response(
        body, media_type="text/calendar",
        headers={"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex"},
    )  # fmt: skip


ROUTES: list[Any] = [ical_feed]
