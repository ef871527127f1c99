"""Dashboard: the business's settings — booking rules on ``/dashboard/settings`` and the profile
on ``/dashboard/profile`` (the set-up wizard's first step links to it, ``?setup=1``). The owner
only: an admin or a master gets 403.

Each form posts to its page's address; a saved form answers 303 back to its page (keeping
``?setup=1``), a refused one 422 with the messages beside the fields and the values as sent."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post

from app.domain import business_settings
from app.domain.errors import ValidationFailed
from app.domain.members import Member
from app.routes.dashboard.render import field_errors, in_setup, page, see_other, url_in_flow
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.rendering import Form
from app.security.dashboard import OWNER, staff_actor


def _choices() -> dict[str, Any]:
    return {
        "languages": business_settings.LANGUAGES,
        "timezones": business_settings.TIMEZONES,
        "slot_steps": business_settings.SLOT_STEPS,
        "reminder_choices": business_settings.REMINDER_CHOICES,
    }


def _page(
    request: Request[Any, Any, Any],
    dashboard: Any,
    template: str,
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response[Any]:
    return page(
        request, dashboard, template, status=status, values=values, errors=errors or {},
        setup=in_setup(request), saved=request.query_params.get("saved") == "1", **_choices(),
    )  # fmt: skip


async def _refused(
    request: Request[Any, Any, Any],
    db: Any,
    dashboard: Any,
    member: Member,
    template: str,
    sent: dict[str, str],
    error: ValidationFailed,
) -> Response[Any]:
    """The page again, with the values as sent over the saved ones, and the messages."""
    current = business_settings.form_values(await business_settings.settings_of(db, member))
    fields = {k: v for k, v in current.items() if not _is_checkbox(k)}
    return _page(request, dashboard, template, {**fields, **sent}, errors=field_errors(error),
                 status=error.status)  # fmt: skip


def _is_checkbox(name: str) -> bool:
    # an unticked box is absent from what a form sends: the saved value must not stand in
    return name.startswith(("remind_", "notify_", "lang_")) or name == "holidays"


@get("/settings", name="dashboard:settings", dependencies=OWNER, include_in_schema=False)
async def settings_page(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    found = await business_settings.settings_of(db, member)
    return _page(request, dashboard, "dashboard/settings/rules.html",
                 business_settings.form_values(found))  # fmt: skip


@post("/settings", name="dashboard:settings-save", dependencies=OWNER, include_in_schema=False,
      status_code=303)  # fmt: skip
async def settings_save(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await business_settings.change_rules(db, member, data, actor=staff_actor(request, member))
    except ValidationFailed as error:
        return await _refused(request, db, dashboard, member, "dashboard/settings/rules.html",
                              data, error)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:settings", query={"saved": "1"}))


@get("/profile", name="dashboard:profile", dependencies=OWNER, include_in_schema=False)
async def profile_page(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    found = await business_settings.settings_of(db, member)
    return _page(request, dashboard, "dashboard/settings/profile.html",
                 business_settings.form_values(found))  # fmt: skip


@post("/profile", name="dashboard:profile-save", dependencies=OWNER, include_in_schema=False,
      status_code=303)  # fmt: skip
async def profile_save(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await business_settings.change_profile(db, member, data, actor=staff_actor(request, member))
    except ValidationFailed as error:
        return await _refused(request, db, dashboard, member, "dashboard/settings/profile.html",
                              data, error)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:profile", query={"saved": "1"}))


ROUTES = [settings_page, settings_save, profile_page, profile_save]
