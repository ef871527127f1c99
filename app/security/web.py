"""Who is looking at a Mini App page, and whether an unsafe request may proceed.

The session cookie is the normal path. Telegram Web shows the Mini App in an iframe where even a
``SameSite=None; Partitioned`` cookie can go missing, so a request that carries Telegram's signed
``initData`` in the ``X-Telegram-Init-Data`` header (htmx adds it) re-authenticates and gets a new
cookie. CSRF: every unsafe request with a session must carry that session's token (header
``X-CSRF-Token`` from htmx, or the ``_csrf`` form field) — the token lives in the session row.

Handlers receive who is asking as dependencies, declared once in ``app.main``:
``viewer`` (signed in, and for unsafe methods the CSRF token checked; otherwise ``SignInRequired``
or ``CsrfRejected``, which ``app.routes.errors`` turns into the sign-in redirect or a 403 page),
``maybe_viewer`` (None for a visitor), and ``telegram`` for ``/api/v1`` (``Authorization: tma``).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain.accounts import (
    AccountCard,
    ByTelegram,
    account_from_telegram,
    act_as_client,
    card_of,
    live_account,
)
from app.domain.audit import Actor
from app.domain.consent import has_valid_consent
from app.domain.errors import Unauthorized
from app.i18n import set_locale
from app.models import Account
from app.security import sessions
from app.security.telegram import InitData, InvalidInitData, validate_init_data
from app.settings import Settings, secret_key_for

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
KIND = "miniapp"
COOKIE = sessions.COOKIE_NAMES[KIND]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    """The page needs a signed-in person; the answer is the sign-in page, then back here."""


class CsrfRejected(Exception):
    """An unsafe request without its session's CSRF token (a stale form, or a forgery)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    account: AccountCard
    session: sessions.SessionInfo

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_secret


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def _address(value: str) -> IPAddress | None:
    """An address from a forwarding header's item: ``1.2.3.4``, ``1.2.3.4:5``, ``"[::1]:5"``."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _forwarded_chain(request: Request[Any, Any, Any]) -> list[IPAddress | None]:
    """The addresses the proxies name, client first (RFC 7239 ``Forwarded``, else
    ``X-Forwarded-For``)."""
    forwarded = request.headers.get("forwarded")
    if forwarded:
        chain = []
        for element in forwarded.split(","):
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                if name.strip().lower() == "for":
                    chain.append(_address(value))
        return chain
    return [_address(item) for item in request.headers.get("x-forwarded-for", "").split(",")]


def _trusted_networks(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[IPNetwork, ...]:
    settings = getattr(connection.app.state, "settings", None)
    return _networks(settings.trusted_proxies) if settings else ()


def from_trusted_proxy(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether the peer is a proxy in ``TRUSTED_PROXIES``: only then are its forwarding headers
    believed (who the client is here, which scheme it used in ``app.security.headers``)."""
    peer = connection.client.host if connection.client else None
    hop = _address(peer) if peer else None
    return hop is not None and any(hop in net for net in _trusted_networks(connection))


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    """The address the request came from: the one helper behind rate limits, security events,
    consents and the audit. A forwarding header is believed only from a proxy in
    ``TRUSTED_PROXIES``; then the client is the nearest address that is not such a proxy."""
    peer = request.client.host if request.client else None
    if not from_trusted_proxy(request):
        return peer
    trusted = _trusted_networks(request)
    for address in reversed(_forwarded_chain(request)):
        if address is None:
            return peer  # a malformed hop: believe nothing beyond our own proxy
        if not any(address in net for net in trusted):
            return str(address)
    return peer


def actor_of(
    request: Request[Any, Any, Any], account_id: int | None, kind: str = "client"
) -> Actor:
    """Who acts, and from where, for the audit log."""
    return Actor(
        kind=kind,
        account_id=account_id,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=request.scope.get("state", {}).get("request_id"),
    )


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


