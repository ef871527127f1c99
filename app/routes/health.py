"""``GET /healthz``: 200 when the database and the queue answer, 503 naming what is down."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from sqlalchemy import text

from app.routes.deps import DB


async def _database_ok(db: DB) -> bool:
    try:
        async with asyncio.timeout(3), db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@get("/healthz", include_in_schema=False)
async def healthz(request: Request[Any, Any, Any], db: DB) -> Response[dict[str, str]]:
    checks = {"database": await _database_ok(db)}
    queue_check = getattr(request.app.state, "queue_check", None)
    checks["queue"] = await queue_check() if queue_check else checks["database"]
    body = {"status": "ok" if all(checks.values()) else "down"}
    body.update({name: "ok" if ok else "down" for name, ok in checks.items()})
    return Response(
        body,
        status_code=200 if all(checks.values()) else 503,
        headers={"Cache-Control": "no-store"},
    )
