"""Telegram Mini App ``initData`` validation, against the algorithm as Telegram documents it:

secret_key = HMAC_SHA256(key="WebAppData", msg=<bot_token>)
hash = hex(HMAC_SHA256(key=secret_key, msg=data_check_string)), where data_check_string is every
received field except ``hash``, as ``key=<value>`` sorted by key and joined with "\\n".
(https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote, urlencode

import pytest

from app.security.telegram import MAX_AGE_SECONDS, InvalidInitData, validate_init_data
from tests.support.telegram import make_init_data, sign_init_data

TOKEN = "7012345678:AAF-known-vector_token-for-tests"
NOW = 1_790_000_000
USER = {
    "id": 279058397,
    "first_name": "Айгерім & Co",
    "last_name": "Сейітқали=1",
    "username": "aigerim_kz",
    "language_code": "kk",
    "allows_write_to_pm": True,
    "photo_url": "https://t.me/i/userpic/320/x.jpg",
}


def telegram_hash(fields: dict[str, str], token: str = TOKEN) -> str:
    """The documented algorithm, written out here rather than borrowed from the app."""
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def fields(auth_date: int = NOW, **extra: str) -> dict[str, str]:
    return {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(USER, ensure_ascii=False, separators=(",", ":")),
        "auth_date": str(auth_date),
        **extra,
    }


def signed(values: dict[str, str], token: str = TOKEN) -> str:
    """Raw initData as the Telegram client sends it: URL-encoded, hash last."""
    return urlencode({**values, "hash": telegram_hash(values, token)}, quote_via=quote)


def test_known_vector_is_accepted():
    values = fields(signature="c2lnbmF0dXJl", start_param="salon-42")
    raw = signed(values)
    init = validate_init_data(raw, TOKEN, now=NOW + 10)
    assert init.user.id == USER["id"]
    assert init.user.first_name == "Айгерім & Co"
    assert init.user.last_name == "Сейітқали=1"
    assert init.user.language_code == "kk"
    assert init.user.allows_write_to_pm is True
    assert init.auth_date == NOW
    assert init.start_param == "salon-42"
    assert init.raw == raw


def test_the_test_signer_matches_the_documented_algorithm():
    values = fields()
    raw = sign_init_data(values, TOKEN)
    assert dict(part.split("=", 1) for part in raw.split("&"))["hash"] == telegram_hash(values)
    made = make_init_data(TOKEN, user_id=42, auth_date=NOW)
    assert validate_init_data(made, TOKEN, now=NOW).user.id == 42


def test_hash_is_order_independent_and_position_of_hash_irrelevant():
    values = fields()
    digest = telegram_hash(values)
    shuffled = urlencode({"hash": digest, **dict(reversed(list(values.items())))})
    assert validate_init_data(shuffled, TOKEN, now=NOW).user.id == USER["id"]


def test_wrong_bot_token_is_rejected():
    raw = signed(fields(), token="1111111:another-bot")
    with pytest.raises(InvalidInitData):
        validate_init_data(raw, TOKEN, now=NOW)
    with pytest.raises(InvalidInitData):
        validate_init_data(signed(fields()), "", now=NOW)  # sign-in not configured


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user", json.dumps({**USER, "id": 1}, ensure_ascii=False, separators=(",", ":"))),
        ("auth_date", str(NOW + 1)),
        ("query_id", "AAH-other"),
        ("start_param", "added-later"),
    ],
)
def test_changed_or_added_field_is_rejected(field, value):
    values = fields()
    digest = telegram_hash(values)
    raw = urlencode({**values, field: value, "hash": digest})
    with pytest.raises(InvalidInitData):
        validate_init_data(raw, TOKEN, now=NOW)


def test_removed_field_is_rejected():
    values = fields()
    digest = telegram_hash(values)
    values.pop("query_id")
    with pytest.raises(InvalidInitData):
        validate_init_data(urlencode({**values, "hash": digest}), TOKEN, now=NOW)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v, h: urlencode(v),  # no hash at all
        lambda v, h: urlencode({**v, "hash": ""}),
        lambda v, h: urlencode({**v, "hash": h.upper()}),
        lambda v, h: urlencode({**v, "hash": h[:-1]}),
        lambda v, h: urlencode({**v, "hash": h + "0"}),
        lambda v, h: urlencode({**v, "hash": "ж" * 64}),
    ],
)
def test_missing_or_malformed_hash_is_rejected(mangle):
    values = fields()
    with pytest.raises(InvalidInitData):
        validate_init_data(mangle(values, telegram_hash(values)), TOKEN, now=NOW)


def test_duplicated_keys_are_rejected():
    values = fields()
    raw = signed(values)
    for duplicate in ("auth_date=" + str(NOW), "user=%7B%22id%22%3A1%7D", "hash=" + "0" * 64):
        with pytest.raises(InvalidInitData):
            validate_init_data(raw + "&" + duplicate, TOKEN, now=NOW)
        with pytest.raises(InvalidInitData):
            validate_init_data(duplicate + "&" + raw, TOKEN, now=NOW)


def test_age_limit_is_24_hours():
    raw = signed(fields(auth_date=NOW))
    assert MAX_AGE_SECONDS == 24 * 3600
    assert validate_init_data(raw, TOKEN, now=NOW + 24 * 3600).auth_date == NOW
    with pytest.raises(InvalidInitData):
        validate_init_data(raw, TOKEN, now=NOW + 24 * 3600 + 1)
    with pytest.raises(InvalidInitData):
        validate_init_data(raw, TOKEN, now=NOW + 30 * 24 * 3600)


def test_auth_date_in_the_future_is_rejected():
    raw = signed(fields(auth_date=NOW + 3600))
    with pytest.raises(InvalidInitData):
        validate_init_data(raw, TOKEN, now=NOW)
    # a few seconds of clock skew between Telegram and us are tolerated
    assert validate_init_data(signed(fields(auth_date=NOW + 5)), TOKEN, now=NOW).auth_date


@pytest.mark.parametrize("auth_date", ["", "soon", "1.5e9", "-1", "99999999999999999999999"])
def test_signed_but_unusable_auth_date_is_rejected(auth_date):
    values = {**fields(), "auth_date": auth_date}
    with pytest.raises(InvalidInitData):
        validate_init_data(signed(values), TOKEN, now=NOW)


@pytest.mark.parametrize(
    "user",
    [None, "", "not json", "[]", '{"first_name": "no id"}', '{"id": "12"}', '{"id": 1.5}'],
)
def test_signed_but_unusable_user_is_rejected(user):
    values = fields()
    if user is None:
        values.pop("user")
    else:
        values["user"] = user
    with pytest.raises(InvalidInitData):
        validate_init_data(signed(values), TOKEN, now=NOW)


def test_oversized_input_is_rejected_even_when_signed():
    values = fields(padding="x" * 9000)
    raw = signed(values)
    assert len(raw) > 8192
    with pytest.raises(InvalidInitData):
        validate_init_data(raw, TOKEN, now=NOW)


@pytest.mark.parametrize("raw", ["", "&", "=", "%", "a", "hash", "a=1&&b=2", "\x00=1", "%zz=1"])
def test_garbage_is_rejected_not_crashing(raw):
    with pytest.raises(InvalidInitData):
        validate_init_data(raw, TOKEN, now=NOW)
