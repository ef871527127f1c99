"""The payment provider's side of paying an invoice (app.domain.payments).

* ``POST /payments/cloudpayments/{event}`` (event: check, pay, fail, refund): CloudPayments'
  notifications. No session and no CSRF token: the signature over the raw body is the proof
  (checked in the domain, in constant time). A bad signature or a stale notification → 401 and
  nothing changes; an unreadable one → 422; otherwise 200 ``{"code": N}`` as the provider
  expects (0: accepted).
* ``/payments/dev/{order}`` — development only (no provider keys, never in production: 404):
  a page of the app that plays the provider's hosted page, clearly marked, with Pay and
  Decline; each sends the provider's signed notifications through the same code as a real one,
  then returns the browser to the invoice.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import PathParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.domain import payments
from app.domain.errors import DomainError
from app.routes.deps import DB, AppSettings
from app.security.web import same_origin

OrderRef = Annotated[str, PathParameter(max_length=120)]
Word = Annotated[str, PathParameter(max_length=10)]  # an event or an outcome


@post(
    "/payments/cloudpayments/{event:str}", name="payments:notification", status_code=200,
    include_in_schema=False,
)  # fmt: skip
async def provider_notification(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings, event: Word
) -> Response[dict[str, Any]]:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        code = await payments.handle_notification(
            db, settings, event, body, headers, request.headers.get("content-type", "")
        )
    except DomainError as refused:
        return Response(
            {"code": 13, "error": refused.code}, status_code=refused.status,
            headers={"Cache-Control": "no-store"},
        )  # fmt: skip
    return Response({"code": code}, headers={"Cache-Control": "no-store"})


@get("/payments/dev/{order_ref:str}", name="payments:dev-page", include_in_schema=False)
async def dev_provider_page(db: DB, settings: AppSettings, order_ref: OrderRef) -> Template:
    order = await payments.dev_page(db, settings, order_ref)
    return Template("billing/dev_provider.html", context={"order": order, "refused": False})


@post("/payments/dev/{order_ref:str}/{outcome:str}", name="payments:dev-settle",
      include_in_schema=False, status_code=303)  # fmt: skip
async def dev_provider_settle(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    order_ref: OrderRef,
    outcome: Word,
) -> Response[Any]:
    if outcome not in ("pay", "decline") or not same_origin(request):
        return Response({"code": 13}, status_code=403)
    order = await payments.dev_settle(db, settings, order_ref, pay=outcome == "pay")
    return Redirect(
        request.app.route_reverse("billing:invoice", invoice_id=order.invoice_id),
        status_code=HTTP_303_SEE_OTHER,
    )


ROUTES = [provider_notification, dev_provider_page, dev_provider_settle]
