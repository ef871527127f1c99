"""The client's own data in the Mini App, ``/app/me`` (policy section 8): profile, contacts,
language, devices, avatar, a copy of the data, consent withdrawal and deletion."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.domain import otp, profile
from app.domain.errors import DomainError
from app.i18n import N_, get_locale, gettext
from app.routes.consent import CLIENT_PURPOSES
from app.routes.deps import DB, AppSettings, SignedIn
from app.routes.errors import retry_after
from app.routes.rendering import Form, Multipart, error_text, forbidden_page, page_context
from app.security.limits import limited_viewer
from app.security.telegram import InvalidInitData, validate_shared_contact
from app.security.web import actor_of, clear_session_cookie
from app.settings import secret_key_for


def _saved(request: Request[Any, Any, Any], what: str) -> Redirect:
    page = request.app.route_reverse("me:page")
    return Redirect(f"{page}?saved={what}", status_code=HTTP_303_SEE_OTHER)


async def _me_page(
    request: Request[Any, Any, Any], db: DB, viewer: SignedIn, *, status: int = 200, **context: Any
) -> Template:
    """The person's own page: profile, contacts, language, where they are signed in, rights."""
    data = await profile.my_data(db, viewer.account.id)
    return Template(
        "miniapp/me.html",
        context={
            **page_context(request, viewer),
            "back_url": request.app.route_reverse("miniapp:bookings"),
            "purposes": CLIENT_PURPOSES,
            "consented": data.consented,
            "devices": data.devices,
            **context,
        },
        status_code=status,
    )


@get("/me", include_in_schema=False, name="me:page")
async def me_page(request: Request[Any, Any, Any], db: DB, viewer: SignedIn) -> Response[Any]:
    return await _me_page(request, db, viewer, saved=request.query_params.get("saved"))


