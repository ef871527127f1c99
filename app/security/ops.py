"""Who is signed in to the operator console ``/ops/``, and whether their role allows a page.

The console has its own session (cookie ``__Host-pz_ops``: HttpOnly, Secure, SameSite=Strict,
Path=/, 8 hours), a ``sessions`` row of kind ``ops``, started only after the second factor
(``app.domain.operators.check_second_factor``). A dashboard or Mini App session is no ops
session: the token's audience and the row's kind both differ, so neither opens a page here.
Every request checks the operators row again, so a disabled operator is out on the next click.

CSRF as on the dashboard (pinned): every unsafe request carries the session's token in the
``X-CSRF-Token`` header or a ``csrf_token`` form field, else 403; the sign-in forms carry a
signed pre-session token (``app.security.dashboard.pre_session_token``).

Handlers declare ``dependencies=SUPPORT`` (any operator), ``PRIVACY`` or ``ADMIN`` and receive
``operator`` (``app.domain.operators.Operator``) and ``ops`` (the signed-in ``OpsViewer``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide

from app.db.session import Database
from app.domain.operators import OPERATOR_ROLES, Operator, operator_of
from app.security import sessions
from app.security.dashboard import sent_token
from app.security.web import SAFE_METHODS, CsrfRejected, client_ip
from app.settings import Settings, secret_key_for

KIND = "ops"
COOKIE = sessions.COOKIE_NAMES[KIND]


class OpsSignInRequired(Exception):
    """An ops page without an ops session: the console's sign-in page."""


class OpsRoleRequired(Exception):
    """The operator's role does not allow this page: 403."""


@dataclass(frozen=True, slots=True)
class OpsViewer:
    operator: Operator
    session: sessions.SessionInfo

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_secret


def _set_cookie(request: Request[Any, Any, Any], token: str, max_age: int) -> None:
    request.scope.setdefault("state", {}).setdefault("set_cookies", []).append(
        sessions.cookie_header(KIND, token, max_age=max_age)
    )


async def start(
    db: Database, request: Request[Any, Any, Any], settings: Settings, account_id: int
) -> None:
    """The ops session of an operator whose password and second factor were just proven."""
    async with db.transaction(account_id=account_id) as session:
        token, _info = await sessions.issue(
            session, account_id=account_id, kind=KIND, key=secret_key_for(settings),
            ip=client_ip(request), user_agent=request.headers.get("user-agent"),
        )  # fmt: skip
    _set_cookie(request, token, int(sessions.LIFETIME[KIND].total_seconds()))


async def end(db: Database, request: Request[Any, Any, Any], viewer: OpsViewer | None) -> None:
    if viewer is not None:
        async with db.transaction(account_id=viewer.operator.account_id) as session:
            await sessions.revoke(session, viewer.session.id)
    _set_cookie(request, "", 0)


async def current(
    db: Database, request: Request[Any, Any, Any], settings: Settings
) -> OpsViewer | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    async with db.transaction() as session:
        info = await sessions.verify(session, token, kind=KIND, key=secret_key_for(settings))
        if info is None:
            return None
        operator = await operator_of(session)
    return OpsViewer(operator, info) if operator is not None else None


async def provide_maybe_ops(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
) -> OpsViewer | None:
    return await current(db, request, settings)


async def provide_ops(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
) -> OpsViewer:
    """The signed-in operator; an unsafe request must also carry their session's CSRF token."""
    viewer = await current(db, request, settings)
    if viewer is None:
        if request.method not in SAFE_METHODS:
            raise CsrfRejected()
        raise OpsSignInRequired()
    if request.method not in SAFE_METHODS:
        sent = await sent_token(request)
        if not sent or not hmac.compare_digest(sent, viewer.csrf_token):
            raise CsrfRejected()
    return viewer


def ops_role(at_least: str) -> dict[str, Provide]:
    """Dependencies of an ops page: ``operator``, with at least ``at_least``
    (support < privacy < admin)."""
    if at_least not in OPERATOR_ROLES:
        raise ValueError(f"unknown operator role {at_least!r}")

    def provide_operator(ops: NamedDependency[OpsViewer]) -> Operator:
        if not ops.operator.at_least(at_least):
            raise OpsRoleRequired()
        return ops.operator

    return {"operator": Provide(provide_operator, sync_to_thread=False)}


SUPPORT = ops_role("support")
PRIVACY = ops_role("privacy")
ADMIN = ops_role("admin")

DEPENDENCIES = {
    "maybe_ops": Provide(provide_maybe_ops),
    "ops": Provide(provide_ops),
}
