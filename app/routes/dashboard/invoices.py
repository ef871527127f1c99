"""Dashboard: one invoice — ``GET /dashboard/billing/invoices/{id}`` (printable page) and
``GET /dashboard/billing/invoices/{id}/pdf`` (the PDF), in the language asked (``?lang=``) —
and paying it: ``POST /dashboard/billing/invoices/{id}/pay`` → 303 to the provider's page.
The owner only (billing is theirs); another business's invoice is 404. Paying is allowed in
read-only mode too (``opt={"billing": True}``): it is how a business leaves it."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from app.domain import invoices, payments
from app.i18n import get_locale
from app.routes.dashboard.render import page, see_other
from app.routes.deps import DB, ActingMember, AppSettings, SignedInDashboard
from app.routes.params import PathId
from app.security.dashboard import OWNER, staff_actor

BILLING = {"billing": True}


@get("/billing/invoices/{invoice_id:int}", name="billing:invoice", dependencies=OWNER,
     include_in_schema=False)  # fmt: skip
async def invoice_page(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    invoice_id: PathId,
) -> Response[Any]:
    document = await invoices.invoice_document(db, member, invoice_id, get_locale())
    return page(request, dashboard, "billing/invoice.html", document=document,
                title=invoices.title_of(document), vat_line=invoices.vat_line(document))  # fmt: skip


# ``…/{id}/pdf``: a path parameter is a whole segment in Litestar (no ``{id}.pdf``); the file
# is named ``invoice-<number>.pdf`` by its Content-Disposition
@get("/billing/invoices/{invoice_id:int}/pdf", name="billing:invoice_pdf", dependencies=OWNER,
     include_in_schema=False)  # fmt: skip
async def invoice_pdf(db: DB, member: ActingMember, invoice_id: PathId) -> Response[bytes]:
    name, body = await invoices.invoice_pdf(db, member, invoice_id, get_locale())
    return Response(
        body, media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"',
                 "Cache-Control": "private, no-store"},
    )  # fmt: skip


@post("/billing/invoices/{invoice_id:int}/pay", name="payments:start", dependencies=OWNER,
      opt=BILLING, include_in_schema=False)  # fmt: skip
async def invoice_pay(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    member: ActingMember,
    invoice_id: PathId,
) -> Response[Any]:
    started = await payments.start_payment(
        db, member, invoice_id, settings=settings, actor=staff_actor(request, member)
    )
    return see_other(
        started.url or request.app.route_reverse("payments:dev-page", order_ref=started.order_ref)
    )


ROUTES = [invoice_page, invoice_pdf, invoice_pay]
