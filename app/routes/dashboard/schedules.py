"""Dashboard: schedules — weekly hours per master, a different schedule for one date, time off,
the days the whole business is closed, and Kazakhstan's public holidays.

Every member may look (a master sees only their own hours); admins and owners change them, and
a master's change answers 403. ``/schedules`` and ``/closed-days`` are the set-up wizard's
"hours" and "days off" steps: opened with ``?setup=1`` they show the wizard's steps on top, and
every form and redirect keeps the flag."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from babel.dates import get_day_names
from litestar import Request, Response, get, post

from app.domain import schedules
from app.domain.errors import ValidationFailed
from app.domain.members import Member
from app.i18n import get_locale
from app.routes.dashboard.render import field_errors, in_setup, page, see_other, url_in_flow
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.params import PathId
from app.routes.rendering import Form
from app.security.dashboard import ADMIN, ANY_MEMBER, staff_actor


def _weekday_names(width: Literal["wide", "abbreviated"] = "wide") -> list[str]:
    """Monday to Sunday in the user's language, capitalised (Babel: 0 is Monday)."""
    names = get_day_names(width, locale=get_locale())
    return [names[d][:1].upper() + names[d][1:] for d in range(7)]


def _common(request: Request[Any, Any, Any], member: Member) -> dict[str, Any]:
    return {
        "setup": in_setup(request),
        "q": "?setup=1" if in_setup(request) else "",
        "can_edit": member.at_least("admin"),
        "weekday_names": _weekday_names(),
        "weekday_short": _weekday_names("abbreviated"),
        "intervals_a_day": schedules.INTERVALS_A_DAY,
    }


# --- weekly hours -------------------------------------------------------------------------------


