"""The Telegram channel: the outbox's messages through the bot (``app.integrations.telegram_bot``,
the same client the webhook replies with), its failures in the relay's terms.

What Telegram said decides whether the relay tries again: a person who blocked the bot, a chat
that does not exist or a message Telegram refused fails for good; a rate limit, an outage, a
wrong token (an operator can fix it) or no answer at all is retried.
"""

from __future__ import annotations

import ssl

from app.integrations.telegram_bot import BotApiError, TelegramBot
from workers.channels import (
    BLOCKED,
    INVALID_ADDRESS,
    MISCONFIGURED,
    NETWORK,
    RATE_LIMITED,
    REJECTED,
    UNAVAILABLE,
    DeliveryError,
    PermanentError,
    Rendered,
    TransientError,
)

# the relay's reason for each Bot API failure, and whether retrying can help
_FAILURES: dict[str, tuple[str, type[DeliveryError]]] = {
    "blocked": (BLOCKED, PermanentError),
    "no_chat": (INVALID_ADDRESS, PermanentError),
    "rejected": (REJECTED, PermanentError),
    "rate_limited": (RATE_LIMITED, TransientError),
    "bad_token": (MISCONFIGURED, TransientError),
    "unavailable": (UNAVAILABLE, TransientError),
    "network": (NETWORK, TransientError),
}


class TelegramChannel:
    """One bot; ``address`` is the person's Telegram id (the private chat with the bot)."""

    name = "telegram"

    def __init__(
        self, api_url: str, token: str, *, timeout: float, tls: ssl.SSLContext | bool = True
    ) -> None:
        self._bot = TelegramBot(api_url, token, timeout=timeout, tls=tls)

    async def send(self, address: str, message: Rendered) -> str | None:
        try:
            return await self._bot.send_message(address, message.html, message.button)
        except BotApiError as exc:
            raise delivery_error(exc) from None

    async def aclose(self) -> None:
        await self._bot.aclose()


def delivery_error(exc: BotApiError) -> DeliveryError:
    reason, kind = _FAILURES[exc.reason]
    if kind is TransientError:
        return TransientError(
            reason, exc.detail, retry_after=exc.retry_after, maybe_delivered=exc.maybe_delivered
        )
    return kind(reason, exc.detail)
