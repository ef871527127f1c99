"""Payments through CloudPayments' protocol (issue 16 item 4; policy 5.3, 7.3): signed
notifications verified in constant time and refused when forged or stale (401, nothing
changes), one payment per transaction however often it is reported, events in any order, an
amount or currency that does not match the invoice flagged and not accepted, refunds, no card
data kept, and the development provider page that sends the same signed notifications."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import audit, invoices, payments
from app.domain.invoices import InvoiceLine
from app.integrations import cloudpayments
from app.models import Invoice
from app.settings import Settings
from tests.factories import BusinessFixture, new_business
from tests.support.dashboard import add_member, csrf_of, form, sign_in_as

PRO = InvoiceLine(
    description={"ru": "Тариф Pro, месяц", "kk": "Pro тарифі, ай", "en": "Pro plan, a month"},
    quantity=1,
    unit_price_tiyn=499_000,
    amount_tiyn=499_000,
)
FORM = "application/x-www-form-urlencoded"


async def issue(db: Database, business: BusinessFixture) -> Invoice:
    async with db.transaction(business_id=business.id) as session:
        return await invoices.issue_for_subscription(
            session, business_id=business.id, subscription_id=None, lines=[PRO],
            period_start=date(2026, 12, 1), period_end=date(2027, 1, 1), actor=audit.SYSTEM,
        )  # fmt: skip


_transactions = iter(range(7_000_000_000, 8_000_000_000))


def fields_for(invoice: Invoice, **overrides: Any) -> dict[str, Any]:
    """A notification as CloudPayments sends it, card fields included (PoZapisi drops them)."""
    return {
        "TransactionId": str(next(_transactions)),
        "Amount": "4990.00",
        "Currency": "KZT",
        "PaymentAmount": "4990.00",
        "PaymentCurrency": "KZT",
        "DateTime": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "CardFirstSix": "510510",
        "CardLastFour": "5100",
        "CardType": "MasterCard",
        "CardExpDate": "11/29",
        "Name": "AIGERIM SEITKALI",
        "Email": "aigerim@example.kz",
        "IpAddress": "203.0.113.77",
        "TestMode": "0",
        "Status": "Completed",
        "OperationType": "Payment",
        "InvoiceId": invoice.number,
        "AccountId": str(invoice.business_id),
        **overrides,
    }


async def notify(
    client: httpx.AsyncClient, settings: Settings, event: str, fields: dict[str, Any],
    *, secret: str | None = None, header: str = "Content-HMAC",
) -> httpx.Response:  # fmt: skip
    body = cloudpayments.notification_body(fields)
    key = payments.notification_secret(settings) if secret is None else secret
    return await client.post(
        f"/payments/cloudpayments/{event}", content=body,
        headers={"Content-Type": FORM, header: cloudpayments.sign(body, key)},
    )  # fmt: skip


async def state(owner_session: AsyncSession, invoice_id: int) -> tuple[str, list[tuple[Any, ...]]]:
    await owner_session.commit()
    status = await owner_session.scalar(
        text("SELECT status FROM invoices WHERE id = :i"), {"i": invoice_id}
    )
    rows = await owner_session.execute(
        text("SELECT kind, status, amount_tiyn, flag FROM payments WHERE invoice_id = :i "
             "ORDER BY id"), {"i": invoice_id})  # fmt: skip
    return str(status), [tuple(r) for r in rows]


async def audited(owner_session: AsyncSession, business_id: int, action: str) -> int:
    return int(await owner_session.scalar(
        text("SELECT count(*) FROM audit_log WHERE business_id = :b AND action = :a"),
        {"b": business_id, "a": action}) or 0)  # fmt: skip


@pytest.fixture
async def billed(db: Database, owner_session: AsyncSession) -> tuple[BusinessFixture, Invoice]:
    business = await new_business(owner_session, masters=1)
    return business, await issue(db, business)


# --- authenticity --------------------------------------------------------------------------


async def test_a_bad_signature_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession,
    billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    _business, invoice = billed
    fields = fields_for(invoice)
    body = cloudpayments.notification_body(fields)
    good = cloudpayments.sign(body, payments.notification_secret(settings))
    attempts = [
        {"Content-HMAC": cloudpayments.sign(body, "not-our-secret")},
        {},  # unsigned
        {"Content-HMAC": good[:-4] + "AAA="},
        {"Content-HMAC": ""},
    ]
    for headers in attempts:
        response = await client.post("/payments/cloudpayments/pay", content=body,
                                     headers={"Content-Type": FORM, **headers})  # fmt: skip
        assert response.status_code == 401, headers
    # a signature of another body: the amount changed on the way
    tampered = cloudpayments.notification_body({**fields, "Amount": "1.00"})
    response = await client.post("/payments/cloudpayments/pay", content=tampered,
                                 headers={"Content-Type": FORM, "Content-HMAC": good})  # fmt: skip
    assert response.status_code == 401
    assert await state(owner_session, invoice.id) == ("open", [])


async def test_a_stale_or_future_notification_is_refused(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession,
    billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    _business, invoice = billed
    for moment in (datetime.now(UTC) - timedelta(days=4), datetime.now(UTC) + timedelta(hours=1)):
        stamp = moment.strftime("%Y-%m-%d %H:%M:%S")
        response = await notify(client, settings, "pay", fields_for(invoice, DateTime=stamp))
        assert response.status_code == 401
    assert await state(owner_session, invoice.id) == ("open", [])


async def test_the_decoded_body_signature_is_accepted_too(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession,
    billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    """X-Content-HMAC: the same HMAC over the URL-decoded body (the documentation's second
    header)."""
    _business, invoice = billed
    body = cloudpayments.notification_body(fields_for(invoice))
    from urllib.parse import unquote_plus

    decoded = unquote_plus(body.decode()).encode()
    signature = cloudpayments.sign(decoded, payments.notification_secret(settings))
    response = await client.post("/payments/cloudpayments/pay", content=body,
                                 headers={"Content-Type": FORM, "X-Content-HMAC": signature})  # fmt: skip
    assert response.status_code == 200 and response.json() == {"code": 0}
    assert (await state(owner_session, invoice.id))[0] == "paid"


# --- idempotency, mismatches, order --------------------------------------------------------


async def test_the_same_notification_twice_is_one_payment(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession,
    billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    business, invoice = billed
    fields = fields_for(invoice)
    first = await notify(client, settings, "pay", fields)
    again = await notify(client, settings, "pay", fields)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"code": 0}
    # and twice at the same moment
    twin = fields_for(invoice)
    answers = await asyncio.gather(*(notify(client, settings, "pay", twin) for _ in range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    status, rows = await state(owner_session, invoice.id)
    assert status == "paid"
    # one accepted payment, and the second transaction (a double payment) kept for an operator
    assert rows == [("payment", "completed", 499_000, None),
                    ("payment", "completed", 499_000, "invoice_not_open")]  # fmt: skip
    assert await audited(owner_session, business.id, "payment.completed") == 1
    assert await audited(owner_session, business.id, "payment.flagged") == 1


async def test_an_amount_or_currency_mismatch_is_flagged_not_accepted(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession,
    billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    business, invoice = billed
    # before the card is charged, the Check refuses: code 12, wrong amount
    check = await notify(client, settings, "check", fields_for(invoice, Amount="1.00"))
    assert check.json() == {"code": cloudpayments.WRONG_AMOUNT}
    # the provider charged anyway: recorded, flagged, not accepted
    short = await notify(client, settings, "pay", fields_for(invoice, Amount="1.00"))
    dollars = await notify(client, settings, "pay", fields_for(invoice, Currency="USD"))
    assert short.json() == dollars.json() == {"code": 0}
    status, rows = await state(owner_session, invoice.id)
    assert status == "open"
    assert rows == [("payment", "completed", 100, "amount_mismatch"),
                    ("payment", "completed", 499_000, "currency_mismatch")]  # fmt: skip
    assert await audited(owner_session, business.id, "payment.flagged") == 2
    assert await audited(owner_session, business.id, "payment.completed") == 0


async def test_check_answers_with_the_documented_codes(
    client: httpx.AsyncClient, settings: Settings, billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    _business, invoice = billed
    cases = [
        (fields_for(invoice), cloudpayments.OK),
        (fields_for(invoice, InvoiceId="1999-999999"), cloudpayments.UNKNOWN_INVOICE),
        (fields_for(invoice, AccountId="0"), cloudpayments.WRONG_ACCOUNT),
        (fields_for(invoice, Amount="4989.99"), cloudpayments.WRONG_AMOUNT),
    ]
    for fields, code in cases:
        response = await notify(client, settings, "check", fields)
        assert response.status_code == 200 and response.json() == {"code": code}
    await notify(client, settings, "pay", fields_for(invoice))
    paid = await notify(client, settings, "check", fields_for(invoice))
    assert paid.json() == {"code": cloudpayments.NOT_ACCEPTED}  # no second payment
    unreadable = await notify(client, settings, "pay", {"TransactionId": "1"})
    assert unreadable.status_code == 422
    assert (await notify(client, settings, "nonsense", fields_for(invoice))).status_code == 422


async def test_events_out_of_order(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession, db: Database,
) -> None:  # fmt: skip
    business = await new_business(owner_session, masters=1)

    # a full refund reported before its payment: the invoice ends refunded all the same
    early = await issue(db, business)
    pay = fields_for(early)
    refund = fields_for(early, OperationType="Refund", PaymentTransactionId=pay["TransactionId"])
    assert (await notify(client, settings, "refund", refund)).json() == {"code": 0}
    assert (await state(owner_session, early.id))[0] == "open"
    await notify(client, settings, "pay", pay)
    assert await state(owner_session, early.id) == ("refunded", [
        ("refund", "completed", 499_000, None), ("payment", "completed", 499_000, None)])  # fmt: skip

    # a fail after the pay of the same transaction is ignored; another attempt's fail is kept
    late = await issue(db, business)
    pay = fields_for(late)
    await notify(client, settings, "pay", pay)
    await notify(client, settings, "fail", {**pay, "Status": "Declined", "Reason": "Timeout"})
    await notify(client, settings, "fail", fields_for(late, Status="Declined", ReasonCode="5051"))
    assert await state(owner_session, late.id) == ("paid", [
        ("payment", "completed", 499_000, None), ("payment", "declined", 499_000, None)])  # fmt: skip

    # a fail first, then the pay of that same transaction: the money was taken, the pay wins
    flip = await issue(db, business)
    pay = fields_for(flip)
    await notify(client, settings, "fail", {**pay, "Status": "Declined"})
    assert (await state(owner_session, flip.id))[0] == "open"
    await notify(client, settings, "pay", pay)
    assert await state(owner_session, flip.id) == (
        "paid",
        [("payment", "completed", 499_000, None)],
    )

    # a partial refund leaves the invoice paid, the refunded part shown
    part = await issue(db, business)
    pay = fields_for(part)
    await notify(client, settings, "pay", pay)
    await notify(client, settings, "refund", fields_for(
        part, Amount="1000.00", OperationType="Refund", PaymentTransactionId=pay["TransactionId"]))  # fmt: skip
    assert (await state(owner_session, part.id))[0] == "paid"
    async with db.transaction(business_id=business.id) as session:
        rows = {r.id: r for r in await invoices.list_for_business(session, business.id)}
        listed = await payments.list_for_business(session, business.id)
    assert (rows[part.id].paid_tiyn, rows[part.id].refunded_tiyn) == (499_000, 100_000)
    assert (rows[early.id].status, rows[early.id].refunded_tiyn) == ("refunded", 499_000)
    assert {(p.kind, p.status) for p in listed} == {
        ("payment", "completed"), ("payment", "declined"), ("refund", "completed")}  # fmt: skip
    assert await audited(owner_session, business.id, "payment.refunded") == 2
    assert await audited(owner_session, business.id, "payment.declined") == 2


async def test_no_card_or_cardholder_data_is_kept(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession,
    billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    business, invoice = billed
    fields = fields_for(invoice)
    await notify(client, settings, "pay", fields)
    await owner_session.commit()
    kept = " ".join(str(v) for v in (await owner_session.execute(text(
        "SELECT p.*, (SELECT string_agg(coalesce(d.after::text, ''), ' ') FROM audit_log a "
        "JOIN audit_details d ON d.audit_id = a.id WHERE a.business_id = p.business_id) "
        "FROM payments p WHERE p.invoice_id = :i"), {"i": invoice.id})).one())  # fmt: skip
    assert fields["TransactionId"] in kept  # what we do keep
    for secret in ("510510", "5100", "AIGERIM", "aigerim@example.kz", "203.0.113.77", "11/29"):
        assert secret not in kept, secret
    assert business.id


# --- the development provider --------------------------------------------------------------


async def test_paying_through_the_development_provider_page(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession, db: Database,
    billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    business, invoice = billed
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id,
                            business_id=business.id)  # fmt: skip
    page = await client.get(f"/dashboard/billing/invoices/{invoice.id}")
    assert page.status_code == 200 and f"/dashboard/billing/invoices/{invoice.id}/pay" in page.text
    started = await client.post(f"/dashboard/billing/invoices/{invoice.id}/pay",
                                data=form(csrf_of(page.text)), follow_redirects=False)  # fmt: skip
    assert started.status_code == 303
    provider_page = started.headers["location"]
    assert provider_page.startswith("/payments/dev/")
    shown = await client.get(provider_page)
    assert shown.status_code == 200 and invoice.number in shown.text
    assert 'class="dev-banner"' in shown.text  # marked as the development page it is
    # paying again reuses the page
    again = await client.post(
        f"/dashboard/billing/invoices/{invoice.id}/pay", data=form(csrf), follow_redirects=False
    )
    assert again.headers["location"] == provider_page

    origin = {"Origin": "https://testserver.local"}
    foreign = await client.post(
        f"{provider_page}/pay", headers={"Origin": "https://evil.example"}, follow_redirects=False
    )
    assert foreign.status_code == 403
    assert (await client.get(provider_page[:-3] + "000")).status_code == 404  # not signed by us

    declined = await client.post(f"{provider_page}/decline", headers=origin, follow_redirects=False)
    assert declined.status_code == 303
    assert declined.headers["location"] == f"/dashboard/billing/invoices/{invoice.id}"
    assert (await state(owner_session, invoice.id))[0] == "open"
    paid = await client.post(f"{provider_page}/pay", headers=origin, follow_redirects=False)
    assert paid.status_code == 303
    status, rows = await state(owner_session, invoice.id)
    assert status == "paid"
    assert [(kind, st) for kind, st, _amount, _flag in rows] == [
        ("payment", "declined"), ("payment", "completed")]  # fmt: skip
    provider = await owner_session.scalar(
        text("SELECT DISTINCT provider FROM payments WHERE invoice_id = :i"), {"i": invoice.id}
    )
    assert provider == "dev"
    assert await audited(owner_session, business.id, "payment.started") == 1
    # a paid invoice is not offered for payment again
    assert (await client.post(f"/dashboard/billing/invoices/{invoice.id}/pay",
                              data=form(csrf))).status_code == 422  # fmt: skip


async def test_paying_is_the_owners_and_for_their_own_invoices(
    client: httpx.AsyncClient, settings: Settings, owner_session: AsyncSession, db: Database,
    billed: tuple[BusinessFixture, Invoice],
) -> None:  # fmt: skip
    business, invoice = billed
    other = await new_business(owner_session, masters=1)
    foreign = await issue(db, other)
    assert business.owner_account_id is not None
    csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id,
                            business_id=business.id)  # fmt: skip
    response = await client.post(f"/dashboard/billing/invoices/{foreign.id}/pay", data=form(csrf))
    assert response.status_code == 404
    admin = await add_member(owner_session, business.id, "admin")
    # the same browser, now signed in as an admin of the business
    admin_csrf = await sign_in_as(client, owner_session, settings, admin.account_id,
                                  business_id=business.id)  # fmt: skip
    response = await client.post(f"/dashboard/billing/invoices/{invoice.id}/pay",
                                 data=form(admin_csrf))  # fmt: skip
    assert response.status_code == 403
    assert (await state(owner_session, foreign.id)) == ("open", [])
