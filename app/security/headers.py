"""Per-request context and security headers, as one small ASGI middleware.

It picks the request's language (ContextVar, so concurrent requests never mix), gives the
request an id of its own for the audit log (a caller's ``X-Request-Id`` is kept apart, for
logs only), and adds the security headers every response carries.
"""

from __future__ import annotations

import secrets
from typing import Any

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.i18n import pick_locale, use_locale
from app.security.web import from_trusted_proxy

TELEGRAM_FRAME_ANCESTORS = "https://web.telegram.org https://*.telegram.org"
# Scripts: our own files only (htmx and Telegram's SDK are vendored; no inline script, no eval).
# Styles allow inline because Telegram Web's SDK injects its theme as a <style> element.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    f"base-uri 'none'; form-action 'self'; frame-ancestors 'self' {TELEGRAM_FRAME_ANCESTORS}"
)
STATIC_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin-allow-popups"),
]


# Policy 10.1 (TLS on every channel): once a browser has seen this over HTTPS it never tries plain
# HTTP on this host or its subdomains for two years. Production only: a developer's browser must
# not pin http://127.0.0.1 to HTTPS; and only over HTTPS, where browsers honour it.
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


def _production(scope: Scope) -> bool:
    settings = getattr(ASGIConnection(scope).app.state, "settings", None)
    return bool(settings and settings.is_production)


def _forwarded_proto(scope: Scope) -> str | None:
    """The scheme the nearest proxy recorded: ``proto=`` of the last ``Forwarded`` element (RFC
    7239), else the last ``X-Forwarded-Proto`` item; what a client wrote before it never counts."""
    forwarded = _header(scope, b"forwarded")
    if forwarded:
        for pair in forwarded.split(",")[-1].split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "proto":
                return value.strip().strip('"').lower()
        return None
    given = _header(scope, b"x-forwarded-proto")
    return given.split(",")[-1].strip().lower() if given else None


def _over_https(scope: Scope) -> bool:
    """TLS ended here (``pozapisi run --tls-cert``), or at a proxy of ``TRUSTED_PROXIES`` (the
    rule ``client_ip`` follows) that says the client came over HTTPS."""
    if scope.get("scheme") == "https":
        return True
    return from_trusted_proxy(ASGIConnection(scope)) and _forwarded_proto(scope) == "https"


# pages that show or change a person's data are never cached by browsers or proxies
PERSONAL_PREFIXES = ("/app/", "/api/v1/me", "/auth/", "/dashboard/", "/ops/")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _query_locale(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "lang" and value:
            return value
    return None


CLIENT_REQUEST_ID_MAX = 64


def _client_request_id(scope: Scope) -> str | None:
    """The caller's own ``X-Request-Id``, kept beside ours for correlating their logs with
    ours: printable ASCII, cut to 64 characters. It is never written to the audit log."""
    given = _header(scope, b"x-request-id")
    if not given:
        return None
    kept = "".join(c for c in given[:CLIENT_REQUEST_ID_MAX] if c.isalnum() or c in "-_.:")
    return kept or None


def context_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)  # ours: a caller's id is never trusted into the audit
        path = scope.get("path", "")
        personal = path.startswith(PERSONAL_PREFIXES)
        strict_transport = _production(scope) and _over_https(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_request_id"] = _client_request_id(scope)
        locale = pick_locale(
            explicit=_query_locale(scope),
            accept_language=_header(scope, b"accept-language"),
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in STATIC_HEADERS if h[0] not in present)
                if strict_transport and HSTS[0] not in present:
                    headers.append(HSTS)
                headers.append((b"x-request-id", request_id.encode()))
                if b"vary" not in present:
                    headers.append((b"vary", b"Accept-Language, HX-Request, Cookie"))
                if personal and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                for cookie in scope["state"].get("set_cookies", ()):
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        with use_locale(locale):
            await app(scope, receive, send_with_headers)

    return middleware
