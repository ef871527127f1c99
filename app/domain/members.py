"""The people of a business: who is a member, with which role, and what that role allows.

The dashboard's guard asks ``membership`` once per request; the ``Member`` it gets is what every
business-side domain call takes, and the transaction it opens acts for that business and person.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.db.session import Database
from app.domain.errors import NotFound
from app.models import Membership

ROLES = ("master", "admin", "owner")  # each role may do what the ones before it may


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
