"""``GET /healthz``: 200 when the database and the queue answer, 503 naming what is down.

Answers within about ``HEALTH_TIMEOUT_SECONDS`` (the checks run side by side, each bounded), so
a load balancer learns of an outage at once. A database whose pooled connections are all in
use while the server answers is ``busy``: still 200, for the requests are being served.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from app.routes.deps import DB, AppSettings


@get("/healthz", include_in_schema=False, name="health")
async def healthz(
    request: Request[Any, Any, Any], db: DB, settings: AppSettings
) -> Response[dict[str, str]]:
    timeout_s = settings.health_timeout_s
    queue_check = getattr(request.app.state, "queue_check", None)
    if queue_check is None:  # the queue is this database (or another process's to check)
        database = await db.ping(timeout_s)
        queue = "down" if database == "down" else "ok"
    else:
        database, queue_ok = await asyncio.gather(db.ping(timeout_s), queue_check(timeout_s))
        queue = "ok" if queue_ok else "down"
    up = database != "down" and queue != "down"
    body = {"status": "ok" if up else "down", "database": database, "queue": queue}
    headers = {"Cache-Control": "no-store"}
    if not up:
        headers["Retry-After"] = str(settings.db_retry_after_s)
    return Response(body, status_code=200 if up else 503, headers=headers)
