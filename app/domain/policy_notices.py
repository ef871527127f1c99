"""Notices of a material change of the privacy policy (policy 11.1), fanned out by a worker.

``pozapisi db upgrade`` publishes a version (``app.db.bootstrap``); from its ``published_at``
(a Kazakh day) until it takes effect, the ``announce_policy`` job calls :func:`fan_out`, which
walks every account in batches (``pz_policy_notice_batch``: a keyset cursor, one transaction
a batch, so no run holds every account in memory or one long transaction) and queues the notice
through the outbox on every channel each active person has. "Once per person, version and
channel" is the primary key of ``policy_notices``, so two workers running the fan-out at the
same time, or a run repeated after a crash, queue nothing twice.

People who join during the notice period are told by the next run (the cursor moves on to
them); from the effective date, anyone whose consent is to an older version is asked to accept
the new one before their next booking (``pz_consent_ok``), so nobody needs telling after it.
A fan-out that had not finished by then (the workers were down) still finishes.

Who is told despite having withdrawn consent, and why: ``pz_notification_blocked``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.policy_versions import policy_today
from app.domain.bookings import sqlstate_of

BATCH = 500  # accounts a transaction: small enough to keep each one short
DEADLOCK = "40P01"

_DUE = text(
    "SELECT v.version FROM policy_versions v "
    "LEFT JOIN policy_announcements a ON a.policy_version = v.version "
    "WHERE v.material AND v.published_at <= :today "
    "AND (v.effective_at > :today OR (a.policy_version IS NOT NULL AND a.swept_at IS NULL)) "
    "ORDER BY v.effective_at, v.version"
)
_BATCH = text("SELECT pz_policy_notice_batch(:version, :today, :now, :limit)")


@dataclass(frozen=True, slots=True)
class Announced:
    queued: dict[str, int] = field(default_factory=dict)  # notices queued by version

    @property
    def total(self) -> int:
        return sum(self.queued.values())


async def _batch(engine: AsyncEngine, version: str, now: datetime, limit: int) -> dict[str, int]:
    params = {"version": version, "today": policy_today(now), "now": now, "limit": limit}
    for attempt in range(3):
        try:
            async with engine.begin() as conn:
                result: dict[str, int] = (await conn.execute(_BATCH, params)).scalar_one()
                return result
        except DBAPIError as error:
            # two fan-outs meeting on the same keys wait for each other; should PostgreSQL
            # still pick one as a deadlock victim, that batch is simply done again
            if attempt == 2 or sqlstate_of(error) != DEADLOCK:
                raise
    raise AssertionError("unreachable")


async def fan_out(engine: AsyncEngine, now: datetime, *, batch: int = BATCH) -> Announced:
    """Queue the notice of every material version in its notice period to everyone not yet
    told, batch after batch until the newest account; returns what was queued."""
    today = policy_today(now)
    async with engine.connect() as conn:
        versions = list((await conn.execute(_DUE, {"today": today})).scalars())
    queued: dict[str, int] = {}
    for version in versions:
        queued[version] = 0
        while True:
            result = await _batch(engine, version, now, batch)
            queued[version] += int(result["queued"])
            if result["done"]:
                break
    return Announced(queued)
