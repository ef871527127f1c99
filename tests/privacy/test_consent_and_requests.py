"""Withdrawing consent (policy 8.4) and tracked data-subject requests (8.6)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.consent import current_policy, has_valid_consent, record_consent, require_consent
from app.domain.errors import ConsentRequired, ValidationFailed
from app.domain.privacy import record_data_request, withdraw_consent
from tests.privacy.conftest import make_person


async def grant(db: Database, account_id: int) -> None:
    async with db.transaction(account_id=account_id) as session:
        policy = await current_policy(session)
        await record_consent(
            session, account_id, policy_version=policy.version, purposes=policy.purposes,
            action="granted", channel="mini_app", ip="192.0.2.1", user_agent="TestPhone/1.0",
        )  # fmt: skip


@pytest.mark.policy("8.4")
async def test_withdrawal_takes_effect_at_once(db: Database, owner_session: AsyncSession) -> None:
    person = await make_person(owner_session)
    await grant(db, person.id)
    async with db.transaction(account_id=person.id) as session:
        assert await has_valid_consent(session, person.id)
        await require_consent(session, person.id)  # booking allowed
        consent = await withdraw_consent(session, person.id, "mini_app", "192.0.2.1", "UA/1")
        # in the same transaction already, and in every later one
        assert not await has_valid_consent(session, person.id)
    async with db.transaction(account_id=person.id) as session:
        with pytest.raises(ConsentRequired) as caught:
            await require_consent(session, person.id)  # what the booking route calls first
        assert (caught.value.code, caught.value.status) == ("consent_required", 403)
    row = (
        await owner_session.execute(
            text(
                "SELECT c.action, c.purposes, c.policy_version, host(t.ip) AS ip "
                "FROM consents c LEFT JOIN consent_technical t ON t.consent_id = c.id "
                "WHERE c.id = :id"
            ),
            {"id": consent.id},
        )
    ).one()
    assert (row.action, row.purposes, row.ip) == ("withdrawn", [], "192.0.2.1")
    history = await owner_session.scalar(
        text("SELECT array_agg(action ORDER BY id) FROM consents WHERE account_id = :a"),
        {"a": person.id},
    )
    assert history == ["granted", "withdrawn"]  # append-only: the grant is still on record
    # consent given again: booking works again
    await grant(db, person.id)
    async with db.transaction(account_id=person.id) as session:
        await require_consent(session, person.id)


@pytest.mark.policy("8.6")
async def test_request_due_in_ten_kazakhstan_business_days(
    db: Database, owner_session: AsyncSession
) -> None:
    person = await make_person(owner_session)
    received = datetime(2026, 12, 10, 5, 0, tzinfo=UTC)  # Thu, 10:00 in Almaty
    async with db.transaction(account_id=person.id) as session:
        request = await record_data_request(
            session, person.id, "correct", "email", {"field": "name"}, received
        )
    assert request.due_on == date(2026, 12, 25)  # skips two weekends and 16 Dec
    stored = (
        await owner_session.execute(
            text("SELECT kind, status, channel, details, received_at, due_on FROM data_requests "
                 "WHERE id = :id"),
            {"id": request.id},
        )
    ).one()  # fmt: skip
    assert tuple(stored) == (
        "correct", "received", "email", {"field": "name"}, received, date(2026, 12, 25),
    )  # fmt: skip


@pytest.mark.policy("8.6")
async def test_unknown_request_kind_is_refused(db: Database) -> None:
    with pytest.raises(ValidationFailed) as caught:
        async with db.transaction() as session:
            await record_data_request(session, None, "sell_my_data", "email", {})
    assert set(caught.value.fields) == {"kind"}