@post("/me/name", include_in_schema=False, status_code=HTTP_303_SEE_OTHER, name="me:name")
async def me_name(
    request: Request[Any, Any, Any], db: DB, viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:  # fmt: skip
    await profile.rename(db, viewer.account.id, data.get("name") or "")
    return _saved(request, "name")


@post(
    "/me/contact",
    include_in_schema=False,
    status_code=200,
    name="me:contact",
    dependencies={"viewer": limited_viewer("contact_change")},
)
async def me_contact(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Change the phone or e-mail: a code goes to the new address first (policy 8.2)."""
    contact = (data.get("contact") or "").strip()[:254]
    channel = otp.channel_of(contact)
    try:
        challenge_id = await profile.request_contact_change(
            db, viewer.account.id, channel=channel, destination=contact,
            actor=actor_of(request, viewer.account.id), secret=secret_key_for(settings),
            locale=get_locale(),
        )  # fmt: skip
    except DomainError as error:
        message = error_text(error)
        page = await _me_page(request, db, viewer, status=error.status, contact_error=message,
                              contact=contact)  # fmt: skip
        page.headers.update(retry_after(error))
        return page
    return await _me_page(
        request, db, viewer, challenge_id=challenge_id, channel=channel,
        contact=otp.normalize_destination(channel, contact),
    )  # fmt: skip


@post(
    "/me/contact/verify",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="me:contact-verify",
    dependencies={"viewer": limited_viewer("contact_change")},
)
async def me_contact_verify(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    contact = (data.get("contact") or "").strip()[:254]
    challenge = data.get("challenge_id", "")
    channel = otp.channel_of(contact)
    if not challenge.isdigit() or len(challenge) > 18:
        return Redirect(request.app.route_reverse("me:page"), status_code=HTTP_303_SEE_OTHER)
    try:
        await profile.confirm_contact_change(
            db, viewer.account.id, channel=channel, challenge_id=int(challenge),
            destination=contact, code=(data.get("code") or "")[:12],
            secret=secret_key_for(settings), actor=actor_of(request, viewer.account.id),
        )  # fmt: skip
    except DomainError as error:
        message = error_text(error)
        page = await _me_page(request, db, viewer, status=error.status, code_error=message,
                              challenge_id=challenge, channel=channel, contact=contact)  # fmt: skip
        page.headers.update(retry_after(error))
        return page
    return _saved(request, "contact")


@post(
    "/me/telegram-contact",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="me:telegram-contact",
)
async def me_telegram_contact(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """The phone shared with Telegram's requestContact: signed by Telegram, so no code is needed."""
    try:
        shared = validate_shared_contact(data.get("contact", ""), settings.telegram_bot_token)
    except InvalidInitData:
        return forbidden_page(request, viewer)
    if shared.user_id != viewer.account.telegram_id:
        return forbidden_page(request, viewer)
    phone = shared.phone_number
    try:
        await profile.set_telegram_phone(
            db, viewer.account.id, phone if phone.startswith("+") else f"+{phone}"
        )
    except DomainError as error:
        message = error_text(error)
        return await _me_page(request, db, viewer, status=error.status, contact_error=message)
    return _saved(request, "contact")


@post(
    "/me/write-access",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="me:write-access",
)
async def me_write_access(
    request: Request[Any, Any, Any], db: DB, viewer: SignedIn
) -> Response[Any]:
    """The person allowed the bot to write (``requestWriteAccess``): notify them in Telegram.

    If they revoke it later, the bot's send fails and delivery falls back to SMS or e-mail."""
    await profile.allow_bot_messages(db, viewer.account.id)
    return _saved(request, "notifications")


@post(
    "/me/sessions/sign-out-others",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="me:sign-out-others",
)
async def me_sign_out_others(
    request: Request[Any, Any, Any], db: DB, viewer: SignedIn
) -> Response[Any]:
    """Sign out on every other device (a lost phone, a shared computer): their tokens die at
    once. Recorded as a security event with where the request came from (policy 2.6)."""
    await profile.sign_out_others(
        db, viewer.account.id, viewer.session.id, actor=actor_of(request, viewer.account.id)
    )
    return _saved(request, "sessions")


@post("/me/avatar", include_in_schema=False, status_code=HTTP_303_SEE_OTHER, name="me:avatar")
async def me_avatar(
    request: Request[Any, Any, Any],
    db: DB,
    viewer: SignedIn,
    data: Annotated[dict[str, Any], Multipart],
) -> Response[Any]:
    upload = data.get("avatar")
    content = await upload.read() if isinstance(upload, UploadFile) else b""
    try:
        await profile.set_avatar(
            db, viewer.account.id, content, actor=actor_of(request, viewer.account.id)
        )
    except DomainError as error:
        return await _me_page(request, db, viewer, status=error.status,
                              avatar_error=gettext(error.message))  # fmt: skip
    return _saved(request, "avatar")


@post(
    "/me/avatar/delete",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="me:avatar-delete",
)
async def me_avatar_delete(
    request: Request[Any, Any, Any], db: DB, viewer: SignedIn
) -> Response[Any]:
    await profile.remove_avatar(db, viewer.account.id, actor=actor_of(request, viewer.account.id))
    return _saved(request, "avatar")


@get("/me/avatar", include_in_schema=False, name="me:avatar-image")
async def me_avatar_image(db: DB, viewer: SignedIn) -> Response[Any]:
    avatar = await profile.avatar_image(db, viewer.account.id)
    if avatar is None:
        return Response(b"", status_code=404)
    return Response(avatar, media_type="image/webp", headers={"Cache-Control": "private, no-store"})


@get(
    "/me/export",
    include_in_schema=False,
    name="me:export",
    dependencies={"viewer": limited_viewer("export")},
)
async def me_export(request: Request[Any, Any, Any], db: DB, viewer: SignedIn) -> Response[Any]:
    """A copy of everything held about the person (policy 8.1), as a ZIP of JSON and CSV."""
    archive = await profile.export(
        db, viewer.account.id, actor=actor_of(request, viewer.account.id)
    )
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="pozapisi-my-data.zip"'},
    )


@post(
    "/me/consent/withdraw",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
    name="me:withdraw",
)
async def me_withdraw_consent(
    request: Request[Any, Any, Any], db: DB, viewer: SignedIn
) -> Response[Any]:
    await profile.withdraw_consent(
        db, viewer.account.id, channel="mini_app", actor=actor_of(request, viewer.account.id)
    )
    return _saved(request, "consent")


@post(
    "/me/delete",
    include_in_schema=False,
    status_code=200,
    name="me:delete",
    dependencies={"viewer": limited_viewer("delete")},
)
async def me_delete(
    request: Request[Any, Any, Any], db: DB, viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:  # fmt: skip
    """Delete the account (policy 8.3). Sessions end at once; the person is signed out."""
    if data.get("confirm") != "yes":
        return await _me_page(request, db, viewer, status=422, delete_error=gettext(
            N_("Tick the box to confirm that you want to delete your account.")))  # fmt: skip
    try:
        await profile.delete_account(
            db, viewer.account.id, actor=actor_of(request, viewer.account.id)
        )
    except DomainError as error:
        return await _me_page(request, db, viewer, status=error.status,
                              delete_error=gettext(error.message))  # fmt: skip
    clear_session_cookie(request)
    # a page, not a redirect: inside Telegram the next request would sign in again at once
    return Template("miniapp/deleted.html", context=page_context(request, None))


ROUTES = [
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
