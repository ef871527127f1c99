"""What every ops page shares: its context (the CSRF token of the session, or a signed
pre-session token before sign-in) and the console's own refusals."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.domain.errors import DomainError
from app.domain.operators import OperatorRoleRequired
from app.i18n import gettext
from app.security.dashboard import pre_session_token
from app.security.ops import OpsRoleRequired, OpsSignInRequired, OpsViewer

Req = Request[Any, Any, Any]


def page(
    request: Req, viewer: OpsViewer | None, template: str, *, status: int = 200, **context: Any
) -> Template:
    token = viewer.csrf_token if viewer else pre_session_token(request.app.state.settings)
    return Template(
        f"ops/{template}",
        context={"request": request, "ops": viewer, "csrf_token": token, **context},
        status_code=status,
    )


def errors_of(error: DomainError) -> dict[str, str]:
    return dict(error.fields) or {"_form": gettext(error.message)}


def see_other(url: str) -> Response[Any]:
    return Redirect(url, status_code=HTTP_303_SEE_OTHER)


def _sign_in(request: Req, _exc: OpsSignInRequired) -> Response[Any]:
    return see_other(request.app.route_reverse("ops:signin"))


def _forbidden(request: Req, exc: Exception) -> Response[Any]:
    message = gettext(exc.message) if isinstance(exc, DomainError) else None
    return page(request, None, "error.html", status=403,
                message=message or "Your operator role does not allow this.")  # fmt: skip


EXCEPTION_HANDLERS: dict[Any, Any] = {
    OpsSignInRequired: _sign_in,
    OpsRoleRequired: _forbidden,
    OperatorRoleRequired: _forbidden,
}
