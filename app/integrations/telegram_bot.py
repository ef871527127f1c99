"""Telegram Bot API client: ``sendMessage`` in HTML parse mode, with an optional inline button
that opens the Mini App.

Used by the webhook (``app.routes.telegram_webhook``: the reply to ``/start``) and by the
workers' Telegram channel (``workers.channels.telegram``: notifications from the outbox). It
speaks the Bot API only: what Telegram answered is reported as a ``BotApiError`` with a
``reason``; whether to retry is the caller's decision.

The bot token is part of every request URL, so neither the URL nor httpx's request log may
reach our logs: httpx logs each request at INFO, which is why its logger is raised to WARNING,
and every error detail has the token blanked out.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
from markupsafe import escape

logging.getLogger("httpx").setLevel(logging.WARNING)

# What a failed call means, as far as the Bot API tells:
#   blocked      the person blocked the bot or deleted their account
#   no_chat      there is no such chat (wrong id, or the person never started the bot)
#   rejected     Telegram refused this message (e.g. markup it cannot parse)
#   rate_limited too many requests; ``retry_after`` says how long to wait
#   bad_token    the token is wrong or revoked (our configuration, not the message)
#   unavailable  Telegram answered with a server error or nothing it should
#   network      no answer came (``maybe_delivered`` when the request may have arrived)
Failure = Literal[
    "blocked", "no_chat", "rejected", "rate_limited", "bad_token", "unavailable", "network"
]

# Bot API descriptions that mean "this chat will never accept a message from the bot"
_BLOCKED_MARKERS = ("bot was blocked by the user", "user is deactivated", "bot was kicked")
_NO_CHAT_MARKERS = ("chat not found", "user not found", "peer_id_invalid", "chat_id is empty")
_DETAIL_LIMIT = 300


class BotApiError(Exception):
    """A call the Bot API did not carry out; ``detail`` never holds the token or the text."""

    def __init__(
        self,
        reason: Failure,
        detail: str = "",
        *,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Failure = reason
        self.detail = detail
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


class InlineButton(Protocol):
    """One button under a message: opens ``url`` as the Mini App (``web_app``) or as a link."""

    @property
    def label(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def web_app(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Button:
    """The plain ``InlineButton``."""

    label: str
    url: str
    web_app: bool = True


def escape_html(value: str) -> str:
    """Escape text for Telegram's HTML parse mode."""
    return str(escape(value))


def button_markup(button: InlineButton) -> dict[str, Any]:
    target = {"web_app": {"url": button.url}} if button.web_app else {"url": button.url}
    return {"inline_keyboard": [[{"text": button.label, **target}]]}


class TelegramBot:
    """One bot, one connection pool; close it with ``aclose``."""

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

    async def send_message(
        self, chat_id: str | int, html: str, button: InlineButton | None = None
    ) -> str:
        """Send ``html`` to a chat (a person's Telegram id); returns Telegram's message id."""
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
            raise self._no_answer(exc) from None
        return self._outcome(response)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _safe(self, text: str) -> str:
        return (text.replace(self._token, "***") if self._token else text)[:_DETAIL_LIMIT]

    def _no_answer(self, exc: httpx.TransportError) -> BotApiError:
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if isinstance(exc, httpx.TimeoutException):
            detail = f"timeout ({type(exc).__name__})"
        else:
            detail = self._safe(f"{type(exc).__name__}: {exc}")
        return BotApiError("network", detail, maybe_delivered=not never_sent)

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
        detail = self._safe(f"HTTP {status}: {description}")
        lowered = description.lower()
        if status == 429:
            parameters = data.get("parameters") or {}
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            raise BotApiError("rate_limited", detail, retry_after=_seconds(retry_after))
        if status >= 500:
            raise BotApiError("unavailable", detail)
        if any(marker in lowered for marker in _BLOCKED_MARKERS):
            raise BotApiError("blocked", detail)
        if any(marker in lowered for marker in _NO_CHAT_MARKERS):
            raise BotApiError("no_chat", detail)
        if status in (401, 404):
            raise BotApiError("bad_token", detail)
        if status in (400, 403):
            raise BotApiError("rejected", detail)
        raise BotApiError("unavailable", detail)


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None
