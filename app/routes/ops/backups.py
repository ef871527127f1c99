"""The last good backup, as operators check it (policy 6.2, 10.5): its time and size, and a
failure since (its message stays in the worker's log: it may name paths)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency

from app.domain import backups
from app.domain.operators import Operator
from app.routes.deps import AppSettings
from app.routes.ops.render import Req, page
from app.security.ops import SUPPORT, OpsViewer


@get("/backups", name="ops:backups", include_in_schema=False, dependencies=SUPPORT)
async def backup_status(
    request: Req, settings: AppSettings, ops: NamedDependency[OpsViewer],
    operator: NamedDependency[Operator],
) -> Response[Any]:  # fmt: skip
    return page(request, ops, "backups.html", status_of=await backups.status(settings))


ROUTES = [backup_status]
