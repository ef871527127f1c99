"""Sign-in, consent and the client's own data pages of the Mini App (``/app/signin``, ``/app/consent``,
``/app/me``). Business rules live in ``app.domain``; this module parses, authorizes and renders."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.domain import otp
from app.domain.consent import current_policy, has_valid_consent, record_consent
from app.domain.errors import DomainError
from app.i18n import LOCALES, N_, get_locale, gettext
from app.routes.deps import DB, AppSettings
from app.routes.view import Form, forbidden_page, load_viewer, page_context, signin_redirect
from app.security import sessions
from app.security.web import clear_session_cookie, csrf_ok, same_origin, start_session
from app.settings import secret_key_for

CLIENT_PURPOSES = ["booking", "notifications", "support", "security"]


def safe_next(value: str | None, default: str = "/app/bookings") -> str:
    """Only same-site paths: an open redirect would let a link send people anywhere."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default


@get("/app/consent", include_in_schema=False)
async def consent_page(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    next_url: Annotated[str | None, QueryParameter(query="next", max_length=500)] = None,
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await load_viewer(session, request, settings)
        if viewer is None:
            return signin_redirect(request)
        policy = await current_policy(session)
        already = await has_valid_consent(session, viewer.account.id)
    return Template(
        "miniapp/consent.html",
        context={**page_context(request, viewer), "policy": policy, "next": safe_next(next_url),
                 "already": already, "purposes": CLIENT_PURPOSES},
    )  # fmt: skip


@post("/app/consent", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def consent_submit(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await load_viewer(session, request, settings)
        if viewer is None:
            return signin_redirect(request)
        if not await csrf_ok(request, viewer):
            return forbidden_page(request, settings, viewer)
        try:
            await record_consent(
                session,
                viewer.account.id,
                policy_version=data.get("policy_version", ""),
                purposes=CLIENT_PURPOSES,
                action="granted",
                channel="mini_app",
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
        except DomainError as error:
            policy = await current_policy(session)
            return Template(
                "miniapp/consent.html",
                context={**page_context(request, viewer), "policy": policy, "error": error,
                         "next": safe_next(data.get("next")), "purposes": CLIENT_PURPOSES},
                status_code=error.status,
            )  # fmt: skip
    return Redirect(safe_next(data.get("next")), status_code=HTTP_303_SEE_OTHER)


@post("/app/locale", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def choose_locale(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Save the language on the account (the explicit choice beats Telegram and the browser)."""
    lang = data.get("lang", "")
    target = safe_next(data.get("next"), "/app/bookings")
    async with db.transaction() as session:
        viewer = await load_viewer(session, request, settings)
        if viewer is None or lang not in LOCALES:
            separator = "&" if "?" in target else "?"
            return Redirect(
                f"{target}{separator}lang={lang if lang in LOCALES else 'ru'}",
                status_code=HTTP_303_SEE_OTHER,
            )
        if not await csrf_ok(request, viewer):
            return forbidden_page(request, settings, viewer)
        viewer.account.locale = lang
        viewer.account.locale_chosen = True
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


@post("/app/logout", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def logout(request: Request[Any, Any, Any], db: DB, settings: AppSettings) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await load_viewer(session, request, settings)
        if viewer is not None:
            if not await csrf_ok(request, viewer):
                return forbidden_page(request, settings, viewer)
            await sessions.revoke(session, viewer.session.id)
    clear_session_cookie(request)
    return Redirect("/app/signin", status_code=HTTP_303_SEE_OTHER)


# --- sign-in with a one-time code (outside Telegram) -------------------------------------------


def _channel_of(contact: str) -> str:
    return "email" if "@" in contact else "sms"


def _signin_page(
    request: Request[Any, Any, Any], *, step: str, next_url: str, status: int = 200, **context: Any
) -> Template:
    return Template(
        "miniapp/signin.html",
        context={**page_context(request, None), "step": step, "next": next_url, **context},
        status_code=status,
    )


@get("/app/signin", include_in_schema=False)
async def signin_page(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    next_url: Annotated[str | None, QueryParameter(query="next", max_length=500)] = None,
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await load_viewer(session, request, settings)
    if viewer is not None:
        return Redirect(safe_next(next_url), status_code=HTTP_303_SEE_OTHER)
    return _signin_page(request, step="contact", next_url=safe_next(next_url))


@post("/app/signin", include_in_schema=False, status_code=200)
async def signin_request_code(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Send a code. The answer is the same whether or not an account has this address."""
    next_url = safe_next(data.get("next"))
    if not same_origin(request):
        return _signin_page(request, step="contact", next_url=next_url, status=403,
                            error=gettext(N_("This form has expired. Please open the page again.")))  # fmt: skip
    contact = (data.get("contact") or "").strip()[:254]
    channel = _channel_of(contact)
    try:
        async with db.transaction() as session:
            challenge_id = await otp.request_code(
                session, channel=channel, destination=contact, ip=_ip(request),
                secret=secret_key_for(settings), locale=get_locale(),
            )  # fmt: skip
    except DomainError as error:
        message = next(iter(error.fields.values()), None) or gettext(error.message)
        return _signin_page(request, step="contact", next_url=next_url, status=error.status,
                            error=message, contact=contact)  # fmt: skip
    return _signin_page(request, step="code", next_url=next_url, challenge_id=challenge_id,
                        contact=otp.normalize_destination(channel, contact), channel=channel)  # fmt: skip


@post("/app/signin/verify", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def signin_verify(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    next_url = safe_next(data.get("next"))
    contact = (data.get("contact") or "").strip()[:254]
    challenge = data.get("challenge_id", "")
    retry = {"contact": contact, "challenge_id": challenge, "channel": _channel_of(contact)}
    if not same_origin(request) or not challenge.isdigit() or len(challenge) > 18:
        return _signin_page(request, step="contact", next_url=next_url, status=403,
                            error=gettext(N_("This form has expired. Please open the page again.")))  # fmt: skip
    try:
        # its own transaction: a wrong try must be counted even though the request fails
        async with db.transaction() as session:
            verified = await otp.verify_code(
                session, challenge_id=int(challenge), destination=contact,
                code=(data.get("code") or "")[:12], secret=secret_key_for(settings),
            )  # fmt: skip
    except DomainError as error:
        step = "contact" if error.code == "rate_limited" else "code"
        return _signin_page(request, step=step, next_url=next_url, status=error.status,
                            error=gettext(error.message), **retry)  # fmt: skip
    async with db.transaction() as session:
        account = await otp.account_for_contact(session, verified, locale=get_locale())
        await start_session(session, request, settings, account)
    return Redirect(next_url, status_code=HTTP_303_SEE_OTHER)


def _ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


ROUTES = [
    consent_page,
    consent_submit,
    choose_locale,
    logout,
    signin_page,
    signin_request_code,
    signin_verify,
]
