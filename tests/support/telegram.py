"""Signed Telegram ``initData`` for tests and benchmarks, the way a Telegram client sends it.

The signer is written out here from Telegram's documentation rather than borrowed from
``app.security.telegram``, so the validator is checked against an independent implementation:
secret = HMAC_SHA256(key="WebAppData", msg=bot_token); hash = HMAC_SHA256(secret,
data_check_string), the data check string being every field but ``hash`` as ``key=value``,
sorted by key and joined with "\\n".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode


def sign_init_data(fields: dict[str, str], bot_token: str) -> str:
    """Raw initData carrying ``fields`` and the hash Telegram would give them."""
    data = {key: value for key, value in fields.items() if key != "hash"}
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{key}={data[key]}" for key in sorted(data))
    data["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(data)


def make_init_data(
    bot_token: str,
    *,
    user_id: int,
    first_name: str = "Test",
    language_code: str = "ru",
    auth_date: int | None = None,
    allows_write_to_pm: bool = True,
) -> str:
    """initData for one Telegram user, signed with ``bot_token`` (now, unless ``auth_date``)."""
    user = {
        "id": user_id,
        "first_name": first_name,
        "language_code": language_code,
        "allows_write_to_pm": allows_write_to_pm,
    }
    return sign_init_data(
        {
            "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
            "auth_date": str(int(time.time()) if auth_date is None else auth_date),
            "query_id": "AAH" + str(user_id),
        },
        bot_token,
    )
