"""Sign-in, consent and the client's own data pages of the Mini App (``/app/signin``, ``/app/consent``,
``/app/me``). Business rules live in ``app.domain``; this module parses, authorizes and renders."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import set_context
from app.domain import avatars, otp, privacy
from app.domain.consent import current_policy, has_valid_consent, record_consent
from app.domain.errors import DomainError
from app.i18n import LOCALES, N_, get_locale, gettext
from app.routes.deps import DB, AppSettings
from app.routes.view import (
    Form,
    Multipart,
    actor_of,
    forbidden_page,
    load_viewer,
    page_context,
    require_viewer,
    signin_redirect,
)
from app.security import sessions
from app.security.telegram import InvalidInitData, validate_shared_contact
from app.security.web import Viewer, clear_session_cookie, csrf_ok, same_origin, start_session
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
    next_url: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None,
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
    next_url: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None,
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


# --- my data (policy section 8) ------------------------------------------------------------------


async def _me_page(
    session: AsyncSession,
    request: Request[Any, Any, Any],
    viewer: Viewer,
    *,
    status: int = 200,
    **context: Any,
) -> Template:
    """The person's own page: profile, contacts, language, where they are signed in, rights."""
    return Template(
        "miniapp/me.html",
        context={
            **page_context(request, viewer),
            "back_url": "/app/bookings",
            "purposes": CLIENT_PURPOSES,
            "consented": await has_valid_consent(session, viewer.account.id),
            "devices": await sessions.live_sessions(session, viewer.account.id),
            **context,
        },
        status_code=status,
    )


@get("/app/me", include_in_schema=False)
async def me_page(request: Request[Any, Any, Any], db: DB, settings: AppSettings) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        return await _me_page(session, request, viewer, saved=request.query_params.get("saved"))


