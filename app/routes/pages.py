"""Server-rendered pages. The Mini App proper (booking flow, my bookings) grows here."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.response import Redirect, Template
from sqlalchemy import select

from app.models import Business
from app.routes.deps import DB


@get("/app", include_in_schema=False)  # `/` is the landing (app/landing.py)
async def home(db: DB) -> Response[Any]:
    async with db.transaction() as session:
        businesses = list(
            (
                await session.execute(
                    select(Business)
                    .where(Business.archived_at.is_(None))
                    .order_by(Business.id)
                    .limit(50)
                )
            ).scalars()
        )
    if len(businesses) == 1:
        return Redirect(f"/app/b/{businesses[0].slug}")
    return Template("home.html", context={"businesses": businesses})


ROUTES = [home]
