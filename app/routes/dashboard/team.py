"""Dashboard: the team — members and their roles, invitations, ownership (the owner only) —
and the invitation link a new member follows (``/dashboard/invite/{token:str}``), before they are
anyone's member.

Each handler makes one call to :mod:`app.domain.team`; a refusal of the owner's forms shows the
team page again with the message beside its field (422), and a refusal of a link (used,
withdrawn, expired: 410; unknown: 404) the dashboard's error page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from litestar import Request, Response, get, post

from app.domain import team
from app.domain.errors import DomainError, ValidationFailed
from app.i18n import N_, get_locale, gettext
from app.routes.dashboard.render import field_errors, page, see_other
from app.routes.deps import DB, ActingMember, AppSettings, MaybeDashboard, SignedInDashboard
from app.routes.params import LinkToken, PathId
from app.routes.rendering import Form
from app.security import dashboard as dash
from app.security.dashboard import OWNER, staff_actor
from app.security.web import actor_of
from app.settings import Settings


def _link_for(request: Request[Any, Any, Any], settings: Settings) -> Callable[[str], str]:
    """The absolute address of an invitation link (it leaves the app by e-mail or SMS)."""
    base = settings.public_base_url.rstrip("/")
    return lambda token: base + request.app.route_reverse("dashboard:invitation", token=token)


def _team_url(request: Request[Any, Any, Any]) -> str:
    return str(request.app.route_reverse("dashboard:team"))


async def _team_page(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    failed: str | None = None,
) -> Response[Any]:
    return page(
        request,
        dashboard,
        "dashboard/team/index.html",
        status=status,
        team=await team.team_of(db, member),
        errors=errors or {},
        values=values or {},
        failed=failed,  # which form the errors belong to
    )


@get("/team", name="dashboard:team", dependencies=OWNER, include_in_schema=False)
async def team_page(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    return await _team_page(request, db, dashboard, member)


async def _act(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    action: Any,
    *,
    failed: str,
    values: dict[str, str] | None = None,
) -> Response[Any]:
    """Run a team change; its refusal shows the team page again with the messages."""
    try:
        await action
    except ValidationFailed as error:
        return await _team_page(
            request, db, dashboard, member, status=error.status, errors=field_errors(error),
            values=values, failed=failed,
        )  # fmt: skip
    return see_other(_team_url(request))


@post(
    "/team/invitations", name="dashboard:team-invite", dependencies=OWNER,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def invite(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    values = {k: data.get(k, "") for k in ("contact", "role", "staff_id")}
    action = team.invite(
        db, member, staff_actor(request, member), contact=values["contact"],
        role=values["role"], staff_id=values["staff_id"], link_for=_link_for(request, settings),
    )  # fmt: skip
    return await _act(request, db, dashboard, member, action, failed="invite", values=values)


@post(
    "/team/invitations/{invitation_id:int}/resend", name="dashboard:team-invitation-resend",
    dependencies=OWNER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def resend_invitation(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    dashboard: SignedInDashboard,
    member: ActingMember,
    invitation_id: PathId,
) -> Response[Any]:
    await team.resend_invitation(
        db, member, staff_actor(request, member), invitation_id,
        link_for=_link_for(request, settings),
    )  # fmt: skip
    return see_other(_team_url(request))


@post(
    "/team/invitations/{invitation_id:int}/revoke", name="dashboard:team-invitation-revoke",
    dependencies=OWNER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def revoke_invitation(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, invitation_id: PathId
) -> Response[Any]:
    await team.revoke_invitation(db, member, staff_actor(request, member), invitation_id)
    return see_other(_team_url(request))


@post(
    "/team/members/{member_id:int}/role", name="dashboard:team-member-role",
    dependencies=OWNER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def change_role(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    member_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    action = team.change_role(
        db, member, staff_actor(request, member), member_id, data.get("role", "")
    )
    return await _act(request, db, dashboard, member, action, failed=f"member-{member_id}")


@post(
    "/team/members/{member_id:int}/staff", name="dashboard:team-member-staff",
    dependencies=OWNER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def link_staff(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    member_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    action = team.link_staff(
        db, member, staff_actor(request, member), member_id,
        data.get("staff_id", ""),
    )  # fmt: skip
    return await _act(request, db, dashboard, member, action, failed=f"member-{member_id}")


def _confirmed(data: dict[str, str]) -> None:
    """Removing someone and handing the business over are asked twice: a ticked box."""
    if data.get("confirm") != "yes":
        raise ValidationFailed(fields={"confirm": gettext(N_("Tick the box to confirm."))})


@post(
    "/team/members/{member_id:int}/remove", name="dashboard:team-member-remove",
    dependencies=OWNER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def remove_member(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    member_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        _confirmed(data)
        await team.remove_member(db, member, staff_actor(request, member), member_id)
    except ValidationFailed as error:
        return await _team_page(
            request, db, dashboard, member, status=error.status, errors=field_errors(error),
            failed=f"remove-{member_id}",
        )  # fmt: skip
    return see_other(_team_url(request))


@post(
    "/team/members/{member_id:int}/owner", name="dashboard:team-transfer",
    dependencies=OWNER, include_in_schema=False, status_code=303,
)  # fmt: skip
async def transfer_ownership(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    member_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        _confirmed(data)
        await team.transfer_ownership(db, member, staff_actor(request, member), member_id)
    except ValidationFailed as error:
        return await _team_page(
            request, db, dashboard, member, status=error.status, errors=field_errors(error),
            failed=f"owner-{member_id}",
        )  # fmt: skip
    # no longer the owner: the team page would refuse them
    return see_other(request.app.route_reverse("dashboard:home"))


# --- the link a new member follows ----------------------------------------------------------


@get("/invite/{token:str}", name="dashboard:invitation", include_in_schema=False)
async def invitation_page(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    maybe_dashboard: MaybeDashboard,
    token: LinkToken,
) -> Response[Any]:
    """What the link invites to, and how to join (GET never writes)."""
    invitation = await team.invitation_preview(db, token)
    return _invitation_page(request, settings, maybe_dashboard, token, invitation)


def _invitation_page(
    request: Request[Any, Any, Any],
    settings: Settings,
    viewer: dash.Dashboard | None,
    token: LinkToken,
    invitation: team.InvitationPreview,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    name: str = "",
) -> Response[Any]:
    here = request.app.route_reverse("dashboard:invitation", token=token)
    return page(
        request, viewer, "dashboard/team/invitation.html", status=status, settings=settings,
        invitation=invitation, token=token, errors=errors or {}, name=name, here=here,
    )  # fmt: skip


@post(
    "/invite/{token:str}", name="dashboard:invitation-accept", include_in_schema=False,
    status_code=303,
)  # fmt: skip
async def accept_as_new(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    token: LinkToken,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Join with a new account: a name, and a password for an e-mail invitation."""
    await dash.check_pre_session(request, settings)
    name = data.get("name", "")
    try:
        joined = await team.accept_invitation(
            db, token, actor_of(request, None, "staff"), name=name,
            password=data.get("password", ""), locale=get_locale(),
        )  # fmt: skip
    except ValidationFailed as error:
        invitation = await team.invitation_preview(db, token)
        return _invitation_page(
            request, settings, None, token, invitation, status=error.status,
            errors=field_errors(error), name=name,
        )  # fmt: skip
    await dash.start(db, request, settings, joined.account_id, business_id=joined.business_id)
    return see_other(request.app.route_reverse("dashboard:home"))


@post(
    "/invite/{token:str}/join", name="dashboard:invitation-join", include_in_schema=False,
    status_code=303,
)  # fmt: skip
async def join_signed_in(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    dashboard: SignedInDashboard,
    token: LinkToken,
) -> Response[Any]:
    """The signed-in person joins as themselves, and works in the new business from now on."""
    try:
        joined = await team.accept_invitation(
            db, token, actor_of(request, dashboard.account.id, "staff"),
            account_id=dashboard.account.id,
        )  # fmt: skip
    except DomainError as error:
        if isinstance(error, team.TeamConflict | ValidationFailed):
            invitation = await team.invitation_preview(db, token)
            return _invitation_page(
                request, settings, dashboard, token, invitation, status=error.status,
                errors=field_errors(error),
            )  # fmt: skip
        raise
    refreshed = await dash.current(db, request, settings)  # now with the new workplace
    if refreshed is not None:
        await dash.choose(db, refreshed, joined.business_id)
    return see_other(request.app.route_reverse("dashboard:home"))


ROUTES = [
    team_page,
    invite,
    resend_invitation,
    revoke_invitation,
    change_role,
    link_staff,
    remove_member,
    transfer_ownership,
    invitation_page,
    accept_as_new,
    join_signed_in,
]
