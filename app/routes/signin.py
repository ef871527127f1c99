"""Signing in and out of the Mini App outside Telegram: a one-time code by SMS or e-mail
(``/app/signin``); the language a visitor chooses; signing out."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.domain import otp, profile
from app.domain.errors import DomainError
from app.i18n import LOCALES, N_, get_locale, gettext
from app.routes.deps import DB, AppSettings, MaybeSignedIn, SignedIn
from app.routes.errors import retry_after
from app.routes.rendering import Form, error_text, page_context
from app.security.limits import per_network
from app.security.web import (
    client_ip,
    require_signed_in,
    same_origin,
    sign_in,
    sign_out,
)
from app.settings import secret_key_for


def safe_next(
    request: Request[Any, Any, Any], value: str | None, default: str | None = None
) -> str:
    """Only same-site paths: an open redirect would let a link send people anywhere."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default or request.app.route_reverse("miniapp:bookings")


def _expired() -> str:
    return gettext(N_("This form has expired. Please open the page again."))


def _signin_page(
    request: Request[Any, Any, Any], *, step: str, next_url: str, status: int = 200, **context: Any
) -> Template:
    return Template(
        "miniapp/signin.html",
        context={**page_context(request, None), "step": step, "next": next_url, **context},
        status_code=status,
    )


@get("/signin", include_in_schema=False, name="signin:page")
async def signin_page(
    request: Request[Any, Any, Any],
    maybe_viewer: MaybeSignedIn,
    next_url: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None,
) -> Response[Any]:
    if maybe_viewer is not None:
        return Redirect(safe_next(request, next_url), status_code=HTTP_303_SEE_OTHER)
    return _signin_page(request, step="contact", next_url=safe_next(request, next_url))


@post(
    "/signin",
    include_in_schema=False,
    status_code=200,
    name="signin:code",
    guards=[per_network("sign_in_ip")],
)
async def signin_request_code(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Send a code. The answer is the same whether or not an account has this address."""
    next_url = safe_next(request, data.get("next"))
    if not same_origin(request):
        return _signin_page(request, step="contact", next_url=next_url, status=403,
                            error=_expired())  # fmt: skip
    contact = (data.get("contact") or "").strip()[:254]
    channel = otp.channel_of(contact)
    try:
        challenge_id = await otp.send_sign_in_code(
            db, channel=channel, destination=contact, ip=client_ip(request),
            secret=secret_key_for(settings), locale=get_locale(),
        )  # fmt: skip
    except DomainError as error:
        message = error_text(error)
        page = _signin_page(request, step="contact", next_url=next_url, status=error.status,
                            error=message, contact=contact)  # fmt: skip
        page.headers.update(retry_after(error))
        return page
    return _signin_page(request, step="code", next_url=next_url, challenge_id=challenge_id,
                        contact=otp.normalize_destination(channel, contact), channel=channel)  # fmt: skip


@post(
    "/signin/verify",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="signin:verify",
    guards=[per_network("sign_in_ip")],
)
async def signin_verify(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    next_url = safe_next(request, data.get("next"))
    contact = (data.get("contact") or "").strip()[:254]
    challenge = data.get("challenge_id", "")
    retry = {"contact": contact, "challenge_id": challenge, "channel": otp.channel_of(contact)}
    if not same_origin(request) or not challenge.isdigit() or len(challenge) > 18:
        return _signin_page(request, step="contact", next_url=next_url, status=403,
                            error=_expired())  # fmt: skip
    try:
        account_id = await otp.sign_in_with_code(
            db, challenge_id=int(challenge), destination=contact,
            code=(data.get("code") or "")[:12], secret=secret_key_for(settings),
            locale=get_locale(),
        )  # fmt: skip
    except DomainError as error:
        step = "contact" if error.code == "rate_limited" else "code"
        page = _signin_page(request, step=step, next_url=next_url, status=error.status,
                            error=gettext(error.message), **retry)  # fmt: skip
        page.headers.update(retry_after(error))
        return page
    await sign_in(db, request, settings, account_id)
    return Redirect(next_url, status_code=HTTP_303_SEE_OTHER)


@post("/locale", include_in_schema=False, status_code=HTTP_303_SEE_OTHER, name="locale")
async def choose_locale(
    request: Request[Any, Any, Any],
    db: DB,
    maybe_viewer: MaybeSignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Save the language on the account (the explicit choice beats Telegram and the browser);
    a visitor's choice travels in the address."""
    lang = data.get("lang", "")
    target = safe_next(request, data.get("next"))
    if maybe_viewer is None or lang not in LOCALES:
        separator = "&" if "?" in target else "?"
        return Redirect(
            f"{target}{separator}lang={lang if lang in LOCALES else 'ru'}",
            status_code=HTTP_303_SEE_OTHER,
        )
    viewer = await require_signed_in(request, maybe_viewer)  # a signed-in change needs its token
    await profile.choose_locale(db, viewer.account.id, lang)
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


@post("/logout", include_in_schema=False, status_code=HTTP_303_SEE_OTHER, name="signin:logout")
async def logout(request: Request[Any, Any, Any], db: DB, viewer: SignedIn) -> Response[Any]:
    await sign_out(db, request, viewer)
    return Redirect(request.app.route_reverse("signin:page"), status_code=HTTP_303_SEE_OTHER)


ROUTES = [signin_page, signin_request_code, signin_verify, choose_locale, logout]
