"""The narrow row-level policy that lets the app queue platform messages (sign-in codes,
deletion notices) without a business — and nothing more."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import outbox
from app.domain.otp import KeyedOutgoing, enqueue_platform
from tests.factories import create_business
from tests.privacy.conftest import make_person

pytestmark = pytest.mark.policy("10.3")

INSERT = text(
    "INSERT INTO notifications (business_id, booking_id, account_id, address, event, channel, "
    "idempotency_key) VALUES (:b, :booking, :a, '+77010000000', 'otp.code', 'sms', :k)"
)


def key() -> str:
    return f"test:{uuid4().hex}"


async def test_app_queues_a_platform_message_it_cannot_read_back(
    db: Database, owner_session: AsyncSession
) -> None:
    k = key()
    async with db.transaction() as session:
        await enqueue_platform(
            session,
            [KeyedOutgoing(event="otp.code", scheduled_at=datetime.now(UTC),
                           address="+77010000000", channel="sms", payload={"code": "123456"},
                           key=k)],
        )  # fmt: skip
        seen = await session.scalar(
            text("SELECT count(*) FROM notifications WHERE idempotency_key = :k"), {"k": k}
        )
        assert seen == 0  # write-only: codes are not readable by the app
    stored = await owner_session.scalar(
        text("SELECT count(*) FROM notifications WHERE idempotency_key = :k"), {"k": k}
    )
    assert stored == 1


async def test_signed_in_account_may_be_the_recipient(
    db: Database, owner_session: AsyncSession
) -> None:
    person = await make_person(owner_session)
    async with db.transaction(account_id=person.id) as session:
        await session.execute(INSERT, {"b": None, "booking": None, "a": person.id, "k": key()})


@pytest.mark.parametrize("case", ["another_account", "no_context_account", "a_business"])
async def test_everything_else_is_still_refused(
    db: Database, owner_session: AsyncSession, case: str
) -> None:
    person = await make_person(owner_session)
    other = await make_person(owner_session, first="Other")
    business = await create_business(owner_session)
    await owner_session.commit()
    params = {
        "another_account": ({"b": None, "booking": None, "a": other.id}, person.id),
        "no_context_account": ({"b": None, "booking": None, "a": person.id}, None),
        "a_business": ({"b": business.id, "booking": None, "a": None}, person.id),
    }[case]
    with pytest.raises(DBAPIError) as caught:
        async with db.transaction(account_id=params[1]) as session:
            await session.execute(INSERT, {**params[0], "k": key()})
    assert "row-level security" in str(caught.value)


async def test_the_ordinary_enqueue_of_a_business_still_needs_its_tenant(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await create_business(owner_session)
    await owner_session.commit()
    message = outbox.Outgoing(
        event="test.event", scheduled_at=datetime.now(UTC), address="x@example.kz",
        business_id=business.id, channel="email",
    )  # fmt: skip
    with pytest.raises(DBAPIError):
        async with db.transaction() as session:
            await outbox.enqueue(session, [message])
    async with db.transaction(business_id=business.id) as session:
        await outbox.enqueue(session, [message])


async def test_platform_messages_need_a_key_and_no_business() -> None:
    with pytest.raises(ValueError, match="platform"):
        await enqueue_platform(
            None,  # type: ignore[arg-type]
            [KeyedOutgoing(event="x", scheduled_at=datetime.now(UTC), business_id=1, key="k")],
        )
