"""What a business offers, as its public profile shows it."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.errors import NotFound
from app.models import Business, Staff


class PublicBusiness(msgspec.Struct, frozen=True):
    """What a business's public page shows of it."""

    id: int
    slug: str
    name: str
    address: str | None
    currency: str


class PublicService(msgspec.Struct, frozen=True):
    """A service on sale, as its public page shows it."""

    id: int
    name: dict[str, str]
    category: dict[str, str] | None
    duration_min: int
    price_tiyn: int


class CatalogEntry(msgspec.Struct, frozen=True):
    service: PublicService
    staff_ids: list[int]  # the active masters who perform it, in the business's order


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


class Storefront(msgspec.Struct, frozen=True):
    """A business's public page: the business and its services on sale, in its order, each
    with the masters who perform it."""

    business: PublicBusiness
    services: list[CatalogEntry]


# One statement, in its own implicit transaction on the hot-path pool: the profile is readable
# across tenants (the public_read policies of these tables), so no tenant context is needed.
_STOREFRONT = """
SELECT json_build_object(
  'business', json_build_object('id', b.id, 'slug', b.slug, 'name', b.name,
                                'address', b.address, 'currency', b.currency),
  'services', coalesce((
    SELECT json_agg(json_build_object(
             'service', json_build_object('id', s.id, 'name', s.name, 'category', s.category,
                                          'duration_min', s.duration_min,
                                          'price_tiyn', s.price_tiyn),
             'staff_ids', coalesce((
               SELECT array_agg(ss.staff_id ORDER BY st.sort_order, st.id)
                 FROM staff_services ss
                 JOIN staff st ON st.id = ss.staff_id AND st.business_id = ss.business_id
                WHERE ss.business_id = b.id AND ss.service_id = s.id
                  AND st.archived_at IS NULL), '{}'))
           ORDER BY s.sort_order, s.id)
      FROM services s WHERE s.business_id = b.id AND s.archived_at IS NULL), '[]'))::text
  FROM businesses b WHERE b.slug = $1 AND b.archived_at IS NULL
"""
_decode_storefront = msgspec.json.Decoder(Storefront).decode


async def storefront(db: Database, slug: str) -> Storefront:
    raw = await db.fetchval(_STOREFRONT, slug, read=True)
    if raw is None:
        raise NotFound()
    return _decode_storefront(raw)


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
