"""Every error leaves through here: one body shape, the caller's language, never a 500 for input.

Body (pinned for /api/v1): ``{"error": CODE, "detail": text, "fields": {field: message}}``.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import structlog
from litestar import MediaType, Request, Response
from litestar.enums import ParamType
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.db.faults import DatabaseUnavailable, is_unavailable
from app.domain.bookings import is_slot_conflict, sqlstate_of
from app.domain.errors import DomainError, NotFound, RateLimited, SlotTaken, ValidationFailed
from app.i18n import N_, gettext
from app.routes.dashboard.render import page as dashboard_page
from app.routes.dashboard.render import signin_redirect as dashboard_signin_redirect
from app.routes.rendering import error_page, forbidden_page, signin_redirect
from app.security.dashboard import DashboardSignInRequired, NoBusiness, RoleRequired
from app.security.web import CsrfRejected, SignInRequired

log = structlog.get_logger(__name__)

CODES_BY_STATUS = {
    400: "validation",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "slot_taken",
    413: "validation",
    415: "validation",
    422: "validation",
    429: "rate_limited",
}

_FIELD_NAME = re.compile(r"field `([^`]+)`")


def error_response(
    status: int, code: str, detail: str, fields: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        {"error": code, "detail": detail, "fields": fields or {}},
        status_code=status,
        media_type=MediaType.JSON,
        headers={"Cache-Control": "no-store"},
    )


def _validation_fields(exc: ValidationException) -> dict[str, str]:
    """Field → message in the caller's language, from Litestar/msgspec's validation details."""
    fields: dict[str, str] = {}
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        key = str(item.get("key") or "")
        message = str(item.get("message") or "")
        named = _FIELD_NAME.search(message)
        if key in ("", "data") and named:
            key = named.group(1)
        if "missing required field" in message:
            text_ = gettext(N_("This field is required."))
        elif "unknown field" in message:
            text_ = gettext(N_("Unknown field."))
        else:
            text_ = gettext(N_("This value is not valid."))
        fields[key or "body"] = text_
    return fields


DASHBOARD = "/dashboard"


def _on_dashboard(request: Request[Any, Any, Any]) -> bool:
    return request.url.path == DASHBOARD or request.url.path.startswith(DASHBOARD + "/")


def dashboard_error(
    request: Request[Any, Any, Any], status: int, message: str, *, upgrade: bool = False
) -> Response[Any]:
    """A dashboard refusal as a page in the dashboard's frame (no hint of other businesses);
    ``upgrade``: a plan's limit or read-only mode, so the page links to the plans."""
    response = dashboard_page(request, None, "dashboard/error.html", status=status,
                              message=message, upgrade=upgrade)  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    if _on_dashboard(request):
        return dashboard_error(request, exc.status, gettext(exc.message),
                               upgrade=getattr(exc, "offers_upgrade", False))  # fmt: skip
    return error_response(
        exc.status, exc.code, gettext(exc.message), {k: v for k, v in exc.fields.items()}
    )


