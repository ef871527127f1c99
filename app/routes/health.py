"""``GET /healthz``: 200 when the database and the queue answer, 503 naming what is down."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from app.routes.deps import DB


@get("/healthz", include_in_schema=False, name="health")
async def healthz(request: Request[Any, Any, Any], db: DB) -> Response[dict[str, str]]:
    checks = {"database": await db.ping()}
    queue_check = getattr(request.app.state, "queue_check", None)
    checks["queue"] = await queue_check() if queue_check else checks["database"]
    body = {"status": "ok" if all(checks.values()) else "down"}
    body.update({name: "ok" if ok else "down" for name, ok in checks.items()})
    return Response(
        body,
        status_code=200 if all(checks.values()) else 503,
        headers={"Cache-Control": "no-store"},
    )
