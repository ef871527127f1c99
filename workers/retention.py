"""Retention (privacy policy section 7): what is kept how long, enforced by a daily job.

* 7.1 — an active account is kept while it is active: nothing here touches an account that
  has not been deleted.
* 7.2 — technical data (IP addresses, user agents) of a deleted account is removed within
  30 days after the deletion. Erasure (``app.domain.privacy.erase_account``) removes the
  person's identity at once but leaves these for ``TECHNICAL_DATA_KEPT`` (a week, so abuse
  just before a deletion can still be looked into); the first daily run after that removes
  them from every table that holds them (``pz_purge_technical``, migration 0009): the audit
  log's side table, consent records, security events and sessions. A test seeds a value in
  every IP or user-agent column the live schema has and sees each one gone, so a new table
  with an IP or user agent fails CI until retention covers it.
* 7.3 — invoices and payments are kept five years (each row's ``retain_until``, checked by
  the table), also when accounts are deleted, then purged by ``pz_purge_financial``
  (migration 0009), which never takes a date later than the database's own clock.

The job runs as the worker role and takes ``now`` as an argument, so tests drive its clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

TECHNICAL_DATA_KEPT = timedelta(days=7)
RETENTION_PROMISE = timedelta(days=30)  # policy 7.2; the job runs daily
assert TECHNICAL_DATA_KEPT + timedelta(days=1) < RETENTION_PROMISE

_TECHNICAL = text("SELECT pz_purge_technical(:cutoff)")
_FINANCIAL = text("SELECT pz_purge_financial(:today)")


@dataclass(frozen=True, slots=True)
class Retained:
    audit_details: int
    consent_records: int
    security_events: int
    sessions: int
    payments: int
    invoices: int


async def enforce(engine: AsyncEngine, now: datetime) -> Retained:
    """One pass, in one transaction: technical data of accounts deleted at least
    ``TECHNICAL_DATA_KEPT`` before ``now``, and financial documents past their retention."""
    async with engine.begin() as conn:
        technical = await conn.scalar(_TECHNICAL, {"cutoff": now - TECHNICAL_DATA_KEPT})
        financial = await conn.scalar(_FINANCIAL, {"today": now.date()})
    return Retained(**technical, **financial)
