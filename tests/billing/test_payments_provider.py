"""Paying through a loopback server that speaks CloudPayments' protocol (issue 16): the app
asks it for a hosted payment page (``POST /orders/create``, HTTP Basic with the Public ID and
API secret, the documented fields), sends the owner there, and believes the notifications it
signs (Content-HMAC: base64 HMAC-SHA256 of the raw body with the API secret) — computed here by
the stub's own code, not the app's. The provider learns an amount, an invoice number and a
business id: no person's data (policy 5.3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database
from app.domain import audit, invoices
from app.domain.invoices import InvoiceLine
from tests.conftest import make_settings
from tests.factories import new_business
from tests.support.dashboard import form, sign_in_as

PUBLIC_ID = "pk_test_pozapisi"
API_SECRET = "cp-api-secret-for-tests"


class CloudPaymentsStub:
    """``POST /orders/create`` as CloudPayments answers it; and the notifications it would send
    for an order once paid, form-encoded and signed."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.orders: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, answer = 404, {"Success": False, "Message": "Not found"}
        if scope["method"] == "POST" and scope["path"] == "/orders/create":
            self.auth.append(headers.get("authorization", ""))
            expected = "Basic " + base64.b64encode(f"{PUBLIC_ID}:{API_SECRET}".encode()).decode()
            if headers.get("authorization") != expected:
                status, answer = 401, {"Success": False, "Message": "Authentication failed"}
            else:
                order = json.loads(body)
                order_id = f"ord{next(self._ids):06d}"
                self.orders.append({**order, "Id": order_id})
                status, answer = 200, {"Success": True, "Message": None, "Model": {
                    "Id": order_id, "Number": len(self.orders), "Amount": order["Amount"],
                    "Currency": order["Currency"], "Description": order["Description"],
                    "Url": f"https://orders.cloudpayments.example/d/{order_id}",
                }}  # fmt: skip
        payload = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": payload})

    def notification(
        self, event: str, order: dict[str, Any], **fields: Any
    ) -> tuple[bytes, dict[str, str]]:
        """A notification for ``order`` as the provider sends it: its body and headers."""
        values = {
            "TransactionId": str(900_000 + next(self._ids)),
            "Amount": f"{order['Amount']:.2f}",
            "Currency": order["Currency"],
            "DateTime": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "CardFirstSix": "400000", "CardLastFour": "0002", "CardType": "Visa",
            "Status": "Completed", "OperationType": "Payment", "TestMode": "1",
            "InvoiceId": order["InvoiceId"], "AccountId": order["AccountId"],
            **fields,
        }  # fmt: skip
        body = urlencode(values).encode()
        digest = hmac.new(API_SECRET.encode(), body, hashlib.sha256).digest()
        return body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-HMAC": base64.b64encode(digest).decode(),
        }

    def start(self) -> CloudPaymentsStub:
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off", access_log=False)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="cloudpayments-stub",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        while not self._server.started:
            assert self._thread.is_alive(), "the stub did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()


@pytest.fixture(scope="module")
def provider() -> Iterator[CloudPaymentsStub]:
    stub = CloudPaymentsStub().start()
    yield stub
    stub.stop()


@pytest.fixture
async def paying(database: DatabaseUrls, provider: CloudPaymentsStub) -> AsyncIterator[Any]:
    """The app with CloudPayments configured (the loopback stub as its API)."""
    from app.main import create_app

    settings = make_settings(
        PAYMENT_API_URL=provider.url, PAYMENT_PUBLIC_ID=PUBLIC_ID, PAYMENT_API_SECRET=API_SECRET
    )
    app = create_app(settings, app_url=database.app)
    async with AsyncTestClient(app, base_url="https://testserver.local") as client:
        yield client, settings