@get("/schedules", name="dashboard:schedules", dependencies=ANY_MEMBER, include_in_schema=False)
async def schedules_list(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    """The weekly hours of every master, with a link to edit each."""
    weeks = await schedules.weeks(db, member)
    return page(request, dashboard, "dashboard/schedules/index.html", weeks=weeks,
                **_common(request, member))  # fmt: skip


async def _master_page(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: Member,
    staff_id: PathId,
    *,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response[Any]:
    found = await schedules.master_schedule(db, member, staff_id)
    week_values = values if form == "week" and values is not None else found.week.values()
    return page(
        request, dashboard, "dashboard/schedules/master.html", status=status,
        schedule=found, week_values=week_values, form=form, values=values or {},
        errors=errors or {}, **_common(request, member),
    )  # fmt: skip


@get(
    "/schedules/{staff_id:int}", name="dashboard:schedule", dependencies=ANY_MEMBER,
    include_in_schema=False,
)  # fmt: skip
async def schedule_show(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    staff_id: PathId,
) -> Response[Any]:
    return await _master_page(request, db, dashboard, member, staff_id)


@post(
    "/schedules/{staff_id:int}", name="dashboard:schedule-week", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def schedule_week(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    staff_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Save a master's weekly hours; the "copy Monday" button gives Tuesday–Friday Monday's,
    "for every master" saves them for the whole team."""
    try:
        await schedules.set_week(db, member, staff_id, data, actor=staff_actor(request, member),
                                 copy_monday="copy_monday" in data,
                                 everyone="everyone" in data)  # fmt: skip
    except ValidationFailed as error:
        return await _master_page(request, db, dashboard, member, staff_id, form="week",
                                  values=data, errors=field_errors(error), status=error.status)  # fmt: skip
    if "copy_monday" in data:  # stay to check the copy
        return see_other(url_in_flow(request, "dashboard:schedule", staff_id=staff_id))
    return see_other(url_in_flow(request, "dashboard:schedules"))


@post(
    "/schedules/{staff_id:int}/dates", name="dashboard:schedule-date-add", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def schedule_date_add(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    staff_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """A different schedule (a day off or other hours) for one master on one date."""
    try:
        await schedules.set_date(db, member, staff_id, data, actor=staff_actor(request, member))
    except ValidationFailed as error:
        return await _master_page(request, db, dashboard, member, staff_id, form="date",
                                  values=data, errors=field_errors(error), status=error.status)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:schedule", staff_id=staff_id))


@post(
    "/schedules/dates/{override_id:int}/delete", name="dashboard:schedule-date-remove",
    dependencies=ADMIN, include_in_schema=False, status_code=303,
)  # fmt: skip
async def schedule_date_remove(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, override_id: PathId
) -> Response[Any]:
    staff_id = await schedules.remove_date(
        db, member, override_id, actor=staff_actor(request, member)
    )
    if staff_id is None:
        return see_other(url_in_flow(request, "dashboard:closed-days"))
    return see_other(url_in_flow(request, "dashboard:schedule", staff_id=staff_id))


@post(
    "/schedules/{staff_id:int}/time-off", name="dashboard:time-off-add", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def time_off_add(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    staff_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await schedules.add_time_off(db, member, staff_id, data, actor=staff_actor(request, member))
    except ValidationFailed as error:
        return await _master_page(request, db, dashboard, member, staff_id, form="time_off",
                                  values=data, errors=field_errors(error), status=error.status)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:schedule", staff_id=staff_id))


@post(
    "/schedules/time-off/{time_off_id:int}/delete", name="dashboard:time-off-remove",
    dependencies=ADMIN, include_in_schema=False, status_code=303,
)  # fmt: skip
async def time_off_remove(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, time_off_id: PathId
) -> Response[Any]:
    staff_id = await schedules.remove_time_off(db, member, time_off_id,
                                               actor=staff_actor(request, member))  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:schedule", staff_id=staff_id))


# --- the whole business ----------------------------------------------------------------------


async def _closed_page(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: Member,
    *,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response[Any]:
    found = await schedules.business_calendar(db, member)
    return page(
        request, dashboard, "dashboard/schedules/closed_days.html", status=status,
        calendar=found, form=form, values=values or {}, errors=errors or {},
        **_common(request, member),
    )  # fmt: skip


@get(
    "/closed-days", name="dashboard:closed-days", dependencies=ANY_MEMBER,
    include_in_schema=False,
)  # fmt: skip
async def closed_days(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    """Days the business is closed, its special dates, and the public holidays ahead."""
    return await _closed_page(request, db, dashboard, member)


@post(
    "/closed-days", name="dashboard:closed-day-add", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def closed_day_add(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await schedules.add_closed_day(db, member, data, actor=staff_actor(request, member))
    except ValidationFailed as error:
        return await _closed_page(request, db, dashboard, member, form="closed", values=data,
                                  errors=field_errors(error), status=error.status)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:closed-days"))


@post(
    "/closed-days/{holiday_id:int}/delete", name="dashboard:closed-day-remove",
    dependencies=ADMIN, include_in_schema=False, status_code=303,
)  # fmt: skip
async def closed_day_remove(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, holiday_id: PathId
) -> Response[Any]:
    await schedules.remove_closed_day(db, member, holiday_id, actor=staff_actor(request, member))
    return see_other(url_in_flow(request, "dashboard:closed-days"))


@post(
    "/closed-days/dates", name="dashboard:business-date-add", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def business_date_add(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    """Other hours for the whole business on one date (a short day before New Year, say)."""
    try:
        await schedules.set_date(db, member, None, data, actor=staff_actor(request, member))
    except ValidationFailed as error:
        return await _closed_page(request, db, dashboard, member, form="date", values=data,
                                  errors=field_errors(error), status=error.status)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:closed-days"))


@post(
    "/closed-days/public-holidays", name="dashboard:public-holidays", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def public_holidays_switch(
    request: Request[Any, Any, Any], db: DB, member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:  # fmt: skip
    """Observe Kazakhstan's public holidays (``observe=1``) or not (``observe=0``)."""
    on = data.get("observe") == "1"
    await schedules.observe_public_holidays(db, member, on, actor=staff_actor(request, member))
    return see_other(url_in_flow(request, "dashboard:closed-days"))


ROUTES = [
    schedules_list,
    schedule_show,
    schedule_week,
    schedule_date_add,
    schedule_date_remove,
    time_off_add,
    time_off_remove,
    closed_days,
    closed_day_add,
    closed_day_remove,
    business_date_add,
    public_holidays_switch,
]
