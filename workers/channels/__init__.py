"""Delivery channels: Telegram Bot API, an SMS provider's HTTP API, SMTP, and the dev outbox.

Each adapter sends one rendered message to one address, with a timeout, and reports failure as
one of two types the relay understands:

* ``TransientError`` — try again later (timeouts, 5xx, rate limits, our own misconfiguration
  that an operator can fix without losing the message);
* ``PermanentError`` — retrying cannot help (the person blocked the bot, the number does not
  exist, the provider refused the text): the row fails and the business sees why.

Both carry a short stable ``reason`` (stored at the head of ``notifications.last_error``, read
by ``app.domain.outbox.delivery_failures``) and a detail that never holds the message text, the
address or a credential (policy 5.2: providers get the address and the text, logs get neither).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

# reasons a delivery can fail for good; the dashboard explains each (app.domain.outbox)
BLOCKED = "blocked"
INVALID_ADDRESS = "invalid_address"
REJECTED = "rejected"
NO_CHANNEL = "no_channel"  # no address on any channel the business allows
GAVE_UP = "gave_up"  # transient errors until the attempts ran out
# reasons worth retrying
UNAVAILABLE = "provider_unavailable"
RATE_LIMITED = "rate_limited"
MISCONFIGURED = "misconfigured"
NETWORK = "network"


class DeliveryError(Exception):
    """A provider did not take the message; ``reason`` is a stable code, ``detail`` is safe."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransientError(DeliveryError):
    """Retry later; ``retry_after`` (seconds) when the provider said how long to wait.

    ``maybe_delivered``: the request may have reached the provider (no answer came back), so
    the retry may repeat the message — the relay counts it as a possible duplicate.
    """

    def __init__(
        self,
        reason: str,
        detail: str = "",
        *,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


def transport_error(exc: Exception, *secrets: str) -> TransientError:
    """An httpx failure before any answer: certainly undelivered if it never connected."""
    import httpx

    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    detail = f"timeout ({type(exc).__name__})" if isinstance(exc, httpx.TimeoutException) else None
    return TransientError(
        NETWORK,
        detail or safe_detail(f"{type(exc).__name__}: {exc}", *secrets),
        maybe_delivered=not never_sent,
    )


class PermanentError(DeliveryError):
    """Retrying cannot help; the business is shown the reason."""


class ChannelConfigError(ValueError):
    """A channel's configuration is unsafe or malformed (refused at worker start)."""


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    url: str
    web_app: bool = True  # opens the Mini App inside Telegram; else a plain link


@dataclass(frozen=True, slots=True)
class Rendered:
    """One message in one language, in every shape a channel needs."""

    subject: str
    text: str  # plain text: e-mail text part, dev outbox
    html: str  # Telegram's HTML subset (<b>, <i>, <a>), newlines kept
    sms: str  # short plain text
    button: Button | None = None
    # the HTML e-mail is rendered only when the e-mail channel asks for it
    render_email: Callable[[], str] | None = None

    @property
    def email_html(self) -> str:
        if self.render_email is not None:
            return self.render_email()
        return "<p>" + self.html.replace("\n", "<br>\n") + "</p>"


class Channel(Protocol):
    name: str

    async def send(self, address: str, message: Rendered) -> str | None:
        """Deliver; returns the provider's message id when it gives one."""
        ...

    async def aclose(self) -> None: ...


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_encrypted(name: str, url: str, *, production: bool) -> None:
    """In production, a provider URL must be https (or loopback, which never leaves the box)."""
    parts = urlsplit(url)
    if production and parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ChannelConfigError(f"{name} must use https:// in production (policy 10.1)")


def safe_detail(text: str, *secrets: str, limit: int = 300) -> str:
    """A provider's error text with our credentials blanked out, cut to ``limit``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:limit]
