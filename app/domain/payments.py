"""Paying an invoice through the payment provider (issue 16; policy 4.3, 5.3, 7.3).

create a payment (:func:`start_payment`: the provider's hosted page for the invoice) → the
owner pays there → the provider's signed notification (:func:`handle_notification`) → the
invoice's status. The protocol is CloudPayments' (``app.integrations.cloudpayments``).

A notification is believed only with a valid signature (compared in constant time) and a
recent ``DateTime`` (older than ``PAYMENT_CALLBACK_MAX_AGE_SECONDS``, or from the future, is
refused like a forgery: it changes nothing). Then, in one transaction holding the invoice's
row lock:

* the same transaction reported twice is one row (``UNIQUE (provider, provider_ref)``) and
  changes nothing the second time;
* events may come in any order: a Fail after a Pay of the same transaction is ignored (the
  money was taken); a Refund before its Pay is kept and counted once the Pay arrives — the
  invoice's status is always recomputed from every accepted row, never stepped by one event;
* a payment whose amount, currency or account does not match the invoice, or that arrives for
  an invoice no longer open (paid twice, cancelled), is recorded with a ``flag`` for an
  operator and never settles anything;
* accepted payments at least the invoice's total make it ``paid`` — then, once, the
  subscription is told (``app.domain.subscriptions.on_invoice_paid``); refunds reaching what
  was paid make it ``refunded``; a partial refund leaves it paid, the refunded sum shown.

Every payment started, received, declined, refunded or flagged is on the business's audit
chain. Nothing about the card or its holder is ever stored (the adapter drops those fields).

With no provider keys set (development), :func:`dev_page` and :func:`dev_settle` play the
provider: a page of the app that says so, where one pays or declines, and which sends the
provider's Check and then Pay or Fail, signed with a development key, through
:func:`handle_notification` — the code path a real notification takes. Refused in production.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import audit
from app.domain.audit import Actor
from app.domain.errors import DomainError, NotFound, Unauthorized, ValidationFailed
from app.domain.members import Member
from app.i18n import N_, gettext
from app.integrations import cloudpayments
from app.integrations.cloudpayments import Notification
from app.models import Business, Invoice, Payment
from app.models.billing import PaymentOrder
from app.settings import Settings, secret_key_for

log = structlog.get_logger("pozapisi.payments")

FUTURE_SKEW = timedelta(minutes=10)  # a provider's clock a little ahead of ours
FLAG_LABELS = {
    "amount_mismatch": N_("The amount differs from the invoice"),
    "currency_mismatch": N_("The currency differs from the invoice"),
    "account_mismatch": N_("Paid for another account"),
    "invoice_not_open": N_("The invoice was not awaiting payment"),
}
STATUS_LABELS = {"completed": N_("Completed"), "declined": N_("Declined")}
KIND_LABELS = {"payment": N_("Payment"), "refund": N_("Refund")}


class PaymentUnavailable(DomainError):
    code = "unavailable"
    status = 503
    message = N_("The payment service did not answer. Please try again in a few minutes.")


def five_years_after(day: date) -> date:
    """The last day a financial record must be kept (policy 7.3), as the tables check it."""
    try:
        later = day.replace(year=day.year + 5)
    except ValueError:  # 29 February
        later = day.replace(year=day.year + 5, day=28)
    return max(later, day + timedelta(days=1826))


# --- the provider's identity ---------------------------------------------------------------


def provider_name(settings: Settings) -> str:
    return cloudpayments.NAME if settings.payments_configured else cloudpayments.DEV_NAME


def dev_enabled(settings: Settings) -> bool:
    return not settings.payments_configured and not settings.is_production


def notification_secret(settings: Settings) -> str:
    """The key notifications are signed with: the provider's API secret; in development the
    development provider's, derived from SECRET_KEY; in production without keys, none (every
    notification is refused)."""
    if settings.payments_configured:
        return settings.payment_api_secret
    if settings.is_production:
        return ""
    return hmac.new(secret_key_for(settings).encode(), b"payments-dev", hashlib.sha256).hexdigest()


# --- listing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentRow:
    id: int
    invoice_id: int
    invoice_number: str
    kind: str  # payment, refund
    status: str  # completed, declined
    amount_tiyn: int
    currency: str
    at: datetime
    provider: str
    flag: str | None

    @property
    def status_label(self) -> str:
        if self.flag:
            return gettext(N_("Under review"))
        return gettext(STATUS_LABELS.get(self.status, self.status))

    @property
    def kind_label(self) -> str:
        return gettext(KIND_LABELS.get(self.kind, self.kind))

    @property
    def flag_label(self) -> str | None:
        return gettext(FLAG_LABELS[self.flag]) if self.flag in FLAG_LABELS else self.flag


async def list_for_business(session: AsyncSession, business_id: int) -> list[PaymentRow]:
    """What the provider reported for the business's invoices, newest first."""
    rows = await session.execute(
        select(Payment, Invoice.number)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Payment.business_id == business_id)
        .order_by(Payment.paid_at.desc(), Payment.id.desc())
    )
    return [
        PaymentRow(
            id=p.id, invoice_id=p.invoice_id, invoice_number=number, kind=p.kind,
            status=p.status, amount_tiyn=p.amount_tiyn, currency=p.currency, at=p.paid_at,
            provider=p.provider, flag=p.flag,
        )
        for p, number in rows.all()
    ]  # fmt: skip


