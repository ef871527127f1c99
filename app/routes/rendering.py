"""What every server-rendered Mini App page shares: its context, redirects and error pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.domain.errors import DomainError
from app.i18n import N_, gettext
from app.security.web import Viewer

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
Multipart = Body(media_type=RequestEncodingType.MULTI_PART)


def page_context(request: Request[Any, Any, Any], viewer: Viewer | None) -> dict[str, Any]:
    """Context every Mini App page gets (site-wide values are Jinja globals, see app.main)."""
    return {"viewer": viewer, "request": request}


def signin_redirect(request: Request[Any, Any, Any]) -> Redirect:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    signin = request.app.route_reverse("signin:page")
    return Redirect(f"{signin}?next={quote(target, safe='')}", status_code=HTTP_303_SEE_OTHER)


def consent_redirect(request: Request[Any, Any, Any], next_url: str) -> Redirect:
    consent = request.app.route_reverse("consent:page")
    return Redirect(f"{consent}?next={quote(next_url, safe='')}", status_code=HTTP_303_SEE_OTHER)


def see_other(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """After a POST: a 303 for plain forms; htmx follows it too (boosted forms)."""
    return Redirect(url, status_code=HTTP_303_SEE_OTHER)


def error_text(error: DomainError) -> str:
    """What a form shows for a refusal: the message of its field when it names one."""
    return next(iter(error.fields.values()), None) or gettext(error.message)


def forbidden_page(request: Request[Any, Any, Any], viewer: Viewer | None) -> Response[Any]:
    return Template(
        "miniapp/error.html",
        context={**page_context(request, viewer),
                 "message": gettext(N_("This form has expired. Please open the page again."))},
        status_code=403,
    )  # fmt: skip


def error_page(
    request: Request[Any, Any, Any], viewer: Viewer | None, error: DomainError, back: str
) -> Response[Any]:
    return Template(
        "miniapp/error.html",
        context={**page_context(request, viewer), "message": gettext(error.message),
                 "back_url": back},
        status_code=error.status,
    )  # fmt: skip
