"""Dashboard: the catalog — services and masters, who does what, in which order.

Admins and owners change it; a master may look at both lists (read-only: no buttons, and every
change answers 403). Each list takes ``?setup=1``: then it is a step of the setup wizard, shows
the wizard's steps on top, and every form and redirect keeps the flag so the owner stays in it.
Reordering posts to the server; htmx swaps the list in place (``hx-select`` of the page the
redirect leads to), and without script the redirect shows the list again."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NoRouteMatchFoundException

from app.domain import offering
from app.domain.errors import ValidationFailed
from app.routes.dashboard.render import field_errors, in_setup, page, see_other, url_in_flow
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.params import PathId
from app.routes.rendering import Form
from app.security.dashboard import ADMIN, ANY_MEMBER, staff_actor

PHOTO_MAX_AGE_S = 86_400  # the URL carries the photo's digest, so a new photo is a new URL

ServiceId = PathId
StaffId = PathId


async def _master_form_data(request: Request[Any, Any, Any]) -> tuple[dict[str, str], bytes | None]:
    """A master form's text fields, and the chosen photo's bytes (None when the file field was
    left empty). Read from the request itself, so the form is taken multipart (as the page
    sends it, with a photo) or url-encoded alike, and only after the guard has let it in."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get(offering.PHOTO_FIELD)
    if isinstance(upload, UploadFile) and upload.filename:
        return fields, await upload.read()
    return fields, None


# --- services ---------------------------------------------------------------------------------


