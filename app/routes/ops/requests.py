"""The queue of data-subject requests (policy 8.6), one request, logging one that came by
e-mail, call or letter, and answering it. What a person wrote is read only with a reason."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Response, get, post
from litestar.di import NamedDependency

from app.domain import data_requests, operators
from app.domain.errors import ValidationFailed
from app.domain.operators import Operator
from app.routes.deps import DB
from app.routes.ops.render import Req, errors_of, page, see_other
from app.routes.params import PathId
from app.routes.rendering import Form
from app.security.ops import SUPPORT, OpsViewer
from app.security.web import actor_of

FormData = Annotated[dict[str, str], Form]
Ops = NamedDependency[OpsViewer]
Acting = NamedDependency[Operator]
CHOICES: dict[str, Any] = {"kinds": data_requests.KINDS, "channels": data_requests.CHANNELS,
           "statuses": data_requests.STATUSES}  # fmt: skip


@get("/", name="ops:queue", include_in_schema=False, dependencies=SUPPORT)
async def queue(request: Req, db: DB, ops: Ops, operator: Acting) -> Response[Any]:
    """Requests by due date; overdue and due-soon ones flagged; ``?all=1`` shows closed ones."""
    everything = request.query_params.get("all") == "1"
    items = await operators.queue(db, operator, include_closed=everything)
    return page(request, ops, "queue.html", items=items, everything=everything)


@get("/requests/new", name="ops:request-new", include_in_schema=False, dependencies=SUPPORT)
async def request_new(request: Req, ops: Ops, operator: Acting) -> Response[Any]:
    return page(request, ops, "request_new.html", form={}, errors={}, **CHOICES)


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


@post("/requests", name="ops:request-log", include_in_schema=False, status_code=303,
      dependencies=SUPPORT)  # fmt: skip
async def request_log(
    request: Req, db: DB, ops: Ops, operator: Acting, data: FormData
) -> Response[Any]:
    received = _date(data.get("received_on", ""))
    try:
        if received is None:
            raise ValidationFailed(fields={"received_on": "The date it arrived (YYYY-MM-DD)."})
        form = operators.LoggedRequest(
            kind=data.get("kind", ""), channel=data.get("channel", ""), received_on=received,
            requester=data.get("requester", ""), contact=data.get("contact", ""),
            details=data.get("details", ""),
        )  # fmt: skip
        request_id = await operators.log_request(
            db, operator, form, actor=actor_of(request, operator.account_id, "operator")
        )
    except ValidationFailed as refused:
        return page(request, ops, "request_new.html", status=422, form=data,
                    errors=errors_of(refused), **CHOICES)  # fmt: skip
    return see_other(request.app.route_reverse("ops:request", request_id=request_id))


@get("/requests/{request_id:int}", name="ops:request", include_in_schema=False,
     dependencies=SUPPORT)  # fmt: skip
async def request_page(
    request: Req, db: DB, ops: Ops, operator: Acting, request_id: PathId
) -> Response[Any]:
    """The request without what the person wrote, and the form that asks why it is opened."""
    summary = await operators.request_summary(db, operator, request_id)
    return page(request, ops, "request.html", summary=summary, errors={})


@post("/requests/{request_id:int}/read", name="ops:request-read", include_in_schema=False,
      status_code=200, dependencies=SUPPORT)  # fmt: skip
async def request_read(
    request: Req, db: DB, ops: Ops, operator: Acting, request_id: PathId, data: FormData
) -> Response[Any]:
    try:
        found = await operators.read_request(
            db, operator, request_id, reason=data.get("reason", ""),
            actor=actor_of(request, operator.account_id, "operator"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return page(request, ops, "request.html", status=422, summary={"id": request_id},
                    errors=errors_of(refused))  # fmt: skip
    return page(request, ops, "request_read.html", found=found, errors={}, **CHOICES)


@post("/requests/{request_id:int}/answer", name="ops:request-answer", include_in_schema=False,
      status_code=303, dependencies=SUPPORT)  # fmt: skip
async def request_answer(
    request: Req, db: DB, ops: Ops, operator: Acting, request_id: PathId, data: FormData
) -> Response[Any]:
    try:
        await operators.answer_request(
            db, operator, request_id, status=data.get("status", ""),
            answer=data.get("answer", ""), send=data.get("send") == "1",
            actor=actor_of(request, operator.account_id, "operator"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return page(request, ops, "error.html", status=422,
                    message="; ".join(errors_of(refused).values()))  # fmt: skip
    return see_other(request.app.route_reverse("ops:request", request_id=request_id))


ROUTES = [queue, request_new, request_log, request_page, request_read, request_answer]