def retry_after(error: DomainError) -> dict[str, str]:
    """The ``Retry-After`` header of a refusal (none for other errors); the pages that show a
    domain error beside a form themselves (sign-in, contact change) send it too."""
    return {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else {}


def rate_limited_handler(request: Request[Any, Any, Any], exc: RateLimited) -> Response[Any]:
    """429 with ``Retry-After`` for every limit (``app.security.limits``, one-time codes): the
    pinned body on the API and JSON endpoints, the Mini App's error page elsewhere."""
    if request.url.path.startswith(_JSON_PATHS) or _on_dashboard(request):
        response = domain_error_handler(request, exc)
    else:
        response = error_page(request, None, exc, "")
        response.headers["Cache-Control"] = "no-store"
    response.headers.update(retry_after(exc))
    return response


def names_nothing(exc: ValidationException) -> bool:
    """The request's path failed its parameter's bounds (an id of 0 or beyond bigint, a token
    longer than ours): the address names nothing we have, so it is not found (404) on every
    route, the dashboard's, the Mini App's and the API's alike, like an id that is merely unknown."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    return any(isinstance(item, dict) and item.get("source") == ParamType.PATH for item in extra)


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    if names_nothing(exc):
        return domain_error_handler(request, NotFound())
    if _on_dashboard(request):  # a mangled link or address: a page, not a JSON body
        return dashboard_error(request, 422, gettext(ValidationFailed.message))
    return error_response(
        422, "validation", gettext(ValidationFailed.message), _validation_fields(exc)
    )


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if _on_dashboard(request) and status in (403, 404):
        return dashboard_error(request, status, gettext(
            NotFound.message if status == 404 else N_("Your role does not allow this.")))  # fmt: skip
    if isinstance(exc, NotFoundException):
        return error_response(404, "not_found", gettext(NotFound.message))
    if isinstance(exc, MethodNotAllowedException):
        return error_response(
            405, "method_not_allowed", gettext(N_("This method is not allowed here."))
        )
    if status >= 500:
        return internal_error_handler(request, exc)
    if status in (400, 413, 415):  # a body that does not parse is the caller's input too
        return error_response(
            422 if status == 400 else status, "validation", gettext(ValidationFailed.message)
        )
    return error_response(status, CODES_BY_STATUS.get(status, "validation"), str(exc.detail))


def database_error_handler(
    request: Request[Any, Any, Any], exc: DBAPIError | asyncpg.PostgresError
) -> Response[Any]:
    """The same answers whether SQLAlchemy wrapped the error or the asyncpg pool raised it."""
    if is_unavailable(exc):
        return unavailable_handler(request, exc)
    if is_slot_conflict(exc):
        return error_response(409, "slot_taken", gettext(SlotTaken.message))
    sqlstate = sqlstate_of(exc) or ""
    if sqlstate.startswith("22"):  # data exception: out of range, bad format — the caller's input
        return error_response(422, "validation", gettext(ValidationFailed.message))
    return internal_error_handler(request, exc)


UNAVAILABLE = N_("The service is briefly unavailable. Please try again in a minute.")
# answered as JSON: the API, and what its clients (the Mini App's script, Telegram) call
_JSON_PATHS = ("/api/", "/auth/", "/telegram/", "/healthz")


def unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database is out of reach (down, restarting, full, or no pooled connection free in
    time): 503 with Retry-After, never a 500. Nothing here may touch the database."""
    log.warning("database unavailable", path=request.url.path, error=type(exc).__name__)
    retry_after = str(request.app.state.settings.db_retry_after_s)
    message = gettext(UNAVAILABLE)
    if request.url.path.startswith(_JSON_PATHS):
        response = error_response(HTTP_503_SERVICE_UNAVAILABLE, "unavailable", message)
        response.headers["Retry-After"] = retry_after
        return response
    return Template(
        "unavailable.html",
        context={"viewer": None, "request": request, "message": message},
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": retry_after, "Cache-Control": "no-store"},
    )


def database_fault_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors of the drivers that are about the connection, not the statement."""
    if is_unavailable(exc):
        return unavailable_handler(request, exc)
    return internal_error_handler(request, exc)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_unavailable(exc):  # a refused or reset socket, a timed-out connect
        return unavailable_handler(request, exc)
    log.error("unhandled error", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal",
        gettext(N_("Something went wrong on our side. Please try again.")),
    )


def sign_in_handler(request: Request[Any, Any, Any], _exc: SignInRequired) -> Response[Any]:
    """A Mini App page for signed-in people: sign in first, then come back here."""
    return signin_redirect(request)


def csrf_handler(request: Request[Any, Any, Any], _exc: CsrfRejected) -> Response[Any]:
    if _on_dashboard(request):
        return dashboard_error(
            request, 403, gettext(N_("This form has expired. Please open the page again."))
        )
    return forbidden_page(request, None)


def dashboard_sign_in_handler(
    request: Request[Any, Any, Any], _exc: DashboardSignInRequired
) -> Response[Any]:
    """A dashboard page without a session: sign in, then come back (pinned: 303)."""
    return dashboard_signin_redirect(request)


def role_handler(request: Request[Any, Any, Any], _exc: RoleRequired) -> Response[Any]:
    return dashboard_error(request, 403, gettext(N_("Your role does not allow this.")))


def no_business_handler(request: Request[Any, Any, Any], _exc: NoBusiness) -> Response[Any]:
    """Signed in but working in no business (removed from a team): the page that creates one."""
    return Redirect(request.app.route_reverse("dashboard:new-business"), status_code=303)


def overflow_handler(_request: Request[Any, Any, Any], _exc: OverflowError) -> Response[Any]:
    return error_response(422, "validation", gettext(ValidationFailed.message))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    RateLimited: rate_limited_handler,
    ValidationException: validation_handler,
    HTTPException: http_error_handler,
    DBAPIError: database_error_handler,
    asyncpg.PostgresError: database_error_handler,
    asyncpg.InterfaceError: database_fault_handler,
    PoolTimeout: unavailable_handler,
    DatabaseUnavailable: unavailable_handler,
    OverflowError: overflow_handler,
    SignInRequired: sign_in_handler,
    CsrfRejected: csrf_handler,
    DashboardSignInRequired: dashboard_sign_in_handler,
    RoleRequired: role_handler,
    NoBusiness: no_business_handler,
    Exception: internal_error_handler,
}
