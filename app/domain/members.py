"""The people of a business: who is a member, with which role, and what that role allows.

The dashboard's guard asks ``membership`` once per request; the ``Member`` it gets is what every
business-side domain call takes, and the transaction it opens acts for that business and person.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.errors import NotFound
from app.i18n import N_
from app.models import Business, Membership

ROLES = ("master", "admin", "owner")  # each role may do what the ones before it may
ROLE_LABELS = {"owner": N_("Owner"), "admin": N_("Administrator"), "master": N_("Master")}


@dataclass(frozen=True, slots=True)
class Member:
    """A person acting for a business, with their role (and their own master's column, if any)."""

    account_id: int
    business_id: int
    role: str
    staff_id: int | None = None

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


async def membership(db: Database, account_id: int, business_id: int, *, at_least: str) -> Member:
    """The person's membership of the business with at least ``at_least``; ``NotFound`` when
    they have none or a lesser role (a stranger learns nothing about the business)."""
    if at_least not in ROLES:
        raise ValueError(f"unknown role {at_least!r}")
    async with db.transaction(business_id=business_id, account_id=account_id) as session:
        row = (
            await session.execute(
                select(Membership.role, Membership.staff_id).where(
                    Membership.business_id == business_id, Membership.account_id == account_id
                )
            )
        ).first()
    if row is None:
        raise NotFound()
    member = Member(account_id, business_id, row.role, row.staff_id)
    if not member.at_least(at_least):
        raise NotFound()
    return member


@dataclass(frozen=True, slots=True)
class Workplace:
    """A business a person is a member of, as the dashboard's switcher shows it."""

    business_id: int
    name: str
    slug: str
    role: str
    staff_id: int | None

    def as_member(self, account_id: int) -> Member:
        return Member(account_id, self.business_id, self.role, self.staff_id)


async def workplaces(session: AsyncSession, account_id: int) -> list[Workplace]:
    """Every live business the person is a member of, owned ones first (the transaction acts
    for the person: their own memberships are readable in every business)."""
    rows = await session.execute(
        select(
            Membership.business_id, Business.name, Business.slug, Membership.role,
            Membership.staff_id,
        )
        .join(Business, Business.id == Membership.business_id)
        .where(Membership.account_id == account_id, Business.archived_at.is_(None))
        .order_by(
            case((Membership.role == "owner", 0), (Membership.role == "admin", 1), else_=2),
            Membership.created_at,
        )
    )  # fmt: skip
    return [Workplace(r.business_id, r.name, r.slug, r.role, r.staff_id) for r in rows]
