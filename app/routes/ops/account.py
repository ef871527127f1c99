"""The console's sign-in: the password, then the second factor (a TOTP code or a recovery
code), each counted against the sign-in limits; the ops session only after both."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, get, post
from litestar.di import NamedDependency

from app.domain import operators
from app.domain.errors import DomainError
from app.i18n import gettext
from app.routes.deps import DB, AppSettings
from app.routes.ops.render import Req, page, see_other
from app.routes.rendering import Form
from app.security import dashboard as dash
from app.security import limits
from app.security import ops as ops_session
from app.security.ops import OpsViewer
from app.security.web import actor_of, client_ip
from app.settings import secret_key_for

FormData = Annotated[dict[str, str], Form]


@get("/signin", name="ops:signin", include_in_schema=False)
async def signin_page(request: Req) -> Response[Any]:
    return page(request, None, "signin.html", step="password", errors={})


@post("/signin", name="ops:signin-submit", include_in_schema=False, status_code=200)
async def signin_submit(
    request: Req, db: DB, settings: AppSettings, data: FormData
) -> Response[Any]:
    """Step one: the password; the answer is the second factor's form, never a session."""
    await dash.check_pre_session(request, settings)
    email = data.get("email", "").strip()
    await limits.count_password_sign_in(db, settings, email=email, ip=client_ip(request))
    try:
        ticket = await operators.check_password(
            db, secret_key_for(settings), email=email, password=data.get("password", ""),
            actor=actor_of(request, None, "operator"),
        )  # fmt: skip
    except DomainError as refused:
        return page(request, None, "signin.html", status=refused.status, step="password",
                    email=email, errors={"_form": gettext(refused.message)})  # fmt: skip
    return page(request, None, "signin.html", step="second_factor", ticket=ticket, errors={})


@post("/signin/second-factor", name="ops:second-factor", include_in_schema=False, status_code=303)
async def second_factor(
    request: Req, db: DB, settings: AppSettings, data: FormData
) -> Response[Any]:
    """Step two: a TOTP code (good once) or a recovery code (good once), then the session."""
    await dash.check_pre_session(request, settings)
    ticket = data.get("ticket", "")
    await limits.hit(db, settings, "password_ip", limits.network_subject(client_ip(request)))
    await limits.hit(db, settings, "password", "ops-second-factor:" + ticket.partition(".")[0])
    try:
        account_id = await operators.check_second_factor(
            db, secret_key_for(settings), ticket=ticket, code=data.get("code", ""),
            actor=actor_of(request, None, "operator"),
        )  # fmt: skip
    except DomainError as refused:
        return page(request, None, "signin.html", status=refused.status, step="second_factor",
                    ticket=ticket, errors={"_form": gettext(refused.message)})  # fmt: skip
    await ops_session.start(db, request, settings, account_id)
    return see_other(request.app.route_reverse("ops:queue"))


@post("/signout", name="ops:signout", include_in_schema=False, status_code=303)
async def signout(request: Req, db: DB, ops: NamedDependency[OpsViewer]) -> Response[Any]:
    await ops_session.end(db, request, ops)
    return see_other(request.app.route_reverse("ops:signin"))


ROUTES = [signin_page, signin_submit, second_factor, signout]
