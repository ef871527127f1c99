"""Dashboard: the business's clients (issue 14 item 6) — ``GET /dashboard/clients?q=`` (search
by name or phone, paginated), the client card ``GET /dashboard/clients/{client_id}`` (pinned)
and its notes and tags ``POST /dashboard/clients/{client_id}``.

Owners and admins only: a master is refused (403) — a master's own clients come to them with
their bookings, and a client list is the business's, not one master's. What a card shows is
what policy 5.1 allows (app.domain.client_cards decides)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post

from app.domain import client_cards
from app.domain.errors import ValidationFailed
from app.routes.dashboard.render import field_errors, page, see_other
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.params import PathId
from app.routes.rendering import Form
from app.security.dashboard import ADMIN, staff_actor


def _page_number(value: str | None) -> int:
    if value and value.isascii() and value.isdigit() and len(value) <= 6:
        return max(1, int(value))
    return 1


@get("/clients", name="dashboard:clients", dependencies=ADMIN, include_in_schema=False)
async def clients(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    q = request.query_params.get("q") or ""
    found = await client_cards.search(db, member, q, _page_number(request.query_params.get("page")))
    return page(request, dashboard, "dashboard/clients/list.html", found=found)


@get(
    "/clients/{client_id:int}", name="dashboard:client", dependencies=ADMIN,
    include_in_schema=False,
)  # fmt: skip
async def client(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    client_id: PathId,
) -> Response[Any]:
    card = await client_cards.card(db, member, client_id)
    return page(request, dashboard, "dashboard/clients/card.html", card=card, errors={},
                saved=request.query_params.get("saved") == "1")  # fmt: skip


@post(
    "/clients/{client_id:int}", name="dashboard:client-save", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def save(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    client_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await client_cards.update_notes(
            db, member, client_id, notes=data.get("notes"), tags=data.get("tags"),
            actor=staff_actor(request, member),
        )  # fmt: skip
    except ValidationFailed as refused:
        card = await client_cards.card(db, member, client_id)
        return page(request, dashboard, "dashboard/clients/card.html", status=422, card=card,
                    errors=field_errors(refused), typed=data)  # fmt: skip
    url = request.app.route_reverse("dashboard:client", client_id=client_id)
    return see_other(f"{url}?saved=1")


ROUTES = [clients, client, save]
