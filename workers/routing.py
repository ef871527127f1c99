"""Which channel reaches a person: Telegram if the bot may write to them, else SMS, else e-mail.

The bot can only message people who started it or allowed it in the Mini App
(``allows_write_to_pm``); a business can switch channels off (it pays for SMS, say). A row may
also name its channel and address itself (a sign-in code to a phone, a per-channel policy
notice): then only that channel is tried.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from workers.context import AccountInfo, BusinessInfo

ORDER = ("telegram", "sms", "email")


@dataclass(frozen=True, slots=True)
class Route:
    channel: str
    address: str


def _address_channel(address: str) -> str:
    if "@" in address:
        return "email"
    if address.startswith("+"):
        return "sms"
    return "telegram"


def _account_address(account: AccountInfo, channel: str) -> str | None:
    if channel == "telegram":
        ok = account.telegram_id is not None and account.allows_write_to_pm
        return str(account.telegram_id) if ok else None
    if channel == "sms":
        return account.phone
    return account.email


def _switched_on(business: BusinessInfo | None, channel: str) -> bool:
    if business is None:  # platform messages: sign-in codes, policy notices
        return True
    return {
        "telegram": business.notify_telegram,
        "sms": business.notify_sms,
        "email": business.notify_email,
    }[channel]


def candidates(
    *,
    channel: str,
    address: str | None,
    account: AccountInfo | None,
    business: BusinessInfo | None,
) -> list[Route]:
    """Every way to reach the recipient, best first, honouring the business's switches."""
    if address:
        chosen = _address_channel(address) if channel == "auto" else channel
        routes = [Route(chosen, address)]
    elif account is not None:
        wanted = ORDER if channel == "auto" else (channel,)
        routes = [
            Route(c, a) for c in wanted if (a := _account_address(account, c)) is not None and a
        ]
    else:
        routes = []
    return [r for r in routes if _switched_on(business, r.channel)]


def choose(routes: list[Route], configured: Collection[str]) -> Route | None:
    """The first route whose channel has a provider configured."""
    return next((r for r in routes if r.channel in configured), None)
