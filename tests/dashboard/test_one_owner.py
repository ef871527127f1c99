"""Exactly one owner a business: the database refuses a second one whoever writes it (migration
0019), and a transfer of ownership (which steps the old owner down first) still works."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Membership
from tests.factories import new_business
from tests.support.dashboard import add_member


async def test_a_second_owner_is_refused_by_the_database(owner_session: AsyncSession) -> None:
    business = await new_business(owner_session)
    admin = await add_member(owner_session, business.id, "admin")
    # one person may own several businesses: only a business's second owner is refused
    other = await new_business(owner_session, with_owner=False)
    owner_session.add(Membership(business_id=other.id, account_id=admin.account_id, role="owner"))
    await owner_session.commit()
    newcomer = await add_member(owner_session, other.id, "master")
    owner_session.add(
        Membership(business_id=business.id, account_id=newcomer.account_id, role="owner")
    )
    with pytest.raises(IntegrityError, match="uq_memberships_one_owner"):
        await owner_session.flush()
    await owner_session.rollback()


async def test_promoting_a_member_beside_the_owner_is_refused(owner_session: AsyncSession) -> None:
    business = await new_business(owner_session)
    admin = await add_member(owner_session, business.id, "admin")
    with pytest.raises(IntegrityError, match="uq_memberships_one_owner"):
        await owner_session.execute(
            text("UPDATE memberships SET role = 'owner' WHERE account_id = :a"),
            {"a": admin.account_id},
        )
    await owner_session.rollback()
    # stepping the owner down first makes room, as the team's transfer does
    await owner_session.execute(
        text("UPDATE memberships SET role = 'admin' WHERE business_id = :b AND role = 'owner'"),
        {"b": business.id},
    )
    await owner_session.execute(
        text("UPDATE memberships SET role = 'owner' WHERE account_id = :a"),
        {"a": admin.account_id},
    )
    await owner_session.commit()
