"""CloudPayments, the payment provider PoZapisi bills businesses through (it serves Kazakhstan
and takes tenge), spoken as its public documentation describes it:
https://developers.cloudpayments.ru/ — "Уведомления" (notifications) and "Создание счета для
отправки по почте" (``POST /orders/create``, which answers with the hosted payment page's URL).

* **Hosted page.** ``orders/create`` (HTTP Basic: the site's Public ID and API secret) with
  ``Amount``, ``Currency``, ``Description``, ``InvoiceId`` (our invoice number) and ``AccountId``
  (the business's id) answers ``{"Success": true, "Model": {"Id": …, "Url": …}}``; the owner is
  sent to ``Url`` and enters the card there: card data never reaches PoZapisi (policy 5.3: the
  provider gets what payment needs — an amount, an invoice number, a business id; no client
  data, no e-mail unless the owner types it on the provider's page).
* **Notifications** (Check, Pay, Fail, Refund) are POSTed to our URL, form-encoded (or JSON,
  a setting of the site), signed: ``Content-HMAC`` is base64 of HMAC-SHA256 of the raw body
  with the API secret (``X-Content-HMAC`` the same over the URL-decoded body). We answer
  ``{"code": 0}``; to a Check, 10 (unknown invoice), 11 (wrong account), 12 (wrong amount) or 13
  (cannot be accepted) refuse the payment before the card is charged.
* Fields read: ``TransactionId``, ``Amount`` (a decimal in the currency's units), ``Currency``,
  ``DateTime`` (UTC, ``yyyy-MM-dd HH:mm:ss``), ``InvoiceId``, ``AccountId``, ``Status``,
  ``OperationType``, and for Fail ``Reason``/``ReasonCode``, for Refund
  ``PaymentTransactionId``. Everything else the provider sends (card's first six and last
  four digits, card holder's name, e-mail, IP address, token) is dropped unread.

The development provider (no keys configured) signs with a key derived from ``SECRET_KEY``,
so its notifications go through the very same verification.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

import httpx

from app.integrations.tls import outbound_tls_context

NAME = "cloudpayments"
DEV_NAME = "dev"
EVENTS = ("check", "pay", "fail", "refund")
SIGNATURE_HEADER = "content-hmac"
DECODED_SIGNATURE_HEADER = "x-content-hmac"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIMEOUT_S = 10.0

# answers to a notification (the documentation's codes)
OK = 0
UNKNOWN_INVOICE = 10
WRONG_ACCOUNT = 11
WRONG_AMOUNT = 12
NOT_ACCEPTED = 13


class BadNotification(ValueError):
    """The notification is not one we can read (a field missing or malformed)."""


class ProviderError(RuntimeError):
    """The provider refused or could not be reached."""


def sign(body: bytes, secret: str) -> str:
    """``Content-HMAC``: base64 of HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, headers: dict[str, str], secret: str) -> bool:
    """Whether the body carries our secret's signature, compared in constant time."""
    if not secret:
        return False
    given = headers.get(SIGNATURE_HEADER)
    if given is not None:
        return hmac.compare_digest(given.strip().encode(), sign(body, secret).encode())
    decoded = headers.get(DECODED_SIGNATURE_HEADER)
    if decoded is not None:
        plain = unquote_plus(body.decode("utf-8", "replace")).encode()
        return hmac.compare_digest(decoded.strip().encode(), sign(plain, secret).encode())
    return False


def to_tiyn(amount: str) -> int:
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise BadNotification("Amount") from None
    tiyn = value * 100
    if not value.is_finite() or tiyn != tiyn.to_integral_value() or tiyn <= 0:
        raise BadNotification("Amount")
    return int(tiyn)


def from_tiyn(tiyn: int) -> str:
    return f"{Decimal(tiyn) / 100:.2f}"


@dataclass(frozen=True, slots=True)
class Notification:
    """What PoZapisi keeps of a notification (nothing about the card or its holder)."""

    event: str  # check, pay, fail, refund
    transaction_id: str
    amount_tiyn: int
    currency: str
    at: datetime
    invoice_number: str
    account_id: str
    status: str
    payment_transaction_id: str | None  # a refund's payment
    reason: str | None


def parse(event: str, body: bytes, content_type: str) -> Notification:
    """Read a notification's fields; ``BadNotification`` when one we need is missing."""
    if event not in EVENTS:
        raise BadNotification("event")
    try:
        if "json" in content_type:
            raw = json.loads(body)
            fields = {str(k): str(v) for k, v in raw.items() if v is not None}
        else:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise BadNotification("body") from None

    def need(name: str) -> str:
        value = fields.get(name, "").strip()
        if not value or len(value) > 100:
            raise BadNotification(name)
        return value

    try:
        at = datetime.strptime(need("DateTime"), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise BadNotification("DateTime") from None
    reason = fields.get("Reason") or fields.get("ReasonCode")
    return Notification(
        event=event,
        transaction_id=need("TransactionId"),
        amount_tiyn=to_tiyn(need("Amount")),
        currency=need("Currency").upper()[:3],
        at=at,
        invoice_number=fields.get("InvoiceId", "").strip()[:30],
        account_id=fields.get("AccountId", "").strip()[:100],
        status=fields.get("Status", "").strip()[:30],
        payment_transaction_id=(fields.get("PaymentTransactionId") or "").strip()[:100] or None,
        reason=reason.strip()[:100] if reason else None,
    )


def notification_body(fields: dict[str, Any]) -> bytes:
    """A notification's body as CloudPayments sends it (form-encoded, UTF-8)."""
    return urlencode({k: str(v) for k, v in fields.items()}).encode()


@dataclass(frozen=True, slots=True)
class Order:
    ref: str
    url: str


async def create_order(
    *,
    api_url: str,
    public_id: str,
    api_secret: str,
    amount_tiyn: int,
    currency: str,
    description: str,
    invoice_number: str,
    account_id: str,
    tls_min: str = "1.2",
) -> Order:
    """``POST {api_url}/orders/create``: a hosted payment page for the invoice."""
    payload = {
        "Amount": float(Decimal(amount_tiyn) / 100),
        "Currency": currency,
        "Description": description,
        "InvoiceId": invoice_number,
        "AccountId": account_id,
        "RequireConfirmation": False,
        "SendEmail": False,
    }
    try:
        async with httpx.AsyncClient(
            timeout=TIMEOUT_S, verify=outbound_tls_context(tls_min)
        ) as client:
            response = await client.post(
                f"{api_url}/orders/create", json=payload, auth=(public_id, api_secret)
            )
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"orders/create: {type(exc).__name__}") from None
    model = answer.get("Model") if isinstance(answer, dict) else None
    if response.status_code != 200 or not answer.get("Success") or not isinstance(model, dict):
        raise ProviderError(f"orders/create refused ({response.status_code})")
    ref, url = str(model.get("Id") or ""), str(model.get("Url") or "")
    if not ref or not url.startswith("https://"):
        raise ProviderError("orders/create answered without a page")
    return Order(ref=ref[:100], url=url[:500])
