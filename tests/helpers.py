"""Small helpers shared by the API and domain tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import BOT_TOKEN
from tests.factories import next_telegram_id, tma

ERROR_KEYS = {"error", "detail", "fields"}
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def assert_error(
    response: httpx.Response, status: int, code: str, *, fields: set[str] | None = None
) -> dict[str, Any]:
    """The pinned error body: exactly {"error", "detail", "fields"}, the given code and status."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"].strip(), body
    assert isinstance(body["fields"], dict), body
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in body["fields"].items())
    if fields is not None:
        assert fields <= set(body["fields"]), body
    return body


def assert_not_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)


class TelegramUser:
    """A Telegram user who signs every request with fresh initData."""

    def __init__(self, user_id: int | None = None, *, language_code: str = "ru") -> None:
        self.id = user_id or next_telegram_id()
        self.language_code = language_code

    def headers(self, **extra: str) -> dict[str, str]:
        return {**tma(BOT_TOKEN, self.id, language_code=self.language_code), **extra}


async def grant_consent(http: httpx.AsyncClient, user: TelegramUser) -> dict[str, Any]:
    """Accept the current policy through the API, the way the Mini App does."""
    policy = (await http.get("/api/v1/policy")).json()
    response = await http.post(
        "/api/v1/me/consent",
        json={"policy_version": policy["version"], "purposes": policy["purposes"]},
        headers=user.headers(),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def booking_body(
    service_id: int, start: datetime, staff_id: int | None = None, **extra: Any
) -> dict[str, Any]:
    return {"service_id": service_id, "staff_id": staff_id, "start": start.isoformat(), **extra}
