"""``GET /healthz``: 200 when the database and the queue answer, 503 naming what is down.

Answers within about ``HEALTH_TIMEOUT_SECONDS`` (the checks run side by side, each bounded), so
a load balancer learns of an outage at once. A database whose pooled connections are all in
use while the server answers is ``busy``: still 200, for the requests are being served.

``/healthz?details=1`` adds ``details.backup``: the last good backup's time and size and the
time of a later failure (its message stays in the worker's log and `pozapisi backup list`:
it may name paths), or ``null`` when backups are not configured. The plain answer is the
pinned one, for load balancers.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import QueryParameter

from app.domain import backups
from app.routes.deps import DB, AppSettings


def _backup_details(status: backups.BackupStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    good, failure = status.last_good, status.last_failure
    return {
        "last_good_at": good.created_at.isoformat() if good else None,
        "last_good_size": good.size if good else None,
        "last_failure_at": failure.at.isoformat() if failure else None,
    }


@get("/healthz", include_in_schema=False, name="health")
async def healthz(
    request: Request[Any, Any, Any],
    db: DB,
    settings: AppSettings,
    details: Annotated[bool, QueryParameter()] = False,
) -> Response[dict[str, Any]]:
    timeout_s = settings.health_timeout_s
    queue_check = getattr(request.app.state, "queue_check", None)
    if queue_check is None:  # the queue is this database (or another process's to check)
        database = await db.ping(timeout_s)
        queue = "down" if database == "down" else "ok"
    else:
        database, queue_ok = await asyncio.gather(db.ping(timeout_s), queue_check(timeout_s))
        queue = "ok" if queue_ok else "down"
    up = database != "down" and queue != "down"
    body: dict[str, Any] = {"status": "ok" if up else "down", "database": database, "queue": queue}
    if details:
        body["details"] = {"backup": _backup_details(await backups.status(settings))}
    headers = {"Cache-Control": "no-store"}
    if not up:
        headers["Retry-After"] = str(settings.db_retry_after_s)
    return Response(body, status_code=200 if up else 503, headers=headers)
