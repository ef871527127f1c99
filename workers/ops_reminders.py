"""The daily reminder to operators of the data-subject requests that fall due (policy 8.6).

Every open request due within ``REMIND_BUSINESS_DAYS`` Kazakhstan business days (or overdue)
goes into one e-mail per active operator, queued in the outbox by ``pz_ops_requests_due``
(app/db/sql) once per operator and day, however many workers run the job: the worker role
reads neither the requests nor the operators itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain import data_requests
from app.domain.business_days import add_business_days

_DUE = text("SELECT pz_ops_requests_due(:today, :until, :now)")


async def remind(engine: AsyncEngine, now: datetime) -> int:
    """Queue today's reminders; the number of operators reminded (0 when nothing is due)."""
    today = data_requests.received_day(now)
    until = add_business_days(today, data_requests.REMIND_BUSINESS_DAYS)
    async with engine.begin() as connection:
        queued = await connection.scalar(_DUE, {"today": today, "until": until, "now": now})
    return int(queued or 0)