async def _issue_session(
    db_session: AsyncSession, request: Request[Any, Any, Any], settings: Settings, account_id: int
) -> sessions.SessionInfo:
    """The Mini App session of this account on this device, its cookie sent with the response."""
    token, info = await sessions.issue(
        db_session,
        account_id=account_id,
        kind=KIND,
        key=secret_key_for(settings),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    set_session_cookie(request, token)
    return info


async def start_session(
    db_session: AsyncSession, request: Request[Any, Any, Any], settings: Settings, account: Account
) -> Viewer:
    info = await _issue_session(db_session, request, settings, account.id)
    return Viewer(account=card_of(account), session=info)


async def sign_in(
    db: Database, request: Request[Any, Any, Any], settings: Settings, account_id: int
) -> None:
    """A new Mini App session for an account whose sign-in was just proven (a code)."""
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        if account is None:
            raise Unauthorized()
        await start_session(session, request, settings, account)


async def sign_out(db: Database, request: Request[Any, Any, Any], viewer: Viewer | None) -> None:
    if viewer is not None:
        async with db.transaction(account_id=viewer.account.id) as session:
            await sessions.revoke(session, viewer.session.id)
    clear_session_cookie(request)


async def current_viewer(
    db: Database, request: Request[Any, Any, Any], settings: Settings
) -> Viewer | None:
    """The signed-in person: from the cookie, else from Telegram's signed initData header."""
    async with db.transaction() as session:
        token = request.cookies.get(COOKIE)
        if token:
            info = await sessions.verify(session, token, kind=KIND, key=secret_key_for(settings))
            if info is not None:
                account = await live_account(session, info.account_id)
                if account is not None:
                    return Viewer(account=card_of(account), session=info)
        raw = request.headers.get("x-telegram-init-data")
        if raw and settings.telegram_bot_token:
            # a sign-in like POST /auth/telegram, under the same limits; imported here because
            # app.security.limits builds on this module (client_ip, the viewer dependencies)
            from app.security.limits import telegram_sign_in

            init = await telegram_sign_in(db, request, settings, raw)
            if init is None:
                return None
            account, _created = await account_from_telegram(session, init)
            return await start_session(session, request, settings, account)
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


# Telegram Web shows the Mini App in its own frame; a sign-in may come from these origins too
TELEGRAM_ORIGINS = frozenset({
    "https://web.telegram.org", "https://webk.telegram.org", "https://webz.telegram.org",
    "https://webapp.telegram.org",
})  # fmt: skip


def same_origin(request: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """For unsafe requests made before any session exists (every sign-in): the page that sent
    it is ours or Telegram's. Closes login CSRF (a foreign page signing a victim into an
    attacker's account)."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
    if origin in TELEGRAM_ORIGINS:
        return True
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def json_sign_in_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of a JSON sign-in (``/auth/telegram``): JSON from our page or Telegram's. A
    cross-site ``text/plain`` post, which a browser sends without asking, is refused before
    its body is read."""
    media_type = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(status_code=415, detail="Send JSON (Content-Type: application/json).")
    if not same_origin(connection):
        raise PermissionDeniedException(detail="Sign-in from another site is refused.")


# --- dependencies (provided in app.main) -------------------------------------------------------


async def provide_maybe_viewer(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
) -> Viewer | None:
    """Who is looking, if anyone; their language applies unless the page asks for another."""
    viewer = await current_viewer(db, request, settings)
    if viewer is not None and "lang" not in request.query_params:
        set_locale(viewer.account.locale)
    return viewer


async def provide_viewer(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
) -> Viewer:
    """The signed-in person; an unsafe request must also carry their session's CSRF token."""
    return await require_signed_in(request, await provide_maybe_viewer(request, db, settings))


async def require_signed_in(request: Request[Any, Any, Any], maybe_viewer: Viewer | None) -> Viewer:
    """``maybe_viewer`` as the signed-in viewer, or ``SignInRequired`` / ``CsrfRejected``."""
    if maybe_viewer is None:
        raise SignInRequired()
    if request.method not in SAFE_METHODS and not await csrf_ok(request, maybe_viewer):
        raise CsrfRejected()
    return maybe_viewer


def provide_telegram(
    request: Request[Any, Any, Any], settings: NamedDependency[Settings]
) -> InitData:
    """``/api/v1``: the client is whoever signed ``Authorization: tma <initData>``."""
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "tma" or not raw:
        raise Unauthorized()
    try:
        return validate_init_data(raw.strip(), settings.telegram_bot_token)
    except InvalidInitData as exc:
        raise Unauthorized() from exc


def provide_maybe_telegram(
    request: Request[Any, Any, Any], settings: NamedDependency[Settings]
) -> InitData | None:
    """Public reads: a valid signature only chooses the language; a bad one is ignored."""
    if not request.headers.get("authorization"):
        return None
    try:
        return provide_telegram(request, settings)
    except Unauthorized:
        return None


DEPENDENCIES = {
    "maybe_viewer": Provide(provide_maybe_viewer),
    "viewer": Provide(provide_viewer),
    "telegram": Provide(provide_telegram, sync_to_thread=False),
    "maybe_telegram": Provide(provide_maybe_telegram, sync_to_thread=False),
}


@dataclass(frozen=True, slots=True)
class TelegramSignIn:
    account_id: int
    consent_required: bool


async def sign_in_with_telegram(
    db: Database, request: Request[Any, Any, Any], settings: Settings, init: InitData
) -> TelegramSignIn:
    """A Mini App session (its cookie sent with the response) for the Telegram user who signed
    ``init``, the account made on first sight; whether they still have to consent."""
    async with db.transaction() as session:
        account_id = await act_as_client(session, ByTelegram(init))
        consent_required = not await has_valid_consent(session, account_id)
        await _issue_session(session, request, settings, account_id)
    return TelegramSignIn(account_id, consent_required)