@get("/services", name="dashboard:services", dependencies=ANY_MEMBER, include_in_schema=False)
async def services_list(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    found = await offering.services(db, member)
    return page(request, dashboard, "dashboard/catalog/services.html", catalog=found,
                setup=in_setup(request), can_edit=member.at_least("admin"))  # fmt: skip


def _service_form(
    request: Request[Any, Any, Any],
    dashboard: Any,
    editor: offering.Editor,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response[Any]:
    return page(
        request, dashboard, "dashboard/catalog/service_form.html", status=status,
        editor=editor, values=values if values is not None else editor.values,
        errors=errors or {}, setup=in_setup(request),
    )  # fmt: skip


@get("/services/new", name="dashboard:service-new", dependencies=ADMIN, include_in_schema=False)
async def service_new(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    return _service_form(request, dashboard, await offering.service_editor(db, member))


@post(
    "/services", name="dashboard:service-create", dependencies=ADMIN, include_in_schema=False,
    status_code=303,
)  # fmt: skip
async def service_create(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await offering.add_service(db, member, data, actor=staff_actor(request, member))
    except ValidationFailed as error:
        editor = await offering.service_editor(db, member)
        return _service_form(request, dashboard, editor, values=data,
                             errors=field_errors(error), status=error.status)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:services"))


@get(
    "/services/{service_id:int}", name="dashboard:service-edit", dependencies=ADMIN,
    include_in_schema=False,
)  # fmt: skip
async def service_edit(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    service_id: ServiceId,
) -> Response[Any]:
    return _service_form(request, dashboard, await offering.service_editor(db, member, service_id))


@post(
    "/services/{service_id:int}", name="dashboard:service-update", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def service_update(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    service_id: ServiceId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await offering.edit_service(
            db, member, service_id, data, actor=staff_actor(request, member)
        )
    except ValidationFailed as error:
        editor = await offering.service_editor(db, member, service_id)
        return _service_form(request, dashboard, editor, values=data,
                             errors=field_errors(error), status=error.status)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:services"))


@post(
    "/services/{service_id:int}/move", name="dashboard:service-move", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def service_move(
    request: Request[Any, Any, Any],
    db: DB,
    member: ActingMember,
    service_id: ServiceId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    direction = data.get("direction", "")
    await offering.move_service(
        db, member, service_id, direction, actor=staff_actor(request, member)
    )
    return see_other(url_in_flow(request, "dashboard:services"))


@post(
    "/services/{service_id:int}/archive", name="dashboard:service-archive", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def service_archive(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, service_id: ServiceId
) -> Response[Any]:
    await offering.archive_service(db, member, service_id, actor=staff_actor(request, member))
    return see_other(url_in_flow(request, "dashboard:services"))


@post(
    "/services/{service_id:int}/restore", name="dashboard:service-restore", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def service_restore(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, service_id: ServiceId
) -> Response[Any]:
    await offering.restore_service(db, member, service_id, actor=staff_actor(request, member))
    return see_other(url_in_flow(request, "dashboard:services"))


# --- masters ----------------------------------------------------------------------------------


@get("/masters", name="dashboard:masters", dependencies=ANY_MEMBER, include_in_schema=False)
async def masters_list(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    found = await offering.masters(db, member)
    return page(request, dashboard, "dashboard/catalog/masters.html", catalog=found,
                setup=in_setup(request), can_edit=member.at_least("admin"),
                schedules=_schedules_url(request))  # fmt: skip


def _schedules_url(request: Request[Any, Any, Any]) -> str | None:
    """The weekly hours page, once the schedules part has one."""
    try:
        return request.app.route_reverse("dashboard:schedules")
    except NoRouteMatchFoundException:  # not built yet
        return None


def _master_form(
    request: Request[Any, Any, Any],
    dashboard: Any,
    editor: offering.Editor,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response[Any]:
    return page(
        request, dashboard, "dashboard/catalog/master_form.html", status=status,
        editor=editor, values=values if values is not None else editor.values,
        errors=errors or {}, setup=in_setup(request),
    )  # fmt: skip


@get("/masters/new", name="dashboard:master-new", dependencies=ADMIN, include_in_schema=False)
async def master_new(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    return _master_form(request, dashboard, await offering.master_editor(db, member))


@post(
    "/masters", name="dashboard:master-create", dependencies=ADMIN, include_in_schema=False,
    status_code=303,
)  # fmt: skip
async def master_create(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
) -> Response[Any]:
    fields, photo = await _master_form_data(request)
    try:
        await offering.add_master(db, member, fields, photo, actor=staff_actor(request, member))
    except ValidationFailed as error:
        editor = await offering.master_editor(db, member)
        return _master_form(request, dashboard, editor, values=fields,
                            errors=field_errors(error), status=error.status)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:masters"))


@get(
    "/masters/{staff_id:int}", name="dashboard:master-edit", dependencies=ADMIN,
    include_in_schema=False,
)  # fmt: skip
async def master_edit(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    staff_id: StaffId,
) -> Response[Any]:
    return _master_form(request, dashboard, await offering.master_editor(db, member, staff_id))


@post(
    "/masters/{staff_id:int}", name="dashboard:master-update", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def master_update(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    staff_id: StaffId,
) -> Response[Any]:
    fields, photo = await _master_form_data(request)
    try:
        await offering.edit_master(db, member, staff_id, fields, photo,
                                   actor=staff_actor(request, member))  # fmt: skip
    except ValidationFailed as error:
        editor = await offering.master_editor(db, member, staff_id)
        return _master_form(request, dashboard, editor, values=fields,
                            errors=field_errors(error), status=error.status)  # fmt: skip
    return see_other(url_in_flow(request, "dashboard:masters"))


@get(
    "/masters/{staff_id:int}/photo", name="dashboard:master-photo", dependencies=ANY_MEMBER,
    include_in_schema=False,
)  # fmt: skip
async def master_photo(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, staff_id: StaffId
) -> Response[Any]:
    """The master's photo. The lists link it with its digest (``?v=``), so it may be kept a
    day; ``private``: it is served to signed-in members only."""
    photo = await offering.master_photo(db, member, staff_id)
    if photo is None:
        return Response(b"", status_code=404, headers={"Cache-Control": "no-store"})
    etag = f'"{offering.photo_version(photo)}"'
    headers = {
        "Cache-Control": f"private, max-age={PHOTO_MAX_AGE_S}",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(photo, media_type="image/webp", headers=headers)


@post(
    "/masters/{staff_id:int}/photo/delete", name="dashboard:master-photo-delete",
    dependencies=ADMIN, include_in_schema=False, status_code=303,
)  # fmt: skip
async def master_photo_delete(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, staff_id: StaffId
) -> Response[Any]:
    await offering.remove_master_photo(db, member, staff_id, actor=staff_actor(request, member))
    return see_other(url_in_flow(request, "dashboard:master-edit", staff_id=staff_id))


@post(
    "/masters/{staff_id:int}/move", name="dashboard:master-move", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def master_move(
    request: Request[Any, Any, Any],
    db: DB,
    member: ActingMember,
    staff_id: StaffId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    direction = data.get("direction", "")
    await offering.move_master(db, member, staff_id, direction, actor=staff_actor(request, member))
    return see_other(url_in_flow(request, "dashboard:masters"))


@post(
    "/masters/{staff_id:int}/archive", name="dashboard:master-archive", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def master_archive(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, staff_id: StaffId
) -> Response[Any]:
    await offering.archive_master(db, member, staff_id, actor=staff_actor(request, member))
    return see_other(url_in_flow(request, "dashboard:masters"))


@post(
    "/masters/{staff_id:int}/restore", name="dashboard:master-restore", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def master_restore(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, staff_id: StaffId
) -> Response[Any]:
    await offering.restore_master(db, member, staff_id, actor=staff_actor(request, member))
    return see_other(url_in_flow(request, "dashboard:masters"))


ROUTES = [
    services_list, service_new, service_create, service_edit, service_update, service_move,
    service_archive, service_restore,
    masters_list, master_new, master_create, master_edit, master_update, master_photo,
    master_photo_delete, master_move, master_archive, master_restore,
]  # fmt: skip