@pytest.mark.policy("5.3")
async def test_an_invoice_paid_on_the_providers_hosted_page(
    db: Database, owner_session: AsyncSession, paying: Any, provider: CloudPaymentsStub
) -> None:
    paying_client, paying_settings = paying
    business = await new_business(owner_session, masters=1)
    async with db.transaction(business_id=business.id) as session:
        invoice = await invoices.issue_for_subscription(
            session, business_id=business.id, subscription_id=None,
            lines=[InvoiceLine({"ru": "Pro", "kk": "Pro", "en": "Pro"}, 1, 499_000, 499_000)],
            period_start=date(2026, 12, 1), period_end=date(2027, 1, 1), actor=audit.SYSTEM,
        )  # fmt: skip
    assert business.owner_account_id is not None
    csrf = await sign_in_as(paying_client, owner_session, paying_settings,
                            business.owner_account_id, business_id=business.id)  # fmt: skip

    started = await paying_client.post(f"/dashboard/billing/invoices/{invoice.id}/pay",
                                       data=form(csrf), follow_redirects=False)  # fmt: skip

    assert started.status_code == 303
    order = provider.orders[-1]
    assert started.headers["location"] == f"https://orders.cloudpayments.example/d/{order['Id']}"
    assert (order["Amount"], order["Currency"]) == (4990.0, "KZT")
    assert (order["InvoiceId"], order["AccountId"]) == (invoice.number, str(business.id))
    # what the provider was told: payment's needs, nobody's name, e-mail or phone (policy 5.3)
    assert set(order) == {"Amount", "Currency", "Description", "InvoiceId", "AccountId",
                          "RequireConfirmation", "SendEmail", "Id"}  # fmt: skip
    assert order["SendEmail"] is False
    # the dev page is off while a real provider is configured
    assert (await paying_client.get("/payments/dev/1.2.x.y")).status_code == 404

    # the owner pays there; the provider checks, then reports the payment
    body, headers = provider.notification("check", order)
    check = await paying_client.post("/payments/cloudpayments/check", content=body, headers=headers)
    assert check.status_code == 200 and check.json() == {"code": 0}
    body, headers = provider.notification("pay", order)
    paid = await paying_client.post("/payments/cloudpayments/pay", content=body, headers=headers)
    assert paid.status_code == 200 and paid.json() == {"code": 0}

    await owner_session.commit()
    row = (await owner_session.execute(text(
        "SELECT i.status, p.provider, p.amount_tiyn, p.currency, p.flag FROM invoices i "
        "JOIN payments p ON p.invoice_id = i.id WHERE i.id = :i"), {"i": invoice.id})).one()  # fmt: skip
    assert tuple(row) == ("paid", "cloudpayments", 499_000, "KZT", None)

    # a notification signed with the development key is not the provider's
    from app.domain import payments

    dev_key = payments.notification_secret(make_settings())
    forged = {**headers, "Content-HMAC": base64.b64encode(
        hmac.new(dev_key.encode(), body, hashlib.sha256).digest()).decode()}  # fmt: skip
    assert (await paying_client.post("/payments/cloudpayments/pay", content=body,
                                     headers=forged)).status_code == 401  # fmt: skip


async def test_the_provider_refusing_is_a_503_not_a_500(
    database: DatabaseUrls, db: Database, owner_session: AsyncSession, provider: CloudPaymentsStub
) -> None:
    from app.main import create_app

    settings = make_settings(PAYMENT_API_URL=provider.url, PAYMENT_PUBLIC_ID=PUBLIC_ID,
                             PAYMENT_API_SECRET="a-wrong-secret")  # fmt: skip
    business = await new_business(owner_session, masters=1)
    async with db.transaction(business_id=business.id) as session:
        invoice = await invoices.issue_for_subscription(
            session, business_id=business.id, subscription_id=None,
            lines=[InvoiceLine({"ru": "Pro", "kk": "Pro", "en": "Pro"}, 1, 499_000, 499_000)],
            period_start=None, period_end=None, actor=audit.SYSTEM,
        )  # fmt: skip
    assert business.owner_account_id is not None
    async with AsyncTestClient(create_app(settings, app_url=database.app),
                               base_url="https://testserver.local") as client:  # fmt: skip
        csrf = await sign_in_as(client, owner_session, settings, business.owner_account_id,
                                business_id=business.id)  # fmt: skip
        response = await client.post(f"/dashboard/billing/invoices/{invoice.id}/pay",
                                     data=form(csrf), follow_redirects=False)  # fmt: skip
    assert response.status_code == 503
    assert not await owner_session.scalar(
        text("SELECT count(*) FROM payment_orders WHERE invoice_id = :i"), {"i": invoice.id}
    )
