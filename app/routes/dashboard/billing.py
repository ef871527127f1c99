"""Dashboard: billing — ``GET /dashboard/billing`` (pinned: the owner only; an admin or a master
gets 403): the plan and its usage against the limits, the plans to move to (monthly or yearly),
the invoices and payments, the business's billing details.

Choosing a plan posts to ``/dashboard/billing/plan``: a change that costs nothing more takes
effect at once (303 back here); one that needs paying answers 303 to its invoice, where the
owner pays (``app.routes.dashboard.invoices``, ``app.routes.payments``). These forms work in
read-only mode too (``opt={"billing": True}``): paying is how a business leaves it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import NoRouteMatchFoundException

from app.domain import subscriptions
from app.domain.errors import ValidationFailed
from app.routes.dashboard.render import field_errors, page, see_other
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.rendering import Form
from app.security.dashboard import OWNER, staff_actor

BILLING = {"billing": True}  # allowed in read-only mode (app.domain.subscriptions)


def _url(request: Request[Any, Any, Any], name: str, **params: Any) -> str | None:
    """A route of the invoices part, when it is installed."""
    try:
        return request.app.route_reverse(name, **params)
    except NoRouteMatchFoundException:
        return None


def _page(
    request: Request[Any, Any, Any],
    dashboard: Any,
    found: subscriptions.BillingOverview,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response[Any]:
    return page(
        request, dashboard, "dashboard/billing/index.html", status=status, billing=found,
        values=values if values is not None else found.profile, errors=errors or {},
        saved=request.query_params.get("saved") == "1",
        changed=request.query_params.get("changed") == "1",
        invoice_url=lambda invoice_id: _url(request, "billing:invoice", invoice_id=invoice_id),
        pdf_url=lambda invoice_id: _url(request, "billing:invoice_pdf", invoice_id=invoice_id),
        pay_url=lambda invoice_id: _url(request, "payments:start", invoice_id=invoice_id),
    )  # fmt: skip


@get("/billing", name="dashboard:billing", dependencies=OWNER, include_in_schema=False)
async def billing_page(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    return _page(request, dashboard, await subscriptions.overview(db, member))


@post("/billing/plan", name="dashboard:billing-plan", dependencies=OWNER, opt=BILLING,
      include_in_schema=False, status_code=303)  # fmt: skip
async def billing_plan(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        change = await subscriptions.change_plan(
            db, member, data, actor=staff_actor(request, member)
        )
    except ValidationFailed as error:
        found = await subscriptions.overview(db, member)
        return _page(request, dashboard, found, errors=field_errors(error), status=error.status)
    if change.invoice_id is not None:
        target = _url(request, "billing:invoice", invoice_id=change.invoice_id)
        if target:
            return see_other(target)
    return see_other(request.app.route_reverse("dashboard:billing") + "?changed=1")


@post("/billing/details", name="dashboard:billing-details", dependencies=OWNER, opt=BILLING,
      include_in_schema=False, status_code=303)  # fmt: skip
async def billing_details(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await subscriptions.save_details(db, member, data, actor=staff_actor(request, member))
    except ValidationFailed as error:
        found = await subscriptions.overview(db, member)
        sent = {**data, "vat_payer": data.get("vat_payer") in ("1", "on", "true")}
        return _page(request, dashboard, found, values=sent, errors=field_errors(error),
                     status=error.status)  # fmt: skip
    return see_other(request.app.route_reverse("dashboard:billing") + "?saved=1#details")


ROUTES = [billing_page, billing_plan, billing_details]