# --- starting a payment --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartedPayment:
    provider: str
    order_ref: str
    url: str | None  # the provider's page; None: the development page for order_ref


def _dev_token(settings: Settings, business_id: int, invoice_id: int, nonce: str) -> str:
    body = f"{business_id}.{invoice_id}.{nonce}"
    mac = hmac.new(notification_secret(settings).encode(), body.encode(), hashlib.sha256)
    return f"{body}.{mac.hexdigest()[:32]}"


def _read_dev_token(settings: Settings, token: str) -> tuple[int, int]:
    parts = token.split(".")
    if not dev_enabled(settings) or len(parts) != 4 or not all(parts):
        raise NotFound()
    business, invoice, nonce, _mac = parts
    if not (business.isdigit() and invoice.isdigit() and len(business) < 19 and len(invoice) < 19):
        raise NotFound()
    expected = _dev_token(settings, int(business), int(invoice), nonce)
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise NotFound()
    return int(business), int(invoice)


async def _payable(session: AsyncSession, by: Member, invoice_id: int) -> Invoice:
    invoice = await session.scalar(
        select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.business_id == by.business_id)
        .with_for_update()
    )
    if invoice is None or invoice.kind != "invoice":
        raise NotFound()
    if invoice.status != "open":
        raise ValidationFailed(gettext(N_("This invoice is not awaiting payment.")))
    return invoice


async def _order_of(session: AsyncSession, invoice: Invoice, provider: str) -> PaymentOrder | None:
    return await session.scalar(
        select(PaymentOrder).where(
            PaymentOrder.invoice_id == invoice.id, PaymentOrder.provider == provider,
            PaymentOrder.amount_tiyn == invoice.amount_tiyn,
        )
    )  # fmt: skip


async def start_payment(
    db: Database, by: Member, invoice_id: int, *, settings: Settings, actor: Actor
) -> StartedPayment:
    """The provider's page for paying one of the business's open invoices (made once per
    invoice and reused). What the provider is told: the amount, the invoice number, the
    business's id and a description — nothing about any person (policy 5.3). The provider is
    asked outside any transaction: a slow provider holds no connection and no lock."""
    provider = provider_name(settings)
    if provider == cloudpayments.DEV_NAME and settings.is_production:
        raise PaymentUnavailable()
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        invoice = await _payable(session, by, invoice_id)
        existing = await _order_of(session, invoice, provider)
        if existing is not None:
            return StartedPayment(provider, existing.order_ref, existing.url or None)
        number, amount, currency = invoice.number, invoice.amount_tiyn, invoice.currency
    if provider == cloudpayments.NAME:
        try:
            order = await cloudpayments.create_order(
                api_url=settings.payment_api_url, public_id=settings.payment_public_id,
                api_secret=settings.payment_api_secret, amount_tiyn=amount, currency=currency,
                description=f"PoZapisi, invoice {number}", invoice_number=number,
                account_id=str(by.business_id), tls_min=settings.outbound_tls_min,
            )  # fmt: skip
        except cloudpayments.ProviderError as exc:
            log.warning("payment order refused", error=str(exc), invoice_id=invoice_id)
            raise PaymentUnavailable() from None
        ref, url = order.ref, order.url
    else:
        ref = _dev_token(settings, by.business_id, invoice_id, secrets.token_hex(6))
        url = ""
    async with db.transaction(business_id=by.business_id, account_id=by.account_id) as session:
        invoice = await _payable(session, by, invoice_id)  # still open, and as it was
        existing = await _order_of(session, invoice, provider)
        if existing is not None:  # made meanwhile by another click: that one is used
            return StartedPayment(provider, existing.order_ref, existing.url or None)
        if invoice.amount_tiyn != amount:  # pragma: no cover - issued invoices never change
            raise ValidationFailed()
        session.add(
            PaymentOrder(
                business_id=invoice.business_id, invoice_id=invoice.id, provider=provider,
                order_ref=ref, url=url, amount_tiyn=amount, currency=currency,
                retain_until=invoice.retain_until,
            )
        )  # fmt: skip
        await audit.record(
            session, actor=actor, action="payment.started", entity="invoice",
            entity_id=invoice.id, business_id=invoice.business_id,
            after={"provider": provider, "amount_tiyn": amount},
        )  # fmt: skip
        return StartedPayment(provider, ref, url or None)


