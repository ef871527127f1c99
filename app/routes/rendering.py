"""What every server-rendered Mini App page shares: the viewer, redirects, error pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import Actor
from app.domain.errors import DomainError
from app.i18n import N_, gettext, set_locale
from app.security.web import Viewer, csrf_ok, current_viewer
from app.settings import Settings

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
Multipart = Body(media_type=RequestEncodingType.MULTI_PART)


def page_context(request: Request[Any, Any, Any], viewer: Viewer | None) -> dict[str, Any]:
    """Context every Mini App page gets (site-wide values are Jinja globals, see app.main)."""
    return {"viewer": viewer, "request": request}


async def load_viewer(
    session: AsyncSession, request: Request[Any, Any, Any], settings: Settings
) -> Viewer | None:
    viewer = await current_viewer(session, request, settings)
    if viewer is not None and "lang" not in request.query_params:
        set_locale(viewer.account.locale)
    return viewer


def signin_redirect(request: Request[Any, Any, Any]) -> Redirect:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/app/signin?next={quote(target, safe='')}", status_code=HTTP_303_SEE_OTHER)


def consent_redirect(next_url: str) -> Redirect:
    return Redirect(f"/app/consent?next={quote(next_url, safe='')}", status_code=HTTP_303_SEE_OTHER)


def actor_of(request: Request[Any, Any, Any], viewer: Viewer) -> Actor:
    return Actor(
        kind="client",
        account_id=viewer.account.id,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request.scope.get("state", {}).get("request_id"),
    )


def see_other(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """After a POST: a 303 for plain forms; htmx follows it too (boosted forms)."""
    return Redirect(url, status_code=HTTP_303_SEE_OTHER)


def forbidden_page(
    request: Request[Any, Any, Any], settings: Settings, viewer: Viewer | None
) -> Response[Any]:
    return Template(
        "miniapp/error.html",
        context={**page_context(request, viewer),
                 "message": gettext(N_("This form has expired. Please open the page again."))},
        status_code=403,
    )  # fmt: skip


def error_page(
    request: Request[Any, Any, Any],
    settings: Settings,
    viewer: Viewer | None,
    error: DomainError,
    back: str,
) -> Response[Any]:
    return Template(
        "miniapp/error.html",
        context={
            **page_context(request, viewer),
            "message": gettext(error.message),
            "back_url": back,
        },
        status_code=error.status,
    )


async def require_viewer(
    session: AsyncSession,
    request: Request[Any, Any, Any],
    settings: Settings,
    *,
    unsafe: bool = True,
) -> Viewer | Response[Any]:
    """The viewer, or the response to send instead (sign in first; a stale form)."""
    viewer = await load_viewer(session, request, settings)
    if viewer is None:
        return signin_redirect(request)
    if unsafe and not await csrf_ok(request, viewer):
        return forbidden_page(request, settings, viewer)
    return viewer
