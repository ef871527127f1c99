"""What a Telegram Mini App sign-in tells us, once ``app.security.telegram`` has checked
Telegram's signature on it: plain data the domain may use without knowing how it was verified.

https://core.telegram.org/bots/webapps#webappinitdata
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec


class TelegramUser(msgspec.Struct, frozen=True):
    """``WebAppUser``: the person who opened the Mini App."""

    id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    allows_write_to_pm: bool | None = None
    is_bot: bool | None = None
    is_premium: bool | None = None
    photo_url: str | None = None


@dataclass(frozen=True, slots=True)
class InitData:
    """Validated ``initData``: built only by ``app.security.telegram.validate_init_data``."""

    user: TelegramUser
    auth_date: int
    start_param: str | None
    raw: str