# --- notifications -------------------------------------------------------------------------

_FOR_PAYMENT = text("SELECT invoice_id, business_id FROM pz_invoice_for_payment(:number)")


class StaleNotification(Unauthorized):
    message = N_("The notification is too old.")


async def handle_notification(
    db: Database,
    settings: Settings,
    event: str,
    body: bytes,
    headers: dict[str, str],
    content_type: str,
    *,
    now: datetime | None = None,
) -> int:
    """One notification from the provider, as received (raw body and headers); the code to
    answer it with. A bad signature or a stale time is ``Unauthorized`` and changes nothing;
    an unreadable body ``ValidationFailed``."""
    if not cloudpayments.verify(body, headers, notification_secret(settings)):
        raise Unauthorized()
    try:
        note = cloudpayments.parse(event, body, content_type)
    except cloudpayments.BadNotification as exc:
        raise ValidationFailed(fields={"body": str(exc)}) from None
    now = now or datetime.now(UTC)
    if note.at < now - timedelta(seconds=settings.payment_callback_max_age_s) or (
        note.at > now + FUTURE_SKEW
    ):
        raise StaleNotification()
    async with db.transaction() as session:
        found = (await session.execute(_FOR_PAYMENT, {"number": note.invoice_number})).first()
    if found is None:
        # money for no invoice of ours: nothing to attach it to; the provider's records and
        # this log line are what an operator follows up
        log.warning("payment notification for an unknown invoice", notification=event,
                    transaction_id=note.transaction_id)  # fmt: skip
        return cloudpayments.UNKNOWN_INVOICE if event == "check" else cloudpayments.OK
    async with db.transaction(business_id=found.business_id) as session:
        invoice = await session.scalar(
            select(Invoice).where(Invoice.id == found.invoice_id).with_for_update()
        )
        assert invoice is not None
        if event == "check":
            return _check(invoice, note)
        await _record(session, invoice, note, provider_name(settings))
        return cloudpayments.OK


def _mismatch(invoice: Invoice, note: Notification) -> str | None:
    if note.account_id and note.account_id != str(invoice.business_id):
        return "account_mismatch"
    if note.currency != invoice.currency:
        return "currency_mismatch"
    if note.amount_tiyn != invoice.amount_tiyn:
        return "amount_mismatch"
    if invoice.status != "open":
        return "invoice_not_open"
    return None


def _check(invoice: Invoice, note: Notification) -> int:
    """Before the card is charged: whether we would accept this payment."""
    flag = _mismatch(invoice, note)
    return {
        None: cloudpayments.OK,
        "account_mismatch": cloudpayments.WRONG_ACCOUNT,
        "amount_mismatch": cloudpayments.WRONG_AMOUNT,
    }.get(flag, cloudpayments.NOT_ACCEPTED)


async def _record(
    session: AsyncSession, invoice: Invoice, note: Notification, provider: str
) -> None:
    existing = await session.scalar(
        select(Payment)
        .where(Payment.provider == provider, Payment.provider_ref == note.transaction_id)
        .with_for_update()
    )
    if existing is not None:
        if note.event == "pay" and existing.kind == "payment" and existing.status == "declined":
            # the Fail of an attempt came first, yet the money was taken: the Pay wins
            existing.status = "completed"
            existing.reason = None
            existing.flag = _mismatch(invoice, note)
            existing.paid_at = note.at
            await session.flush()
            await _audit(session, existing, invoice)
            await _settle(session, invoice)
        # else: the same event again, or a Fail after its Pay: nothing changes
        return
    kind = "refund" if note.event == "refund" else "payment"
    if kind == "refund":
        flag = "currency_mismatch" if note.currency != invoice.currency else None
    elif note.event == "pay":
        flag = _mismatch(invoice, note)
    else:
        flag = None  # a declined attempt moves no money
    row_id = await session.scalar(
        insert(Payment)
        .values(
            business_id=invoice.business_id, invoice_id=invoice.id,
            amount_tiyn=note.amount_tiyn, provider=provider, provider_ref=note.transaction_id,
            paid_at=note.at, retain_until=five_years_after(note.at.date()), kind=kind,
            status="declined" if note.event == "fail" else "completed", currency=note.currency,
            parent_ref=note.payment_transaction_id if kind == "refund" else None, flag=flag,
            reason=note.reason if note.event == "fail" else None,
        )
        .on_conflict_do_nothing(constraint="uq_payments_provider_ref")
        .returning(Payment.id)
    )  # fmt: skip
    if row_id is None:  # recorded by a concurrent delivery of the same event
        return
    payment = await session.get_one(Payment, row_id)
    await _audit(session, payment, invoice)
    await _settle(session, invoice)


