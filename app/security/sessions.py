"""Sessions: a signed JWT in an HttpOnly cookie, backed by a ``sessions`` row for revocation.

The JWT pins its algorithm (HS256), audience and expiry and carries a ``jti`` naming its row;
logout or account deletion revokes the row and with it the token, at once.

Rows are under row-level security (migration 0012): the app sees the sessions of the account
the transaction acts for and no others. Issuing a session makes the transaction act for its
account; checking a token acts for the account its signed ``sub`` names, and only while the
row confirms it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import set_context
from app.domain.audit import inet_or_none, user_agent_or_none

ALGORITHM = "HS256"
LIFETIME = {
    "miniapp": timedelta(days=30),
    "dashboard": timedelta(days=14),
    "ops": timedelta(hours=8),
}
COOKIE_NAMES = {"miniapp": "__Host-pz_app", "dashboard": "__Host-pz_dash", "ops": "__Host-pz_ops"}


# a session is reused only while it has at least this long to live (else a fresh one)
REUSE_MARGIN = timedelta(days=1)
_SAME_DEVICE = text(
    "SELECT id, csrf_secret, expires_at FROM sessions WHERE account_id = :a AND kind = :kind "
    "AND revoked_at IS NULL AND expires_at > :until AND user_agent IS NOT DISTINCT FROM :ua "
    "ORDER BY created_at DESC LIMIT 1"
)


def audience(kind: str) -> str:
    return f"pozapisi:{kind}"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    account_id: int
    kind: str
    csrf_secret: str
    chosen_business_id: int | None = None  # a dashboard session's business (migration 0017)


async def issue(
    session: AsyncSession,
    *,
    account_id: int,
    kind: str,
    key: str,
    ip: str | None,
    user_agent: str | None,
    now: datetime | None = None,
) -> tuple[str, SessionInfo]:
    """The session of this account on this device and its token; the transaction acts for
    ``account_id`` from here. A device that already holds a live session of the kind (the same
    user agent) gets a new token for that row, not a new row: a Mini App re-signing with
    Telegram's initData on every request must not pile up sessions."""
    await set_context(session, account_id=account_id)
    now = now or datetime.now(UTC)
    agent = user_agent_or_none(user_agent)
    held = (await session.execute(_SAME_DEVICE, {"a": account_id, "kind": kind, "ua": agent,
                                                 "until": now + REUSE_MARGIN})).first()  # fmt: skip
    if held is not None:
        jti, csrf, expires = held.id, held.csrf_secret, held.expires_at
    else:
        jti = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = now + LIFETIME[kind]
        await session.execute(
            text(
                "INSERT INTO sessions (id, account_id, kind, csrf_secret, created_at, expires_at, "
                "ip, user_agent) VALUES (:id, :a, :kind, :csrf, :now, :exp, CAST(:ip AS inet), :ua)"
            ),
            {"id": jti, "a": account_id, "kind": kind, "csrf": csrf, "now": now, "exp": expires,
             "ip": inet_or_none(ip), "ua": agent},
        )  # fmt: skip
    token = jwt.encode(
        {"sub": str(account_id), "jti": jti, "aud": audience(kind), "iat": now, "exp": expires},
        key,
        algorithm=ALGORITHM,
    )
    return token, SessionInfo(id=jti, account_id=account_id, kind=kind, csrf_secret=csrf)


# the setting in force (read by the subquery's scan, before the outer row sets the new one)
_ACT_FOR = text(
    "SELECT prior.account, set_config('app.account_id', :account, true) "
    "FROM (SELECT current_setting('app.account_id', true) AS account OFFSET 0) prior"
)


async def verify(
    session: AsyncSession, token: str, *, kind: str, key: str, now: datetime | None = None
) -> SessionInfo | None:
    """The live session a token names, or None (forged, expired, revoked, wrong audience)."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience(kind),
            options={"require": ["exp", "aud", "jti", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    subject = claims["sub"]
    if (
        not isinstance(subject, str)
        or not (subject.isascii() and subject.isdigit())
        or len(subject) > 18
    ):
        return None
    # act for the account the signature vouches for, so the policy shows its sessions only;
    # the account acted for before comes back unless the row confirms the token
    before = await session.scalar(_ACT_FOR, {"account": subject})
    now = now or datetime.now(UTC)
    row = (
        await session.execute(
            text(
                "SELECT id, account_id, kind, csrf_secret, chosen_business_id FROM sessions "
                "WHERE id = :id AND kind = :kind AND revoked_at IS NULL AND expires_at > :now"
            ),
            {"id": claims["jti"], "kind": kind, "now": now},
        )
    ).first()
    if row is None or str(row.account_id) != subject:
        await session.execute(_ACT_FOR, {"account": before or ""})
        return None
    return SessionInfo(
        id=row.id,
        account_id=row.account_id,
        kind=row.kind,
        csrf_secret=row.csrf_secret,
        chosen_business_id=row.chosen_business_id,
    )


async def revoke(session: AsyncSession, session_id: str) -> None:
    await session.execute(
        text("UPDATE sessions SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL"),
        {"id": session_id},
    )


async def choose_business(session: AsyncSession, session_id: str, business_id: int) -> None:
    """The business a dashboard session works in from now on (a membership is still checked
    on every request: this only chooses among the person's businesses)."""
    await session.execute(
        text("UPDATE sessions SET chosen_business_id = :b WHERE id = :id"),
        {"id": session_id, "b": business_id},
    )


async def revoke_others(session: AsyncSession, account_id: int, keep: str | None) -> int:
    """End every live session of the account but ``keep`` (a password or e-mail change, a
    reset): whoever held another device's token is out at once. How many were ended."""
    result = await session.execute(
        text(
            "UPDATE sessions SET revoked_at = now() WHERE account_id = :a AND revoked_at IS NULL "
            "AND id IS DISTINCT FROM :keep"
        ),
        {"a": account_id, "keep": keep},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def cookie_header(kind: str, token: str, *, max_age: int) -> str:
    """Set-Cookie for a session. The Mini App runs in Telegram Web's iframe, where only
    ``SameSite=None; Secure; Partitioned`` cookies are sent; the dashboard stays Lax; the
    operator console is Strict (no link from elsewhere arrives signed in)."""
    same_site = {"miniapp": "None; Partitioned", "ops": "Strict"}.get(kind, "Lax")
    return f"{COOKIE_NAMES[kind]}={token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite={same_site}"
