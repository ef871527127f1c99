"""Telegram Bot API ``sendMessage``: HTML parse mode and an inline button that opens the Mini App.

The bot token is part of every request URL, so neither the URL nor httpx's request log may
reach our logs: httpx logs each request at INFO, which is why its logger is raised to WARNING.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpx

from workers.channels import (
    BLOCKED,
    INVALID_ADDRESS,
    MISCONFIGURED,
    RATE_LIMITED,
    REJECTED,
    UNAVAILABLE,
    Button,
    PermanentError,
    Rendered,
    TransientError,
    safe_detail,
    transport_error,
)

logging.getLogger("httpx").setLevel(logging.WARNING)

# Bot API descriptions that mean "this chat will never accept a message from the bot"
_BLOCKED_MARKERS = ("bot was blocked by the user", "user is deactivated", "bot was kicked")
_NO_CHAT_MARKERS = ("chat not found", "user not found", "peer_id_invalid", "chat_id is empty")


def button_markup(button: Button) -> dict[str, Any]:
    target = {"web_app": {"url": button.url}} if button.web_app else {"url": button.url}
    return {"inline_keyboard": [[{"text": button.label, **target}]]}


class TelegramChannel:
    """One bot; ``address`` is the person's Telegram id (the private chat with the bot)."""

    name = "telegram"

    def __init__(
        self, api_url: str, token: str, *, timeout: float, tls: ssl.SSLContext | bool = True
    ) -> None:
        self._token = token
        self._client = httpx.AsyncClient(
            base_url=f"{api_url.rstrip('/')}/bot{token}/",
            timeout=timeout,
            verify=tls,
            follow_redirects=False,
            # the relay keeps at most workers.relay.MAX_IN_FLIGHT requests in flight
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )

    async def send(self, address: str, message: Rendered) -> str | None:
        return await self.send_message(address, message.html, message.button)

    async def send_message(self, chat_id: str | int, html: str, button: Button | None) -> str:
        body: dict[str, Any] = {
            "chat_id": chat_id,
            "text": html,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if button is not None:
            body["reply_markup"] = button_markup(button)
        try:
            response = await self._client.post("sendMessage", json=body)
        except httpx.TransportError as exc:
            raise transport_error(exc, self._token) from None
        return self._outcome(response)

    def _outcome(self, response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if response.status_code == 200 and data.get("ok"):
            result = data.get("result") or {}
            return str(result.get("message_id", ""))
        status = response.status_code
        description = str(data.get("description") or f"HTTP {status}")
        detail = safe_detail(f"HTTP {status}: {description}", self._token)
        lowered = description.lower()
        if status == 429:
            parameters = data.get("parameters") or {}
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            raise TransientError(RATE_LIMITED, detail, retry_after=_seconds(retry_after))
        if status >= 500:
            raise TransientError(UNAVAILABLE, detail)
        if any(marker in lowered for marker in _BLOCKED_MARKERS):
            raise PermanentError(BLOCKED, detail)
        if any(marker in lowered for marker in _NO_CHAT_MARKERS):
            raise PermanentError(INVALID_ADDRESS, detail)
        if status in (401, 404):
            # a wrong or revoked token: keep the messages until an operator fixes it
            raise TransientError(MISCONFIGURED, detail)
        if status in (400, 403):
            raise PermanentError(REJECTED, detail)
        raise TransientError(UNAVAILABLE, detail)

    async def aclose(self) -> None:
        await self._client.aclose()


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None