@post("/app/me/name", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def me_name(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        name = " ".join((data.get("name") or "").split())[:120]
        viewer.account.name = name or None  # the name is optional (policy 2.1)
    return Redirect("/app/me?saved=name", status_code=HTTP_303_SEE_OTHER)


@post("/app/me/contact", include_in_schema=False, status_code=200)
async def me_contact(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Change the phone or e-mail: a code goes to the new address first (policy 8.2)."""
    contact = (data.get("contact") or "").strip()[:254]
    channel = _channel_of(contact)
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            async with session.begin_nested():
                challenge_id = await otp.request_contact_change(
                    session, account_id=viewer.account.id, channel=channel, destination=contact,
                    ip=_ip(request), secret=secret_key_for(settings), locale=get_locale(),
                )  # fmt: skip
        except DomainError as error:
            message = next(iter(error.fields.values()), None) or gettext(error.message)
            return await _me_page(session, request, viewer, status=error.status,
                                  contact_error=message, contact=contact)  # fmt: skip
        return await _me_page(
            session, request, viewer, challenge_id=challenge_id, channel=channel,
            contact=otp.normalize_destination(channel, contact),
        )  # fmt: skip


@post("/app/me/contact/verify", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def me_contact_verify(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    contact = (data.get("contact") or "").strip()[:254]
    challenge = data.get("challenge_id", "")
    channel = _channel_of(contact)
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        account_id = viewer.account.id
    if not challenge.isdigit() or len(challenge) > 18:
        return Redirect("/app/me", status_code=HTTP_303_SEE_OTHER)
    try:
        async with db.transaction(account_id=account_id) as session:
            await otp.confirm_contact_change(
                session, account_id=account_id, channel=channel, challenge_id=int(challenge),
                destination=contact, code=(data.get("code") or "")[:12], secret=secret_key_for(settings),
            )  # fmt: skip
    except DomainError as error:
        async with db.transaction() as session:
            viewer = await require_viewer(session, request, settings, unsafe=False)
            if not isinstance(viewer, Viewer):
                return viewer
            return await _me_page(session, request, viewer, status=error.status,
                                  code_error=gettext(error.message), challenge_id=challenge,
                                  channel=channel, contact=contact)  # fmt: skip
    return Redirect("/app/me?saved=contact", status_code=HTTP_303_SEE_OTHER)


@post("/app/me/telegram-contact", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def me_telegram_contact(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """The phone shared with Telegram's requestContact: signed by Telegram, so no code is needed."""
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            shared = validate_shared_contact(data.get("contact", ""), settings.telegram_bot_token)
        except InvalidInitData:
            return forbidden_page(request, settings, viewer)
        if shared.user_id != viewer.account.telegram_id:
            return forbidden_page(request, settings, viewer)
        raw_phone = (
            shared.phone_number
            if shared.phone_number.startswith("+")
            else f"+{shared.phone_number}"
        )
        try:
            async with session.begin_nested():
                await otp.set_verified_phone(session, viewer.account, raw_phone)
        except DomainError as error:
            message = next(iter(error.fields.values()), None) or gettext(error.message)
            return await _me_page(
                session, request, viewer, status=error.status, contact_error=message
            )
    return Redirect("/app/me?saved=contact", status_code=HTTP_303_SEE_OTHER)


@post("/app/me/write-access", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def me_write_access(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[Any]:
    """The person allowed the bot to write (``requestWriteAccess``): notify them in Telegram.

    If they revoke it later, the bot's send fails and delivery falls back to SMS or e-mail."""
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        if viewer.account.telegram_id is not None:
            viewer.account.allows_write_to_pm = True
    return Redirect("/app/me?saved=notifications", status_code=HTTP_303_SEE_OTHER)


@post("/app/me/sessions/sign-out-others", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def me_sign_out_others(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[Any]:
    """Sign out on every other device (a lost phone, a shared computer): their tokens die at
    once. Recorded as a security event with where the request came from (policy 2.6)."""
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        await sessions.revoke_others(session, viewer.account.id, viewer.session.id)
        actor = actor_of(request, viewer)
        await sessions.record_event(
            session, viewer.account.id, "sessions.signed_out_others", ip=actor.ip,
            user_agent=actor.user_agent,
        )  # fmt: skip
    return Redirect("/app/me?saved=sessions", status_code=HTTP_303_SEE_OTHER)


@post("/app/me/avatar", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def me_avatar(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, Any], Multipart],
) -> Response[Any]:
    upload = data.get("avatar")
    content = await upload.read() if isinstance(upload, UploadFile) else b""
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            async with session.begin_nested():
                await avatars.set_avatar(
                    session, viewer.account.id, content, actor=actor_of(request, viewer)
                )
        except DomainError as error:
            return await _me_page(session, request, viewer, status=error.status,
                                  avatar_error=gettext(error.message))  # fmt: skip
    return Redirect("/app/me?saved=avatar", status_code=HTTP_303_SEE_OTHER)


@post("/app/me/avatar/delete", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def me_avatar_delete(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        if viewer.account.avatar is not None:
            await avatars.remove_avatar(session, viewer.account.id, actor=actor_of(request, viewer))
    return Redirect("/app/me?saved=avatar", status_code=HTTP_303_SEE_OTHER)


@get("/app/me/avatar", include_in_schema=False)
async def me_avatar_image(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        avatar = viewer.account.avatar
    if avatar is None:
        return Response(b"", status_code=404)
    return Response(
        bytes(avatar), media_type="image/webp", headers={"Cache-Control": "private, no-store"}
    )


@get("/app/me/export", include_in_schema=False)
async def me_export(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[Any]:
    """A copy of everything held about the person (policy 8.1), as a ZIP of JSON and CSV."""
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings, unsafe=False)
        if not isinstance(viewer, Viewer):
            return viewer
        await set_context(session, account_id=viewer.account.id)
        archive = await privacy.export_account(
            session, viewer.account.id, actor=actor_of(request, viewer)
        )
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="pozapisi-my-data.zip"'},
    )


@post("/app/me/consent/withdraw", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def me_withdraw_consent(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[Any]:
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        await privacy.withdraw_consent(
            session, viewer.account.id, "mini_app", _ip(request), request.headers.get("user-agent"),
            actor=actor_of(request, viewer),
        )  # fmt: skip
    return Redirect("/app/me?saved=consent", status_code=HTTP_303_SEE_OTHER)


@post("/app/me/delete", include_in_schema=False, status_code=200)
async def me_delete(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Delete the account (policy 8.3). Sessions end at once; the person is signed out."""
    async with db.transaction() as session:
        viewer = await require_viewer(session, request, settings)
        if not isinstance(viewer, Viewer):
            return viewer
        if data.get("confirm") != "yes":
            return await _me_page(session, request, viewer, status=422,
                                  delete_error=gettext(N_("Tick the box to confirm that you want to delete your account.")))  # fmt: skip
        await set_context(session, account_id=viewer.account.id)
        try:
            async with session.begin_nested():
                await privacy.erase_account(
                    session, viewer.account.id, actor=actor_of(request, viewer)
                )
        except DomainError as error:
            return await _me_page(session, request, viewer, status=error.status,
                                  delete_error=gettext(error.message))  # fmt: skip
    clear_session_cookie(request)
    # a page, not a redirect: inside Telegram the next request would sign in again at once
    return Template("miniapp/deleted.html", context=page_context(request, None))


ROUTES = [
    consent_page,
    consent_submit,
    choose_locale,
    logout,
    signin_page,
    signin_request_code,
    signin_verify,
    me_page,
    me_name,
    me_sign_out_others,
    me_contact,
    me_contact_verify,
    me_telegram_contact,
    me_write_access,
    me_avatar,
    me_avatar_delete,
    me_avatar_image,
    me_export,
    me_withdraw_consent,
    me_delete,
]