async def _audit(session: AsyncSession, payment: Payment, invoice: Invoice) -> None:
    if payment.flag:
        action = "payment.flagged"
    elif payment.kind == "refund":
        action = "payment.refunded"
    elif payment.status == "declined":
        action = "payment.declined"
    else:
        action = "payment.completed"
    await audit.record(
        session, actor=audit.SYSTEM, action=action, entity="payment", entity_id=payment.id,
        business_id=invoice.business_id,
        after={
            "invoice_id": invoice.id, "kind": payment.kind, "status": payment.status,
            "amount_tiyn": payment.amount_tiyn, "currency": payment.currency,
            "provider": payment.provider, "transaction": payment.provider_ref,
            "flag": payment.flag,
        },
    )  # fmt: skip


async def _settle(session: AsyncSession, invoice: Invoice) -> None:
    """The invoice's status from every accepted row of it, whatever order they came in."""
    totals = (
        await session.execute(
            select(
                func.coalesce(func.sum(Payment.amount_tiyn).filter(Payment.kind == "payment"), 0),
                func.coalesce(func.sum(Payment.amount_tiyn).filter(Payment.kind == "refund"), 0),
            ).where(
                Payment.invoice_id == invoice.id, Payment.status == "completed",
                Payment.flag.is_(None),
            )
        )
    ).one()  # fmt: skip
    paid, refunded = int(totals[0]), int(totals[1])
    from app.domain import subscriptions  # imported here: subscriptions imports invoices

    if invoice.status == "open" and paid >= invoice.amount_tiyn:
        invoice.status = "paid"
        await session.flush()
        await subscriptions.on_invoice_paid(session, invoice)
    if invoice.status == "paid" and paid > 0 and refunded >= paid:
        invoice.status = "refunded"
        await session.flush()
        await subscriptions.on_invoice_refunded(session, invoice)
    elif invoice.status == "refunded" and paid - refunded >= invoice.amount_tiyn:
        invoice.status = "paid"
        await session.flush()


# --- the development provider --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevOrder:
    order_ref: str
    business_id: int
    invoice_id: int
    invoice_number: str
    business_name: str
    amount_tiyn: int
    currency: str
    status: str


async def dev_page(db: Database, settings: Settings, order_ref: str) -> DevOrder:
    """What the development provider's page shows; ``NotFound`` when it is off or the order
    is not one it made."""
    business_id, invoice_id = _read_dev_token(settings, order_ref)
    async with db.transaction(business_id=business_id) as session:
        invoice = await session.scalar(select(Invoice).where(Invoice.id == invoice_id))
        name = await session.scalar(select(Business.name).where(Business.id == business_id))
    if invoice is None or name is None:
        raise NotFound()
    return DevOrder(
        order_ref=order_ref, business_id=business_id, invoice_id=invoice_id,
        invoice_number=invoice.number, business_name=name, amount_tiyn=invoice.amount_tiyn,
        currency=invoice.currency, status=invoice.status,
    )  # fmt: skip


async def dev_settle(
    db: Database, settings: Settings, order_ref: str, *, pay: bool, now: datetime | None = None
) -> DevOrder:
    """The development provider's answer to "Pay" or "Decline": a signed Check, then a signed
    Pay or Fail, each through :func:`handle_notification` as the provider would send them
    (with the card fields a real one carries, which PoZapisi drops)."""
    order = await dev_page(db, settings, order_ref)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    fields: dict[str, Any] = {
        "TransactionId": str(secrets.randbelow(9 * 10**9) + 10**9),
        "Amount": cloudpayments.from_tiyn(order.amount_tiyn),
        "Currency": order.currency,
        "PaymentAmount": cloudpayments.from_tiyn(order.amount_tiyn),
        "PaymentCurrency": order.currency,
        "DateTime": now.strftime(cloudpayments.TIME_FORMAT),
        "CardFirstSix": "424242",
        "CardLastFour": "4242",
        "CardType": "Visa",
        "CardExpDate": "12/30",
        "TestMode": "1",
        "Status": "Completed",
        "OperationType": "Payment",
        "InvoiceId": order.invoice_number,
        "AccountId": str(order.business_id),
    }
    secret = notification_secret(settings)

    async def send(event: str, values: dict[str, Any]) -> int:
        body = cloudpayments.notification_body(values)
        headers = {cloudpayments.SIGNATURE_HEADER: cloudpayments.sign(body, secret)}
        return await handle_notification(
            db, settings, event, body, headers, "application/x-www-form-urlencoded", now=now
        )

    if await send("check", fields) != cloudpayments.OK:
        return await dev_page(db, settings, order_ref)
    if pay:
        await send("pay", fields)
    else:
        await send("fail", {**fields, "Status": "Declined", "Reason": "InsufficientFunds",
                            "ReasonCode": "5051"})  # fmt: skip
    return await dev_page(db, settings, order_ref)
