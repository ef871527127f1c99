"""A person's data, found by e-mail or phone, read only with a stated reason (policy 6.3)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, get, post
from litestar.di import NamedDependency

from app.domain import operators
from app.domain.errors import NotFound, ValidationFailed
from app.domain.operators import Operator
from app.routes.deps import DB
from app.routes.ops.render import Req, errors_of, page
from app.routes.rendering import Form
from app.security.ops import SUPPORT, OpsViewer
from app.security.web import actor_of

FormData = Annotated[dict[str, str], Form]


@get("/people", name="ops:people", include_in_schema=False, dependencies=SUPPORT)
async def lookup(
    request: Req, ops: NamedDependency[OpsViewer], operator: NamedDependency[Operator]
) -> Response[Any]:
    return page(request, ops, "people.html", form={}, errors={}, person=None)


@post("/people", name="ops:person-read", include_in_schema=False, status_code=200,
      dependencies=SUPPORT)  # fmt: skip
async def person_read(
    request: Req, db: DB, ops: NamedDependency[OpsViewer], operator: NamedDependency[Operator],
    data: FormData,
) -> Response[Any]:  # fmt: skip
    """The read happens, and is audited with its reason, only when a reason is given."""
    try:
        person = await operators.read_person(
            db, operator, query=data.get("query", ""), reason=data.get("reason", ""),
            actor=actor_of(request, operator.account_id, "operator"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return page(request, ops, "people.html", status=422, form=data,
                    errors=errors_of(refused), person=None)  # fmt: skip
    except NotFound:
        return page(request, ops, "people.html", status=404, form=data, person=None,
                    errors={"query": "Nobody has this e-mail or phone."})  # fmt: skip
    return page(request, ops, "people.html", form={}, errors={}, person=person)


ROUTES = [lookup, person_read]
