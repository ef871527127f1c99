"""Housekeeping that has real behaviour today: spent sign-in codes, dead sessions, old counters.

* OTP challenges are kept a day past expiry (the sign-in throttle counts recent codes per
  address), then deleted;
* sessions are deleted once expired or revoked: a token whose row is gone is refused anyway
  (``app.security.sessions.verify``), and the row holds an IP and a user agent (policy 2.6);
* notification rows that carried a sign-in code are deleted a day after they were finished:
  they name a phone or e-mail address and have no further use;
* rate-limit counters (``app.security.limits``) are deleted once their window and the next are
  over: the sliding window reads the previous one, never older;
* e-mail links (``account_tokens``: verification, reset, change of address) are deleted a day
  after they expired: a spent or dead link has no use, and a change link names an address;
* team invitations are deleted a month after they expired or were accepted: an open one names
  a person who has no account (an e-mail or phone), an accepted one duplicates the member's
  own contact; the membership and the audit chain keep what happened.

Retention in the privacy policy's sense (7.2, 7.3) is ``workers.retention``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

OTP_KEPT_AFTER_EXPIRY = timedelta(days=1)
SPENT_CODE_MESSAGES_KEPT = timedelta(days=1)
LINKS_KEPT_AFTER_EXPIRY = timedelta(days=1)
INVITATIONS_KEPT = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Purged:
    otp_challenges: int
    sessions: int
    code_messages: int
    rate_limit_counters: int
    email_links: int = 0
    invitations: int = 0


async def purge_expired(engine: AsyncEngine, now: datetime) -> Purged:
    async with engine.begin() as conn:
        otp = await conn.execute(
            text("DELETE FROM otp_challenges WHERE expires_at < :cutoff"),
            {"cutoff": now - OTP_KEPT_AFTER_EXPIRY},
        )
        sessions = await conn.execute(
            text("DELETE FROM sessions WHERE expires_at < :now OR revoked_at < :now"), {"now": now}
        )
        codes = await conn.execute(
            text(
                "DELETE FROM notifications WHERE event = 'otp.code' "
                "AND status IN ('sent', 'failed', 'cancelled') AND created_at < :cutoff"
            ),
            {"cutoff": now - SPENT_CODE_MESSAGES_KEPT},
        )
        counters = await conn.execute(
            text("DELETE FROM rate_limit_counters WHERE expires_at < :now"), {"now": now}
        )
        links = await conn.execute(
            text("DELETE FROM account_tokens WHERE expires_at < :cutoff"),
            {"cutoff": now - LINKS_KEPT_AFTER_EXPIRY},
        )
        invitations = await conn.execute(
            text(
                "DELETE FROM invitations WHERE expires_at < :cutoff OR accepted_at < :cutoff "
                "OR revoked_at < :cutoff"
            ),
            {"cutoff": now - INVITATIONS_KEPT},
        )
    return Purged(
        otp.rowcount, sessions.rowcount, codes.rowcount, counters.rowcount,
        links.rowcount, invitations.rowcount,
    )  # fmt: skip
