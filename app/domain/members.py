"""The people of a business: who is a member, with which role, and what that role allows.

The dashboard's guard (``app.security.dashboard``) reads the person's ``workplaces`` once per
request; the ``Member`` of the business their session works in is what every business-side
domain call takes, and the transaction it opens acts for that business and person.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

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


@dataclass(frozen=True, slots=True)
class Workplace:
    """A business a person is a member of, as the dashboard's switcher shows it."""

    business_id: int
    name: str
    slug: str
    role: str
    staff_id: int | None
    # unpaid past its grace (app.domain.subscriptions): the dashboard refuses its changes
    read_only: bool = False

    def as_member(self, account_id: int) -> Member:
        return Member(account_id, self.business_id, self.role, self.staff_id)


async def workplaces(session: AsyncSession, account_id: int) -> list[Workplace]:
    """Every live business the person is a member of, owned ones first (the transaction acts
    for the person: their own memberships are readable in every business)."""
    rows = await session.execute(
        select(
            Membership.business_id, Business.name, Business.slug, Membership.role,
            Membership.staff_id, Business.read_only_since.is_not(None).label("read_only"),
        )
        .join(Business, Business.id == Membership.business_id)
        .where(Membership.account_id == account_id, Business.archived_at.is_(None))
        .order_by(
            case((Membership.role == "owner", 0), (Membership.role == "admin", 1), else_=2),
            Membership.created_at,
        )
    )  # fmt: skip
    return [Workplace(r.business_id, r.name, r.slug, r.role, r.staff_id, r.read_only) for r in rows]
