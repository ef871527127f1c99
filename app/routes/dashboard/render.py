"""What every dashboard page shares: its context, the CSRF token, redirects after a POST, and
how a refusal is shown beside the form's fields."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, Response
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.domain.errors import DomainError
from app.i18n import gettext
from app.security.dashboard import Dashboard, pre_session_token
from app.settings import Settings


def page(
    request: Request[Any, Any, Any],
    viewer: Dashboard | None,
    template: str,
    *,
    status: int = 200,
    settings: Settings | None = None,
    **context: Any,
) -> Template:
    """A dashboard page. Signed in, it carries the session's CSRF token; before sign-in (pass
    ``settings``), a signed pre-session token for its forms."""
    if viewer is not None:
        token = viewer.csrf_token
    else:
        app_settings = settings or request.app.state.settings
        token = pre_session_token(app_settings)
    return Template(
        template,
        context={
            "request": request,
            "viewer": viewer,
            "dashboard": viewer,
            "workplace": viewer.workplace if viewer else None,
            "member": viewer.member if viewer else None,
            "csrf_token": token,
            **context,
        },
        status_code=status,
    )


def field_errors(error: DomainError) -> dict[str, str]:
    """A refusal's messages by field, in the user's language; ``_form`` when it names none."""
    fields = dict(error.fields)  # already in the user's language
    return fields or {"_form": gettext(error.message)}


def see_other(url: str) -> Response[Any]:
    """After a successful POST: a 303 (htmx follows it for boosted forms)."""
    return Redirect(url, status_code=HTTP_303_SEE_OTHER)


def signin_redirect(request: Request[Any, Any, Any]) -> Redirect:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    signin = request.app.route_reverse("dashboard:signin")
    return Redirect(f"{signin}?next={quote(target, safe='')}", status_code=HTTP_303_SEE_OTHER)


def safe_next(request: Request[Any, Any, Any], value: str | None) -> str:
    """Only dashboard paths of this site: an open redirect would send people anywhere."""
    if value and value.startswith("/dashboard") and "//" not in value and "\\" not in value:
        return value
    return request.app.route_reverse("dashboard:home")


def in_setup(request: Request[Any, Any, Any]) -> bool:
    """Whether the owner came here from the set-up wizard (``?setup=1``)."""
    return request.query_params.get("setup") == "1"


def url_in_flow(
    request: Request[Any, Any, Any],
    name: str,
    *,
    query: dict[str, str] | None = None,
    **params: Any,
) -> str:
    """A route's URL (with ``query``), keeping ``?setup=1`` while the owner is in the wizard."""
    url = request.app.route_reverse(name, **params)
    args = {"setup": "1"} if in_setup(request) else {}
    args.update(query or {})
    return f"{url}?{urlencode(args)}" if args else url
