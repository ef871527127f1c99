"""Rate limits that hold across processes and servers, counted in PostgreSQL.

Each limit is a setting (``RATE_LIMIT_<NAME>``, e.g. ``"10/minute"``; see ``app.settings``) and
is declared on the route it guards, never coded inside a handler:

- ``guards=[per_network("sign_in_ip")]``: counted for the client network (the one
  ``app.security.web.client_ip``; an IPv4 address, an IPv6 /64, as ``app.domain.otp`` counts);
- ``dependencies={"viewer": limited_viewer("messages")}``: the signed-in viewer, counted for that
  person after the sign-in and CSRF checks (a forged request spends nobody's allowance);
- ``dependencies={"telegram": limited_telegram("booking")}``: the same for ``/api/v1``;
- ``guards=[telegram_sign_in_guard]`` on ``POST /auth/telegram``, and :func:`telegram_sign_in` in
  the ``X-Telegram-Init-Data`` path of ``app.security.web.current_viewer``: every attempt counts
  for its network, a forged signature too, and one whose signature holds for its Telegram user;
- :func:`count_password_sign_in` for the dashboard's password sign-in (per account and network).

Past a limit the request fails with ``RateLimited`` carrying the seconds to wait:
``app.routes.errors`` answers 429 with ``Retry-After`` and the pinned body (``/api/v1``, JSON)
or the Mini App's error page in the person's language. One-time codes keep their own limits
(``app.domain.otp`` counts the challenges themselves); nothing here counts them twice.

Why PostgreSQL: a limit must hold however many processes (uvicorn ``--workers``) and servers
answer, with nothing but the default set-up, where PostgreSQL is the only shared service (Redis
only when ``QUEUE_URL`` names it). The well-kept libraries do not store there: ``limits`` keeps
its counters in memory, Redis, Memcached, MongoDB or etcd; Litestar's ``RateLimitMiddleware``
in a memory, file or Redis store — in memory each process counts alone (N processes, N times
the limit), and a second storage service to run for this alone is not worth it. So one SQL
function, ``pz_rate_limit_hit`` (``app/db/sql/functions``), counts a request in one statement:
``INSERT … ON CONFLICT DO UPDATE … WHERE`` on ``rate_limit_counters`` (migration 0015), exact
under concurrency because the row lock orders the writers. It is ``SECURITY DEFINER``: the app
role cannot read or reset the counters, only count. The algorithm is the sliding window counter
(``limits``' "sliding window", Cloudflare's): this window's hits plus the previous window's,
weighted by the overlap — no burst of twice the limit across a window's edge, two rows per key.
A refused request is not counted. The database's clock decides, the same for every server.
Expired rows are deleted by the worker's hourly ``purge_expired``. The cost is one round trip
per limited request, on the asyncpg pool, in its own transaction: a counted attempt stays
counted even when the request then fails (a wrong code, a forged signature).

Keys are HMAC-SHA256 digests under a key derived from ``SECRET_KEY`` (as ``app.domain.otp``'s
``destination_hash``): the table never holds an address, a contact or a Telegram id in clear.
A request without a client address (only in-process test clients have none) is not counted per
network, as ``app.domain.otp`` does.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any, cast

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from app.db.session import Database
from app.domain.errors import RateLimited
from app.domain.otp import client_network
from app.integrations.telegram_webapp import InitData
from app.security.telegram import InvalidInitData, validate_init_data
from app.security.web import Viewer, client_ip, provide_telegram, provide_viewer
from app.settings import Settings, secret_key_for

NAMES = frozenset(
    field.name.removeprefix("rate_limit_")
    for field in msgspec.structs.fields(Settings)
    if field.name.startswith("rate_limit_")
)
_HIT = "SELECT pz_rate_limit_hit($1, $2, $3, $4, $5)"


def _known(name: str) -> str:
    """Names are checked when a route is declared, not when the first request arrives."""
    if name not in NAMES:
        raise ValueError(f"unknown rate limit {name!r} (one of {sorted(NAMES)})")
    return name


def subject_digest(secret: str, subject: str) -> str:
    """The keyed digest a person or network is counted under."""
    if not secret:
        raise ValueError("rate limits need the server's SECRET_KEY")
    key = hmac.new(secret.encode(), b"pozapisi.rate_limit", hashlib.sha256).digest()
    return hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()


def network_subject(ip: str | None) -> str | None:
    """What a per-network limit counts: the client's network as the code limits count it
    (``otp.client_network``); None without an address."""
    network = client_network(ip)
    return f"network:{network}" if network else None


def person_subject(viewer: Viewer) -> str:
    """One count per person: by Telegram id where the account has one, so a booking through the
    API (which knows the Telegram id) and through the Mini App spend the same allowance."""
    account = viewer.account
    return f"telegram:{account.telegram_id}" if account.telegram_id else f"account:{account.id}"


async def hit(
    db: Database, settings: Settings, name: str, subject: str | None, *, at: datetime | None = None
) -> None:
    """Count one request against limit ``name`` for ``subject`` (``telegram:…``,
    ``network:…``; hashed before it leaves this process); ``RateLimited`` when it is spent.
    ``at`` is the tests' clock: by default the database's decides."""
    if subject is None:
        return
    count, window_s = getattr(settings, f"rate_limit_{_known(name)}")
    digest = subject_digest(secret_key_for(settings), subject)
    wait = await db.fetchval(_HIT, name, digest, count, window_s, at)
    if wait:
        raise RateLimited(retry_after=wait)


# --- what routes declare ---------------------------------------------------------------------


def per_network(name: str) -> Guard:
    """Guard: count the request against ``name`` for its client network."""
    _known(name)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        state = connection.app.state
        ip = client_ip(cast("Request[Any, Any, Any]", connection))
        await hit(state.db, state.settings, name, network_subject(ip))

    return guard


def limited_viewer(name: str) -> Provide:
    """Dependency ``viewer`` (signed in, CSRF checked on unsafe methods) that also counts the
    request against ``name`` for that person; declared on the route in place of the plain one."""
    _known(name)

    async def provide_limited_viewer(
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
    ) -> Viewer:
        viewer = await provide_viewer(request, db, settings)
        await hit(db, settings, name, person_subject(viewer))
        return viewer

    return Provide(provide_limited_viewer)


def limited_telegram(name: str) -> Provide:
    """Dependency ``telegram`` of ``/api/v1`` (a valid ``Authorization: tma``) that also counts
    the request against ``name`` for that Telegram user."""
    _known(name)

    async def provide_limited_telegram(
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
    ) -> InitData:
        init = provide_telegram(request, settings)
        await hit(db, settings, name, f"telegram:{init.user.id}")
        return init

    return Provide(provide_limited_telegram)


async def telegram_sign_in(
    db: Database, request: Request[Any, Any, Any], settings: Settings, raw: str | None
) -> InitData | None:
    """A sign-in with Telegram's ``initData``, counted: for the client network whatever it
    carries (so forged data is no way around that limit), then for the Telegram user once the
    signature holds. The validated data, or None when it is missing or forged."""
    await hit(db, settings, "sign_in_ip", network_subject(client_ip(request)))
    if not raw:
        return None
    try:
        init = validate_init_data(raw, settings.telegram_bot_token)
    except InvalidInitData:
        return None
    await hit(db, settings, "sign_in", f"telegram:{init.user.id}")
    return init


class _SignInBody(msgspec.Struct):
    init_data: str | None = None


async def telegram_sign_in_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard of ``POST /auth/telegram``: :func:`telegram_sign_in` on the body's ``init_data``.
    The handler still parses and validates the body itself (Litestar keeps the bytes read)."""
    request = cast("Request[Any, Any, Any]", connection)
    try:
        raw = msgspec.json.decode(await request.body(), type=_SignInBody).init_data
    except msgspec.DecodeError:
        raw = None  # the handler answers 422; the attempt still counts for the network
    state = connection.app.state
    await telegram_sign_in(state.db, request, state.settings, raw)


async def count_password_sign_in(
    db: Database, settings: Settings, *, email: str, ip: str | None
) -> None:
    """For the dashboard, before it checks a password: one attempt for the client network and
    one for the account the e-mail names (counted alike whether or not it exists, so the answer
    tells nothing about it). ``RateLimited`` past either limit."""
    await hit(db, settings, "password_ip", network_subject(ip))
    await hit(db, settings, "password", f"email:{email.strip().lower()}")
