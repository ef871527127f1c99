"""Who is looking at a Mini App page, and whether an unsafe request may proceed.

The session cookie is the normal path. Telegram Web shows the Mini App in an iframe where even a
``SameSite=None; Partitioned`` cookie can go missing, so a request that carries Telegram's signed
``initData`` in the ``X-Telegram-Init-Data`` header (htmx adds it) re-authenticates and gets a new
cookie. CSRF: every unsafe request with a session must carry that session's token (header
``X-CSRF-Token`` from htmx, or the ``_csrf`` form field) — the token lives in the session row.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from litestar import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts import account_from_telegram
from app.models import Account
from app.security import sessions
from app.security.telegram import InvalidInitData, validate_init_data
from app.settings import Settings, secret_key_for

KIND = "miniapp"
COOKIE = sessions.COOKIE_NAMES[KIND]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Viewer:
    account: Account
    session: sessions.SessionInfo

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_secret


def _client_ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def set_session_cookie(request: Request[Any, Any, Any], token: str) -> None:
    """Ask the context middleware to send the session cookie with this response."""
    max_age = int(sessions.LIFETIME[KIND].total_seconds())
    request.scope.setdefault("state", {}).setdefault("set_cookies", []).append(
        sessions.cookie_header(KIND, token, max_age=max_age)
    )


def clear_session_cookie(request: Request[Any, Any, Any]) -> None:
    request.scope.setdefault("state", {}).setdefault("set_cookies", []).append(
        sessions.cookie_header(KIND, "", max_age=0)
    )


async def start_session(
    db_session: AsyncSession, request: Request[Any, Any, Any], settings: Settings, account: Account
) -> Viewer:
    token, info = await sessions.issue(
        db_session,
        account_id=account.id,
        kind=KIND,
        key=secret_key_for(settings),
        ip=_client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    set_session_cookie(request, token)
    return Viewer(account=account, session=info)


async def current_viewer(
    db_session: AsyncSession, request: Request[Any, Any, Any], settings: Settings
) -> Viewer | None:
    """The signed-in person: from the cookie, else from Telegram's signed initData header."""
    token = request.cookies.get(COOKIE)
    if token:
        info = await sessions.verify(db_session, token, kind=KIND, key=secret_key_for(settings))
        if info is not None:
            account = (
                await db_session.execute(
                    select(Account).where(
                        Account.id == info.account_id, Account.deleted_at.is_(None)
                    )
                )
            ).scalar_one_or_none()
            if account is not None:
                return Viewer(account=account, session=info)
    raw = request.headers.get("x-telegram-init-data")
    if raw and settings.telegram_bot_token:
        try:
            init = validate_init_data(raw, settings.telegram_bot_token)
        except InvalidInitData:
            return None
        account, _created = await account_from_telegram(db_session, init)
        return await start_session(db_session, request, settings, account)
    return None


async def csrf_ok(request: Request[Any, Any, Any], viewer: Viewer) -> bool:
    """True when the request carries this session's CSRF token (header or form field)."""
    sent = request.headers.get("x-csrf-token")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("_csrf")
        sent = value if isinstance(value, str) else None
    return bool(sent) and hmac.compare_digest(str(sent), viewer.csrf_token)


def same_origin(request: Request[Any, Any, Any]) -> bool:
    """For unsafe requests made before any session exists (sign-in forms)."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host
