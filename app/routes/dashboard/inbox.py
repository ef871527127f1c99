"""Dashboard: the inbox (issue 14 item 7) — ``GET /dashboard/inbox``, every client thread with
its unread count and last message; ``GET /dashboard/inbox/{client_id}``, one thread (reading
marks nothing: GET never writes); ``POST …/read`` marks the client's messages read (the page
sends it by itself once shown, or the button does); ``POST /dashboard/inbox/{client_id}``
replies — the client is told through the outbox (app.domain.client_cards.reply).

Owners and admins only, like the client cards (a master gets 403)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post

from app.domain import client_cards
from app.domain.errors import ValidationFailed
from app.routes.dashboard.render import field_errors, page, see_other
from app.routes.deps import DB, ActingMember, SignedInDashboard
from app.routes.params import PathId
from app.routes.rendering import Form
from app.security.dashboard import ADMIN


@get("/inbox", name="dashboard:inbox", dependencies=ADMIN, include_in_schema=False)
async def inbox(
    request: Request[Any, Any, Any], db: DB, dashboard: SignedInDashboard, member: ActingMember
) -> Response[Any]:
    threads = await client_cards.inbox(db, member)
    return page(request, dashboard, "dashboard/inbox/list.html", threads=threads)


@get(
    "/inbox/{client_id:int}", name="dashboard:thread", dependencies=ADMIN,
    include_in_schema=False,
)  # fmt: skip
async def thread(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    client_id: PathId,
) -> Response[Any]:
    card, unread = await client_cards.thread(db, member, client_id)
    return page(request, dashboard, "dashboard/inbox/thread.html", card=card, unread=unread,
                errors={}, typed={})  # fmt: skip


@post(
    "/inbox/{client_id:int}/read", name="dashboard:thread-read", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def mark_read(
    request: Request[Any, Any, Any], db: DB, member: ActingMember, client_id: PathId
) -> Response[Any]:
    await client_cards.mark_read(db, member, client_id)
    if request.headers.get("hx-request") == "true":
        return Response(content="", status_code=204)
    return see_other(request.app.route_reverse("dashboard:thread", client_id=client_id))


@post(
    "/inbox/{client_id:int}", name="dashboard:thread-reply", dependencies=ADMIN,
    include_in_schema=False, status_code=303,
)  # fmt: skip
async def reply(
    request: Request[Any, Any, Any],
    db: DB,
    dashboard: SignedInDashboard,
    member: ActingMember,
    client_id: PathId,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    try:
        await client_cards.reply(db, member, client_id, body=data.get("body") or "")
    except ValidationFailed as refused:
        card, unread = await client_cards.thread(db, member, client_id)
        return page(request, dashboard, "dashboard/inbox/thread.html", status=422, card=card,
                    unread=unread, errors=field_errors(refused), typed=data)  # fmt: skip
    url = request.app.route_reverse("dashboard:thread", client_id=client_id)
    return see_other(f"{url}?sent=1")


ROUTES = [inbox, thread, mark_read, reply]
