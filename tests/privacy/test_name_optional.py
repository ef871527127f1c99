"""Policy 2.1: a person's first and last name are kept only "if provided". Nobody is asked for
a name to sign in or to book, a Telegram account without one books like any other, and a name
given once can be taken back (blank clears it) — the account is then without a name, not with
a placeholder standing for one."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import profile
from tests.conftest import BOT_TOKEN
from tests.factories import local_start, new_business, next_telegram_id
from tests.helpers import booking_body
from tests.support.telegram import make_init_data

pytestmark = pytest.mark.policy("2.1")


async def _account_name(owner_session: AsyncSession, telegram_id: int) -> tuple[int, str | None]:
    row = (
        await owner_session.execute(
            text("SELECT id, name FROM accounts WHERE telegram_id = :t"), {"t": telegram_id}
        )
    ).one()
    await owner_session.commit()
    return int(row.id), row.name


async def test_a_person_without_a_name_consents_and_books(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session)
    telegram_id = next_telegram_id()
    headers = {"Authorization": "tma " + make_init_data(BOT_TOKEN, user_id=telegram_id,
                                                        first_name="")}  # fmt: skip

    signed_in = await client.post(
        "/auth/telegram", json={"init_data": headers["Authorization"][4:]}
    )
    assert signed_in.status_code == 200, signed_in.text
    policy = (await client.get("/api/v1/policy")).json()
    consent = await client.post(
        "/api/v1/me/consent",
        json={"policy_version": policy["version"], "purposes": policy["purposes"]},
        headers=headers,
    )
    assert consent.status_code == 201, consent.text
    booked = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, local_start(business, days_ahead=4),
                          staff_id=business.staff_ids[0]),
        headers=headers,
    )  # fmt: skip

    assert booked.status_code == 201, booked.text
    _account_id, name = await _account_name(owner_session, telegram_id)
    assert name is None  # nothing made up in its place


async def test_a_given_name_can_be_taken_back(
    client: httpx.AsyncClient, db: Database, owner_session: AsyncSession
) -> None:
    telegram_id = next_telegram_id()
    headers = {"Authorization": "tma " + make_init_data(BOT_TOKEN, user_id=telegram_id,
                                                        first_name="Жанар")}  # fmt: skip
    policy = (await client.get("/api/v1/policy")).json()
    consent = await client.post(
        "/api/v1/me/consent",
        json={"policy_version": policy["version"], "purposes": policy["purposes"]},
        headers=headers,
    )
    assert consent.status_code == 201, consent.text
    account_id, name = await _account_name(owner_session, telegram_id)
    assert name == "Жанар"

    await profile.rename(db, account_id, "   ")

    assert (await _account_name(owner_session, telegram_id))[1] is None
