"""``POST /telegram/webhook``: the secret header, ``/start`` and its deep links, blocking."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.bootstrap import DatabaseUrls
from app.settings import Settings
from tests.factories import create_business
from tests.workers.conftest import PUBLIC_URL, WEBHOOK_SECRET, new_account
from tests.workers.provider_stub import ProviderStub

_updates = itertools.count(1)


@pytest.fixture(scope="module")
async def wapp(wdb: DatabaseUrls, wsettings: Settings) -> Any:
    from app.main import create_app

    return create_app(wsettings, app_url=wdb.app)


@pytest.fixture
async def http(wapp: Any) -> AsyncIterator[httpx.AsyncClient]:
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(wapp, base_url="https://testserver.local") as client:
        yield client


def start_update(user_id: int, command: str = "/start", language: str = "kk") -> dict[str, Any]:
    return {
        "update_id": next(_updates),
        "message": {
            "message_id": 1,
            "date": 1,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "A", "language_code": language},
            "text": command,
        },
    }


async def post(
    http: httpx.AsyncClient, update: dict[str, Any], secret: str | None = WEBHOOK_SECRET
) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return await http.post(
        "/telegram/webhook", content=msgspec.json.encode(update), headers=headers
    )


async def test_a_request_without_our_secret_is_refused(
    http: httpx.AsyncClient, stub: ProviderStub
) -> None:
    assert (await post(http, start_update(1), secret=None)).status_code == 401
    assert (await post(http, start_update(1), secret="guess")).status_code == 401
    assert (await post(http, start_update(1), secret=WEBHOOK_SECRET + "x")).status_code == 401
    assert stub.snapshot() == []


async def test_without_a_configured_secret_the_webhook_is_off(
    wdb: DatabaseUrls, wsettings: Settings
) -> None:
    from litestar.testing import AsyncTestClient

    from app.main import create_app

    app = create_app(
        msgspec.structs.replace(wsettings, telegram_webhook_secret=""), app_url=wdb.app
    )
    async with AsyncTestClient(app, base_url="https://testserver.local") as client:
        assert (await post(client, start_update(1), secret="")).status_code == 403


async def test_start_replies_with_a_button_that_opens_the_mini_app(
    http: httpx.AsyncClient, stub: ProviderStub
) -> None:
    response = await post(http, start_update(424242))
    assert response.status_code == 200
    [call] = stub.snapshot("telegram")
    assert call.address == "424242"
    assert "PoZapisi" in call.text and "қош келдіңіз" in call.text  # Kazakh, as Telegram says
    [[button]] = call.body["reply_markup"]["inline_keyboard"]
    assert button["web_app"] == {"url": f"{PUBLIC_URL}/"}


async def test_a_deep_link_opens_that_business(
    http: httpx.AsyncClient, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        business = await create_business(owner)
    await post(http, start_update(434343, f"/start b_{business.slug}", language="ru"))
    [call] = stub.snapshot("telegram")
    assert f"Test {business.slug}" in call.text
    [[button]] = call.body["reply_markup"]["inline_keyboard"]
    assert button["web_app"] == {"url": f"{PUBLIC_URL}/app/b/{business.slug}"}
    assert button["text"] == "Записаться"


async def test_other_messages_are_acknowledged_and_ignored(
    http: httpx.AsyncClient, stub: ProviderStub
) -> None:
    assert (await post(http, start_update(1, "hello"))).status_code == 200
    assert (await post(http, {"update_id": 5, "edited_message": {}})).status_code == 200
    bad = await http.post(
        "/telegram/webhook",
        content=b"{not json",
        headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
    )
    assert bad.status_code == 400
    assert stub.snapshot() == []


async def test_starting_and_blocking_the_bot_decide_whether_it_may_write(
    http: httpx.AsyncClient, owner: AsyncSession, wowner: AsyncEngine
) -> None:
    async with owner.begin():
        person = await new_account(owner, allows_pm=False)
    assert person.telegram_id is not None

    async def allowed() -> bool:
        async with wowner.connect() as conn:
            return bool(
                await conn.scalar(
                    text("SELECT allows_write_to_pm FROM accounts WHERE id = :id"),
                    {"id": person.id},
                )
            )

    await post(http, start_update(person.telegram_id))
    assert await allowed()
    kicked = {
        "update_id": next(_updates),
        "my_chat_member": {
            "chat": {"id": person.telegram_id, "type": "private"},
            "from": {"id": person.telegram_id, "is_bot": False, "first_name": "A"},
            "date": 1,
            "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True}},
            "new_chat_member": {"status": "kicked", "user": {"id": 1, "is_bot": True}},
        },
    }
    assert (await post(http, kicked)).status_code == 200
    assert not await allowed()
