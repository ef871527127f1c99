"""Lawful disclosures (policy 5.4): the record of what went to an authority, and the file."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Response, get, post
from litestar.di import NamedDependency

from app.domain import operators
from app.domain.errors import ValidationFailed
from app.domain.operators import Operator
from app.routes.deps import DB
from app.routes.ops.render import Req, errors_of, page
from app.routes.rendering import Form
from app.security.ops import PRIVACY, OpsViewer
from app.security.web import actor_of

FormData = Annotated[dict[str, str], Form]


@get("/disclosures/new", name="ops:disclosure-new", include_in_schema=False, dependencies=PRIVACY)
async def disclosure_new(
    request: Req, ops: NamedDependency[OpsViewer], operator: NamedDependency[Operator]
) -> Response[Any]:
    return page(request, ops, "disclosure_new.html", form={}, errors={})


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


@post("/disclosures", name="ops:disclose", include_in_schema=False, status_code=200,
      dependencies=PRIVACY)  # fmt: skip
async def disclose(
    request: Req, db: DB, ops: NamedDependency[OpsViewer], operator: NamedDependency[Operator],
    data: FormData,
) -> Response[Any]:  # fmt: skip
    """Records the disclosure and answers with the file to hand over (a ZIP of the person's
    data, made by the export; its sha256 is on the record)."""
    disclosed_on = _date(data.get("disclosed_on", ""))
    try:
        if disclosed_on is None:
            raise ValidationFailed(fields={"disclosed_on": "The date (YYYY-MM-DD)."})
        made = await operators.disclose(
            db, operator,
            operators.Disclosure(
                contact=data.get("contact", ""), authority=data.get("authority", ""),
                legal_basis=data.get("legal_basis", ""), reference=data.get("reference", ""),
                data_given=data.get("data_given", ""), disclosed_on=disclosed_on,
                withheld=data.get("withheld") == "1",
                withheld_reason=data.get("withheld_reason", ""),
            ),
            actor=actor_of(request, operator.account_id, "operator"),
        )  # fmt: skip
    except ValidationFailed as refused:
        return page(request, ops, "disclosure_new.html", status=422, form=data,
                    errors=errors_of(refused))  # fmt: skip
    return Response(
        made.content,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{made.filename}"',
            "Cache-Control": "no-store",
            "X-Content-SHA256": made.sha256,
        },
    )


ROUTES = [disclosure_new, disclose]
