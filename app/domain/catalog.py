"""What a business offers, as its public profile shows it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.availability_reader import business_by_slug
from app.domain.errors import NotFound
from app.models import Business, Service, Staff

_STAFF_BY_SERVICE = text(
    "SELECT ss.service_id, array_agg(ss.staff_id ORDER BY st.sort_order, st.id) "
    "FROM staff_services ss JOIN staff st ON st.id = ss.staff_id "
    "WHERE ss.business_id = :b AND st.archived_at IS NULL GROUP BY ss.service_id"
)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    service: Service
    staff_ids: list[int]


async def active_services(session: AsyncSession, business_id: int) -> list[CatalogEntry]:
    """Services on sale, in the business's order, with the masters who perform each."""
    services = (
        await session.execute(
            select(Service)
            .where(Service.business_id == business_id, Service.archived_at.is_(None))
            .order_by(Service.sort_order, Service.id)
        )
    ).scalars()
    staff_rows = await session.execute(_STAFF_BY_SERVICE, {"b": business_id})
    staff_by_service = {service_id: list(ids) for service_id, ids in staff_rows}
    return [CatalogEntry(service=s, staff_ids=staff_by_service.get(s.id, [])) for s in services]


async def active_staff(session: AsyncSession, business_id: int) -> list[Staff]:
    return list(
        (
            await session.execute(
                select(Staff)
                .where(Staff.business_id == business_id, Staff.archived_at.is_(None))
                .order_by(Staff.sort_order, Staff.id)
            )
        ).scalars()
    )


@dataclass(frozen=True, slots=True)
class Storefront:
    """A business's public page: the business and the services someone performs."""

    business: Business
    services: list[CatalogEntry]


async def storefront(db: Database, slug: str) -> Storefront:
    async with db.transaction() as session:
        business = await business_by_slug(session, slug)
        return Storefront(business, await active_services(session, business.id))


async def open_businesses(db: Database, limit: int = 50) -> list[Business]:
    """Businesses that take bookings, oldest first (the home page's list)."""
    async with db.transaction() as session:
        rows = await session.execute(
            select(Business)
            .where(Business.archived_at.is_(None))
            .order_by(Business.id)
            .limit(limit)
        )
        return list(rows.scalars())


async def business_name(db: Database, slug: str) -> str | None:
    """The name of a live business, for greetings; None when no such business takes bookings."""
    try:
        shop = await storefront(db, slug)
    except NotFound:
        return None
    return shop.business.name
