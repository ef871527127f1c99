"""End to end with a real SAQ worker (in-process, as ``pozapisi run`` has it): a booking made
through the API reaches the client and the business by Telegram, through provider trouble."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database
from app.domain.outbox import delivery_failures
from app.i18n import use_locale
from app.models import Membership, Staff
from app.settings import Settings
from tests.factories import BusinessFixture, create_business, local_start
from tests.helpers import TelegramUser, booking_body, grant_consent
from tests.workers.conftest import PUBLIC_URL, insert_rows, new_account, poll, statuses
from tests.workers.provider_stub import ProviderStub


@pytest.fixture(scope="module")
async def wapp(wdb: DatabaseUrls, wsettings: Settings) -> Any:
    from app.main import create_app

    return create_app(wsettings, app_url=wdb.app)


@pytest.fixture
async def api(wapp: Any) -> AsyncIterator[httpx.AsyncClient]:
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(wapp, base_url="https://testserver.local") as client:
        yield client


@pytest.fixture
async def app_db(wdb: DatabaseUrls) -> AsyncIterator[Database]:
    database = Database(wdb.app, pool_size=2)
    yield database
    await database.dispose()


async def salon_with_staff(owner: AsyncSession) -> tuple[BusinessFixture, dict[str, int]]:
    """Owner (notified), a master with an account, an admin who switched notices off, and a
    second master: a booking with the first master notifies the owner and that master only."""
    async with owner.begin():
        fixture = await create_business(owner)
        master = await new_account(owner, name="Дана")
        other_master = await new_account(owner, name="Жанна")
        quiet_admin = await new_account(owner, name="Админ")
        staff = await owner.get(Staff, fixture.staff_ids[0])
        other = await owner.get(Staff, fixture.staff_ids[1])
        assert staff is not None and other is not None
        staff.account_id = master.id
        other.account_id = other_master.id
        owner.add(Membership(business_id=fixture.id, account_id=quiet_admin.id, role="admin",
                             notify_bookings=False))  # fmt: skip
    assert fixture.owner_account_id is not None
    chats = {}
    async with owner.begin():
        for name, account_id in (
            ("owner", fixture.owner_account_id),
            ("master", master.id),
            ("other_master", other_master.id),
            ("quiet_admin", quiet_admin.id),
        ):
            telegram_id = await owner.scalar(
                text("SELECT telegram_id FROM accounts WHERE id = :id"), {"id": account_id}
            )
            chats[name] = int(telegram_id)
    return fixture, chats


async def book_through_api(
    api: httpx.AsyncClient, fixture: BusinessFixture, user: TelegramUser, hour: int
) -> dict[str, Any]:
    await grant_consent(api, user)
    start = local_start(fixture, days_ahead=3).replace(hour=hour)
    response = await api.post(
        f"/api/v1/businesses/{fixture.slug}/bookings",
        json=booking_body(fixture.service_id, start, staff_id=fixture.staff_ids[0]),
        headers=user.headers(),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def settled(engine: AsyncEngine, booking_id: int) -> bool:
    """Every message about the booking that is due has reached a final state."""
    async with engine.connect() as conn:
        left = await conn.scalar(
            text(
                "SELECT count(*) FROM notifications WHERE booking_id = :b "
                "AND event <> 'booking.reminder' AND status IN ('pending', 'sending')"
            ),
            {"b": booking_id},
        )
    return left == 0


async def test_a_booking_reaches_the_client_and_each_notified_master_once(
    saq_worker: Any,
    api: httpx.AsyncClient,
    owner: AsyncSession,
    wowner: AsyncEngine,
    stub: ProviderStub,
) -> None:
    fixture, chats = await salon_with_staff(owner)
    client = TelegramUser()
    booking = await book_through_api(api, fixture, client, hour=10)

    await poll(lambda: settled(wowner, booking["id"]))
    await asyncio.sleep(2.5)  # another tick of the cron relay: nothing more may arrive
    delivered = stub.accepted_count_by("address", "telegram")
    assert delivered == {str(client.id): 1, str(chats["owner"]): 1, str(chats["master"]): 1}

    by_chat = {c.address: c for c in stub.accepted("telegram")}
    to_client = by_chat[str(client.id)]
    assert "Вы записаны" in to_client.text  # the client's Telegram language (ru)
    button = to_client.body["reply_markup"]["inline_keyboard"][0][0]
    assert button["web_app"]["url"] == f"{PUBLIC_URL}/app/bookings/{booking['id']}"
    assert "Новая запись" in by_chat[str(chats["master"])].text
    assert "reply_markup" not in by_chat[str(chats["owner"])].body
    assert await saq_worker.state.queue_check()  # /healthz reports the in-process queue


async def test_provider_failing_three_times_still_delivers_exactly_once(
    saq_worker: Any, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        person = await new_account(owner)
    stub.fail_next("telegram", 3, 500)
    payload = json.dumps({"code": "555001"})
    [row_id] = await insert_rows(
        wowner,
        [{"event": "otp.code", "account_id": person.id, "payload": payload,
          "idempotency_key": "flow:500"}],
    )  # fmt: skip

    async def sent() -> bool:
        return (await statuses(wowner, [row_id]))[row_id]["status"] == "sent"

    await poll(sent)
    await asyncio.sleep(2.5)
    calls = [c for c in stub.snapshot("telegram") if c.address == str(person.telegram_id)]
    assert [c.status for c in calls] == [500, 500, 500, 200]
    assert (await statuses(wowner, [row_id]))[row_id]["attempts"] == 4


async def test_bot_blocked_by_the_client_stops_retries_and_the_business_sees_why(
    saq_worker: Any,
    api: httpx.AsyncClient,
    owner: AsyncSession,
    wowner: AsyncEngine,
    app_db: Database,
    stub: ProviderStub,
) -> None:
    fixture, _chats = await salon_with_staff(owner)
    client = TelegramUser()
    stub.block_chat(client.id)
    booking = await book_through_api(api, fixture, client, hour=11)

    await poll(lambda: settled(wowner, booking["id"]))
    await asyncio.sleep(2.5)
    to_client = [c for c in stub.snapshot("telegram") if c.address == str(client.id)]
    assert len(to_client) == 1 and to_client[0].status == 403  # one try, no retries

    async with app_db.transaction(business_id=fixture.id) as session:
        with use_locale("ru"):
            failures = await delivery_failures(session, booking["id"])
    assert [(f.event, f.to_client, f.reason) for f in failures] == [
        ("booking.created", True, "blocked")
    ]
    assert "заблокировал" in failures[0].explanation
    # another business cannot see it (row-level security)
    async with app_db.transaction(business_id=fixture.id + 10_000) as session:
        assert await delivery_failures(session, booking["id"]) == []
