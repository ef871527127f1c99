"""Dashboard: analytics (issue 14 item 8), ``GET /dashboard/analytics?preset=|from=&to=[&staff=]``.

Every member opens it: the domain (:mod:`app.domain.analytics`) scopes a master to their own
numbers, owners and admins see the whole business and each master. htmx asks for the report's
fragment when the period changes (and pushes the address)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from app.domain import analytics
from app.domain.errors import ValidationFailed
from app.routes.dashboard.render import field_errors, page
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.security.dashboard import ANY_MEMBER


@get("/analytics", name="dashboard:analytics", dependencies=ANY_MEMBER, include_in_schema=False)
async def show(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    query = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    fragment = request.headers.get("hx-request") == "true"
    template = "dashboard/analytics/_report.html" if fragment else "dashboard/analytics/index.html"
    try:
        asked = analytics.parse_query(query)
    except ValidationFailed as refused:
        return page(request, dashboard, template, status=422, report=None, query=query,
                    errors=field_errors(refused), presets=analytics.PRESETS, weekdays=analytics.WEEKDAYS)  # fmt: skip
    shown = await analytics.report(db, member, asked)
    return page(request, dashboard, template, report=shown, query=query, errors={},
                presets=analytics.PRESETS, weekdays=analytics.WEEKDAYS)  # fmt: skip


ROUTES = [show]
