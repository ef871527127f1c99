"""Telegram Mini App ``initData``: validated server-side, never trusted unsigned.

https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app
secret = HMAC_SHA256(key="WebAppData", msg=bot_token); hash = HMAC_SHA256(secret, data_check_string)
where data_check_string is every field but ``hash`` as ``key=value`` sorted by key, joined by "\\n".
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl

import msgspec

from app.integrations.telegram_webapp import InitData, TelegramUser

MAX_AGE_SECONDS = 24 * 3600
MAX_INIT_DATA_LENGTH = 8192


class InvalidInitData(ValueError):
    pass


def _secret(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def _check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "hash")


def _verified_fields(
    raw: str, bot_token: str, *, now: float | None, max_age: int
) -> dict[str, str]:
    """The fields of a Telegram-signed query string, after checking its hash and age."""
    if not bot_token:
        raise InvalidInitData("Telegram sign-in is not configured")
    if not raw or len(raw) > MAX_INIT_DATA_LENGTH:
        raise InvalidInitData("missing or oversized initData")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise InvalidInitData("malformed initData") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InvalidInitData("duplicate keys")
    received = fields.get("hash", "")
    expected = hmac.new(
        _secret(bot_token), _check_string(fields).encode(), hashlib.sha256
    ).hexdigest()
    # bytes: compare_digest refuses non-ASCII str, and a forged hash may contain anything
    if not hmac.compare_digest(expected.encode(), received.encode("utf-8", "surrogateescape")):
        raise InvalidInitData("bad signature")
    try:
        auth_date = int(fields["auth_date"])
    except (KeyError, ValueError) as exc:
        raise InvalidInitData("initData lacks auth_date") from exc
    now = time.time() if now is None else now
    if auth_date > now + 60 or now - auth_date > max_age:
        raise InvalidInitData("initData is too old")
    return fields


def validate_init_data(
    raw: str, bot_token: str, *, now: float | None = None, max_age: int = MAX_AGE_SECONDS
) -> InitData:
    """Return the signed user, or raise InvalidInitData (forged, stale, malformed)."""
    fields = _verified_fields(raw, bot_token, now=now, max_age=max_age)
    try:
        user = msgspec.json.decode(fields["user"], type=TelegramUser)
    except (KeyError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidInitData("initData lacks user") from exc
    return InitData(
        user=user,
        auth_date=int(fields["auth_date"]),
        start_param=fields.get("start_param"),
        raw=raw,
    )


class SharedContact(msgspec.Struct, frozen=True):
    user_id: int
    phone_number: str
    first_name: str = ""
    last_name: str | None = None


def validate_shared_contact(
    raw: str, bot_token: str, *, now: float | None = None, max_age: int = 600
) -> SharedContact:
    """The phone a user shared with ``WebApp.requestContact``: signed by Telegram like initData."""
    fields = _verified_fields(raw, bot_token, now=now, max_age=max_age)
    try:
        return msgspec.json.decode(fields["contact"], type=SharedContact)
    except (KeyError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidInitData("no contact in the signed data") from exc
