"""Dashboard accounts: sign-up, sign-in (password or one-time code) and sign-out, the links
sent by e-mail (verify the address, reset the password, confirm a new address), the account
security page, and a new business for a signed-in person who works in none.

Pinned (DESIGN.md "Dashboard contracts"): ``POST /dashboard/signup`` and ``POST
/dashboard/signin`` take form fields and a ``csrf_token`` (a pre-session token: nobody is
signed in yet), answer 303 with the ``__Host-pz_dash`` cookie, 422 with the messages beside
the fields, and the same refusal for a wrong password and an unknown e-mail. The rules live in
``app.domain.staff_accounts``; each handler parses, makes one domain call, signs the person in
when that call proved who they are, and presents the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import NoRouteMatchFoundException

from app.domain import otp, profile, staff_accounts
from app.domain.errors import DomainError, ValidationFailed
from app.i18n import get_locale, gettext
from app.routes.dashboard.render import field_errors, page, safe_next, see_other
from app.routes.deps import DB, AppSettings, MaybeDashboard, SignedInDashboard
from app.routes.params import LinkToken
from app.routes.rendering import Form
from app.security import dashboard as dash
from app.security import limits
from app.security.web import actor_of, client_ip
from app.settings import Settings, secret_key_for

FormData = Annotated[dict[str, str], Form]
Req = Request[Any, Any, Any]


def _link(request: Req, settings: Settings, name: str) -> Callable[[str], str]:
    """token → the absolute address of page ``name`` (e-mails leave the app)."""

    def build(token: str) -> str:
        return settings.public_base_url + request.app.route_reverse(name, token=token)

    return build


def _after_sign_up(request: Req) -> str:
    """The set-up wizard when the dashboard has one, else its home."""
    try:
        return request.app.route_reverse("dashboard:setup")
    except NoRouteMatchFoundException:
        return request.app.route_reverse("dashboard:home")


def _challenge(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


# --- sign-in and sign-out ----------------------------------------------------------------------


def _signin_page(
    request: Req, settings: Settings, *, status: int = 200, **context: Any
) -> Response[Any]:
    context.setdefault("errors", {})
    context.setdefault("next_url", request.query_params.get("next", ""))
    context.setdefault("tab", "password")
    return page(request, None, "dashboard/signin.html", status=status, settings=settings, **context)


@get("/signin", name="dashboard:signin", include_in_schema=False)
async def signin_page(request: Req, settings: AppSettings) -> Response[Any]:
    tab = "code" if request.query_params.get("tab") == "code" else "password"
    return _signin_page(request, settings, tab=tab)


@post("/signin", name="dashboard:signin-submit", include_in_schema=False, status_code=303)
async def signin_submit(
    request: Req, db: DB, settings: AppSettings, data: FormData
) -> Response[Any]:
    await dash.check_pre_session(request, settings)
    email, next_url = data.get("email", "").strip(), data.get("next", "")
    await limits.count_password_sign_in(db, settings, email=email, ip=client_ip(request))
    try:
        account_id = await staff_accounts.sign_in_with_password(
            db,
            email=email,
            password=data.get("password", ""),
            actor=actor_of(request, None, "staff"),
        )
    except staff_accounts.SignInFailed as refused:
        return _signin_page(
            request, settings, status=refused.status, email=email, next_url=next_url,
            errors=field_errors(refused),
        )  # fmt: skip
    await dash.start(db, request, settings, account_id)
    return see_other(safe_next(request, next_url))


@post("/signin/code/send", name="dashboard:signin-code-send", include_in_schema=False,
      status_code=200, guards=[limits.per_network("sign_in_ip")])  # fmt: skip
async def signin_code_send(
    request: Req, db: DB, settings: AppSettings, data: FormData
) -> Response[Any]:
    """Step one of a sign-in by code: a code to the e-mail or phone, the same answer whether or
    not an account has it."""
    await dash.check_pre_session(request, settings)
    contact, next_url = data.get("contact", "").strip(), data.get("next", "")
    try:
        challenge_id = await otp.send_sign_in_code(
            db, channel=otp.channel_of(contact), destination=contact, ip=client_ip(request),
            secret=secret_key_for(settings), locale=get_locale(),
        )  # fmt: skip
    except ValidationFailed as refused:
        errors = {"contact": next(iter(refused.fields.values()), gettext(refused.message))}
        return _signin_page(request, settings, status=422, tab="code", contact=contact,
                            next_url=next_url, errors=errors)  # fmt: skip
    return _signin_page(request, settings, tab="code", step="code", contact=contact,
                        challenge_id=challenge_id, next_url=next_url)  # fmt: skip


@post("/signin/code", name="dashboard:signin-code", include_in_schema=False, status_code=303,
      guards=[limits.per_network("sign_in_ip")])  # fmt: skip
async def signin_code(request: Req, db: DB, settings: AppSettings, data: FormData) -> Response[Any]:
    await dash.check_pre_session(request, settings)
    contact, next_url = data.get("contact", "").strip(), data.get("next", "")
    raw_challenge = data.get("challenge_id", "")
    retry = {"tab": "code", "step": "code", "contact": contact,
             "challenge_id": raw_challenge, "next_url": next_url}  # fmt: skip
    try:
        account_id = await staff_accounts.sign_in_with_code(
            db, challenge_id=_challenge(raw_challenge) or 0, destination=contact,
            code=data.get("code", ""), secret=secret_key_for(settings), locale=get_locale(),
            actor=actor_of(request, None, "staff"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return _signin_page(request, settings, status=422, errors={"code": gettext(refused.message)},
                            **retry)  # fmt: skip
    except DomainError as refused:
        if refused.status == 429:
            raise
        return _signin_page(request, settings, status=422, errors={"code": gettext(refused.message)},
                            **retry)  # fmt: skip
    await dash.start(db, request, settings, account_id)
    return see_other(safe_next(request, next_url))


@post("/signout", name="dashboard:signout", include_in_schema=False, status_code=303)
async def signout(request: Req, db: DB, dashboard: SignedInDashboard) -> Response[Any]:
    await dash.end(db, request, dashboard)
    return see_other(request.app.route_reverse("dashboard:signin"))


# --- sign-up and a new business ----------------------------------------------------------------


@get("/signup", name="dashboard:signup", include_in_schema=False)
async def signup_page(request: Req, settings: AppSettings) -> Response[Any]:
    return page(request, None, "dashboard/signup.html", settings=settings, errors={})


@post("/signup", name="dashboard:signup-submit", include_in_schema=False, status_code=303,
      guards=[limits.per_network("signup_ip")])  # fmt: skip
async def signup_submit(
    request: Req, db: DB, settings: AppSettings, data: FormData
) -> Response[Any]:
    await dash.check_pre_session(request, settings)
    name, email = data.get("business_name", ""), data.get("email", "").strip()
    try:
        signed_up = await staff_accounts.sign_up(
            db, business_name=name, email=email, password=data.get("password", ""),
            locale=get_locale(), actor=actor_of(request, None, "staff"),
            verify_link=_link(request, settings, "dashboard:verify"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return page(request, None, "dashboard/signup.html", status=422, settings=settings,
                    business_name=name, email=email, errors=field_errors(refused))  # fmt: skip
    await dash.start(db, request, settings, signed_up.account_id, business_id=signed_up.business_id)
    return see_other(_after_sign_up(request))


@get("/new-business", name="dashboard:new-business", include_in_schema=False)
async def new_business_page(request: Req, dashboard: SignedInDashboard) -> Response[Any]:
    return page(request, dashboard, "dashboard/new_business.html", errors={})


@post("/new-business", name="dashboard:new-business-submit", include_in_schema=False,
      status_code=303)  # fmt: skip
async def new_business_submit(
    request: Req, db: DB, settings: AppSettings, dashboard: SignedInDashboard, data: FormData
) -> Response[Any]:
    name = data.get("business_name", "")
    try:
        created = await staff_accounts.create_business(
            db, dashboard.account.id, business_name=name,
            actor=actor_of(request, dashboard.account.id, "staff"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return page(request, dashboard, "dashboard/new_business.html", status=422,
                    business_name=name, errors=field_errors(refused))  # fmt: skip
    # this device's session row gets a new token and works in the new business (choose()
    # knows only the businesses loaded with this request)
    await dash.start(db, request, settings, dashboard.account.id, business_id=created.business_id)
    return see_other(_after_sign_up(request))


# --- links sent by e-mail ----------------------------------------------------------------------


@get("/forgot", name="dashboard:forgot", include_in_schema=False)
async def forgot_page(request: Req, settings: AppSettings) -> Response[Any]:
    return page(request, None, "dashboard/forgot.html", settings=settings, errors={})


@post("/forgot", name="dashboard:forgot-submit", include_in_schema=False, status_code=200,
      guards=[limits.per_network("password_ip")])  # fmt: skip
async def forgot_submit(
    request: Req, db: DB, settings: AppSettings, data: FormData
) -> Response[Any]:
    """Always the same answer: "if an account has this address, a link is on its way"."""
    await dash.check_pre_session(request, settings)
    email = data.get("email", "").strip()
    await limits.hit(db, settings, "reset", f"email:{email.lower()}")
    try:
        await staff_accounts.request_password_reset(
            db, email=email, actor=actor_of(request, None, "staff"),
            reset_link=_link(request, settings, "dashboard:reset"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return page(request, None, "dashboard/forgot.html", status=422, settings=settings,
                    email=email, errors=field_errors(refused))  # fmt: skip
    return page(request, None, "dashboard/forgot.html", settings=settings, sent=True, errors={})


@get("/reset/{token:str}", name="dashboard:reset", include_in_schema=False)
async def reset_page(
    request: Req, db: DB, settings: AppSettings, token: LinkToken
) -> Response[Any]:
    works = await staff_accounts.link_works(db, "reset_password", token)
    return page(request, None, "dashboard/reset.html", status=200 if works else 404,
                settings=settings, token=token, works=works, errors={})  # fmt: skip


@post("/reset/{token:str}", name="dashboard:reset-submit", include_in_schema=False,
      status_code=303, guards=[limits.per_network("password_ip")])  # fmt: skip
async def reset_submit(
    request: Req, db: DB, settings: AppSettings, token: LinkToken, data: FormData
) -> Response[Any]:
    await dash.check_pre_session(request, settings)
    try:
        account_id = await staff_accounts.reset_password(
            db, token=token, password=data.get("password", ""),
            actor=actor_of(request, None, "staff"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return page(request, None, "dashboard/reset.html", status=422, settings=settings,
                    token=token, works=True, errors=field_errors(refused))  # fmt: skip
    except staff_accounts.LinkInvalid:
        return page(request, None, "dashboard/reset.html", status=404, settings=settings,
                    token=token, works=False, errors={})  # fmt: skip
    await dash.start(db, request, settings, account_id)
    return see_other(request.app.route_reverse("dashboard:home"))


def _confirm_pages(purpose: str, path: str, name: str) -> list[Any]:
    """The page of a link that confirms an address (GET shows a button, POST spends it)."""

    @get(path, name=name, include_in_schema=False)
    async def show(request: Req, db: DB, settings: AppSettings, token: LinkToken) -> Response[Any]:
        works = await staff_accounts.link_works(db, purpose, token)
        return page(request, None, "dashboard/verify.html", status=200 if works else 404,
                    settings=settings, token=token, works=works, purpose=purpose,
                    action=name + "-submit")  # fmt: skip

    @post(path, name=name + "-submit", include_in_schema=False, status_code=200)
    async def confirm(
        request: Req,
        db: DB,
        settings: AppSettings,
        maybe_dashboard: MaybeDashboard,
        token: LinkToken,
    ) -> Response[Any]:
        await dash.check_pre_session(request, settings)
        try:
            await staff_accounts.confirm_email(
                db, purpose=purpose, token=token, actor=actor_of(request, None, "staff")
            )
        except staff_accounts.LinkInvalid:
            return page(request, None, "dashboard/verify.html", status=404, settings=settings,
                        token=token, works=False, purpose=purpose, action=name + "-submit")  # fmt: skip
        except ValidationFailed as refused:
            return page(request, None, "dashboard/verify.html", status=422, settings=settings,
                        token=token, works=True, purpose=purpose, action=name + "-submit",
                        error=gettext(refused.message))  # fmt: skip
        return page(request, None, "dashboard/verify.html", settings=settings, token=token,
                    works=True, done=True, purpose=purpose, signed_in=maybe_dashboard is not None,
                    action=name + "-submit")  # fmt: skip

    return [show, confirm]


# --- the account's security page ---------------------------------------------------------------


async def _security_page(
    request: Req, db: DB, dashboard: dash.Dashboard, *, status: int = 200, **context: Any
) -> Response[Any]:
    context.setdefault("errors", {})
    context.setdefault("form", "")
    devices = await staff_accounts.signed_in_devices(db, dashboard.account.id)
    return page(request, dashboard, "dashboard/security.html", status=status, devices=devices,
                **context)  # fmt: skip


@get("/security", name="dashboard:security", include_in_schema=False)
async def security_page(request: Req, db: DB, dashboard: SignedInDashboard) -> Response[Any]:
    done = request.query_params.get("done", "")
    return await _security_page(request, db, dashboard, done=done)


@post("/security/sessions", name="dashboard:security-sessions", include_in_schema=False,
      status_code=303)  # fmt: skip
async def sign_out_others(request: Req, db: DB, dashboard: SignedInDashboard) -> Response[Any]:
    """Sign out on every other device (a lost phone, a shared computer); a security event."""
    await profile.sign_out_others(
        db, dashboard.account.id, dashboard.session.id,
        actor=actor_of(request, dashboard.account.id, "staff"),
    )  # fmt: skip
    return _security_done(request, "sessions")


def _security_done(request: Req, what: str) -> Response[Any]:
    return see_other(request.app.route_reverse("dashboard:security") + f"?done={what}")


@post("/security/password", name="dashboard:security-password", include_in_schema=False,
      status_code=303)  # fmt: skip
async def change_password(
    request: Req, db: DB, settings: AppSettings, dashboard: SignedInDashboard, data: FormData
) -> Response[Any]:
    await limits.hit(db, settings, "password", f"email:{(dashboard.account.email or '').lower()}")
    try:
        await staff_accounts.change_password(
            db, dashboard.account.id, session_id=dashboard.session.id,
            current=data.get("current_password", ""), new=data.get("password", ""),
            actor=actor_of(request, dashboard.account.id, "staff"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return await _security_page(request, db, dashboard, status=422, form="password",
                              errors=field_errors(refused))  # fmt: skip
    return _security_done(request, "password")


@post("/security/email", name="dashboard:security-email", include_in_schema=False,
      status_code=303)  # fmt: skip
async def change_email(
    request: Req, db: DB, settings: AppSettings, dashboard: SignedInDashboard, data: FormData
) -> Response[Any]:
    await limits.hit(db, settings, "password", f"email:{(dashboard.account.email or '').lower()}")
    email = data.get("email", "").strip()
    try:
        await staff_accounts.request_email_change(
            db, dashboard.account.id, password=data.get("current_password", ""), new_email=email,
            actor=actor_of(request, dashboard.account.id, "staff"),
            change_link=_link(request, settings, "dashboard:email-change"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return await _security_page(request, db, dashboard, status=422, form="email", email=email,
                              errors=field_errors(refused))  # fmt: skip
    await dash.end_other_sessions(db, dashboard)
    return _security_done(request, "email")


@post("/security/verify-email", name="dashboard:security-verify-email",
      include_in_schema=False, status_code=303)  # fmt: skip
async def resend_verification(
    request: Req, db: DB, settings: AppSettings, dashboard: SignedInDashboard
) -> Response[Any]:
    """Another link to confirm the e-mail (the banner's "we sent a link" got lost)."""
    await limits.hit(db, settings, "reset", f"account:{dashboard.account.id}")
    await staff_accounts.send_verification(
        db, dashboard.account.id, verify_link=_link(request, settings, "dashboard:verify")
    )
    return _security_done(request, "verify")


@post("/security/phone", name="dashboard:security-phone", include_in_schema=False,
      status_code=200)  # fmt: skip
async def change_phone(
    request: Req, db: DB, settings: AppSettings, dashboard: SignedInDashboard, data: FormData
) -> Response[Any]:
    """Step one: the password, then an SMS code to the new phone."""
    await limits.hit(db, settings, "password", f"email:{(dashboard.account.email or '').lower()}")
    phone = data.get("phone", "").strip()
    try:
        challenge_id = await staff_accounts.request_phone_change(
            db, dashboard.account.id, password=data.get("current_password", ""), phone=phone,
            actor=actor_of(request, dashboard.account.id, "staff"), secret=secret_key_for(settings),
            locale=get_locale(),
        )  # fmt: skip
    except ValidationFailed as refused:
        return await _security_page(request, db, dashboard, status=422, form="phone", phone=phone,
                              errors=field_errors(refused))  # fmt: skip
    return await _security_page(request, db, dashboard, form="phone", phone=phone,
                          challenge_id=challenge_id)  # fmt: skip


@post("/security/phone/confirm", name="dashboard:security-phone-confirm",
      include_in_schema=False, status_code=303)  # fmt: skip
async def confirm_phone(
    request: Req, db: DB, settings: AppSettings, dashboard: SignedInDashboard, data: FormData
) -> Response[Any]:
    phone, raw_challenge = data.get("phone", "").strip(), data.get("challenge_id", "")
    try:
        await staff_accounts.confirm_phone_change(
            db, dashboard.account.id, challenge_id=_challenge(raw_challenge) or 0, phone=phone,
            code=data.get("code", ""), secret=secret_key_for(settings),
            actor=actor_of(request, dashboard.account.id, "staff"),
        )  # fmt: skip
    except DomainError as refused:
        if refused.status == 429:
            raise
        errors = field_errors(refused)
        errors = {"code": errors.get("phone") or errors.get("_form") or gettext(refused.message)}
        return await _security_page(request, db, dashboard, status=422, form="phone", phone=phone,
                              challenge_id=raw_challenge, errors=errors)  # fmt: skip
    await dash.end_other_sessions(db, dashboard)
    return _security_done(request, "phone")


ROUTES = [
    signin_page, signin_submit, signin_code_send, signin_code, signout,
    signup_page, signup_submit, new_business_page, new_business_submit,
    forgot_page, forgot_submit, reset_page, reset_submit,
    *_confirm_pages("verify_email", "/verify/{token:str}", "dashboard:verify"),
    *_confirm_pages("change_email", "/email/{token:str}", "dashboard:email-change"),
    security_page, sign_out_others, change_password, change_email, resend_verification,
    change_phone, confirm_phone,
]  # fmt: skip
