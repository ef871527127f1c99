"""SMS over an HTTP JSON API with an API key, the way Kazakhstan's SMS gateways work.

Protocol (``SMS_API_URL``, ``SMS_API_KEY``)::

    POST {SMS_API_URL}/send
    Authorization: Bearer <key>
    {"recipient": "+77011234567", "text": "...", "sender": "PoZapisi"}

    202/200 {"id": "...", "status": "accepted"}
    400     {"error": "invalid_recipient" | "invalid_text" | ...}   refused for good
    401/403 bad key; 402 balance exhausted; 429 (Retry-After); 5xx  worth retrying

Only the number and the text leave PoZapisi (policy 5.2).
"""

from __future__ import annotations

import re
import ssl
from typing import Any

import httpx

from workers.channels import (
    INVALID_ADDRESS,
    MISCONFIGURED,
    RATE_LIMITED,
    REJECTED,
    UNAVAILABLE,
    PermanentError,
    Rendered,
    TransientError,
    safe_detail,
    transport_error,
)

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class SmsChannel:
    name = "sms"

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        sender: str,
        timeout: float,
        tls: ssl.SSLContext | bool = True,
    ) -> None:
        self._key = api_key
        self._sender = sender
        self._client = httpx.AsyncClient(
            base_url=f"{api_url.rstrip('/')}/",
            timeout=timeout,
            verify=tls,
            follow_redirects=False,
            headers={"Authorization": f"Bearer {api_key}"},
        )

    async def send(self, address: str, message: Rendered) -> str | None:
        if not E164.match(address):
            raise PermanentError(INVALID_ADDRESS, "not an E.164 phone number")
        body = {"recipient": address, "text": message.sms, "sender": self._sender}
        try:
            response = await self._client.post("send", json=body)
        except httpx.TransportError as exc:
            raise transport_error(exc, self._key) from None
        return self._outcome(response)

    def _outcome(self, response: httpx.Response) -> str | None:
        status = response.status_code
        try:
            data: Any = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if status in (200, 201, 202) and data.get("status", "accepted") == "accepted":
            return str(data["id"]) if data.get("id") is not None else None
        error = str(data.get("error") or data.get("status") or f"HTTP {status}")
        detail = safe_detail(f"HTTP {status}: {error}", self._key)
        if status == 429:
            raise TransientError(RATE_LIMITED, detail, retry_after=_retry_after(response))
        if status >= 500:
            raise TransientError(UNAVAILABLE, detail)
        if status in (401, 402, 403):
            raise TransientError(MISCONFIGURED, detail)  # key or balance: an operator fixes it
        if "recipient" in error or "number" in error or "phone" in error:
            raise PermanentError(INVALID_ADDRESS, detail)
        if 400 <= status < 500:
            raise PermanentError(REJECTED, detail)
        raise TransientError(UNAVAILABLE, detail)

    async def aclose(self) -> None:
        await self._client.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None
