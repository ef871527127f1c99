"""Server-rendered pages. The Mini App proper (booking flow, my bookings) grows here."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select

from app.domain.schedules import business_by_slug
from app.models import Business, Service, Staff
from app.routes.deps import DB, AppSettings


@get("/", include_in_schema=False)
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


@get("/app/b/{slug:str}", include_in_schema=False)
async def business_page(slug: FromPath[str], db: DB, settings: AppSettings) -> Template:
    async with db.transaction() as session:
        business = await business_by_slug(session, slug)
        services = list(
            (
                await session.execute(
                    select(Service)
                    .where(Service.business_id == business.id, Service.archived_at.is_(None))
                    .order_by(Service.sort_order, Service.id)
                )
            ).scalars()
        )
        staff = list(
            (
                await session.execute(
                    select(Staff)
                    .where(Staff.business_id == business.id, Staff.archived_at.is_(None))
                    .order_by(Staff.sort_order, Staff.id)
                )
            ).scalars()
        )
    return Template(
        "miniapp/business.html",
        context={"business": business, "services": services, "staff": staff, "settings": settings},
    )


ROUTES = [home, business_page]
