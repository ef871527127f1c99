"""Who is signed in to the business dashboard, for which business, and whether they may act.

The dashboard has its own session (cookie ``__Host-pz_dash``: HttpOnly, Secure, SameSite=Lax,
Path=/, pinned), backed like every session by a ``sessions`` row of kind ``dashboard``. One
person may be a member of several businesses: the session row remembers which one they work
in (``chosen_business_id``), and every request checks that membership again, so a removed
member or a changed role takes effect on the next click.

CSRF (pinned): every unsafe request carries the session's token in the ``X-CSRF-Token`` header
(htmx, ``app/static/dashboard.js``) or a ``csrf_token`` form field, else 403. Forms shown before
anyone is signed in (sign-up, sign-in, password reset, an invitation) carry a token too: a
signed timestamp (:func:`pre_session_token`), checked with the request's origin.

Handlers get the guard's answer as dependencies provided in ``app.main``: ``dashboard`` (the
signed-in ``Dashboard``; without a session → ``DashboardSignInRequired``, answered by a 303 to
``/dashboard/signin``), ``maybe_dashboard``, and ``member`` from :func:`role` — the acting
``Member`` of the chosen business with at least a role (a lesser role → 403,
``RoleRequired``; no business at all → ``NoBusiness``, answered by the page that creates one).
The ``Member`` is where the tenant comes from: domain calls take it and act for its business.
A business in read-only mode (unpaid past its grace) gets every unsafe request refused here,
but those of handlers marked ``opt={"billing": True}`` (paying, choosing a plan):
:func:`app.domain.subscriptions.refuse_if_read_only` is that one rule.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide

from app.db.session import Database
from app.domain import live, subscriptions
from app.domain.accounts import AccountCard, card_of, live_account
from app.domain.audit import Actor
from app.domain.members import ROLES, Member, Workplace, workplaces
from app.i18n import set_locale
from app.security import sessions
from app.security.web import (
    SAFE_METHODS,
    CsrfRejected,
    actor_of,
    client_ip,
    same_origin,
)
from app.settings import Settings, secret_key_for

KIND = "dashboard"
COOKIE = sessions.COOKIE_NAMES[KIND]
CSRF_FIELD = "csrf_token"  # pinned: the form field; the header is X-CSRF-Token
CSRF_HEADER = "x-csrf-token"
PRE_SESSION_TTL_S = 12 * 3600  # a sign-in form left open over a working day still works


class DashboardSignInRequired(Exception):
    """A dashboard page without a dashboard session: the sign-in page, then back here."""


class RoleRequired(Exception):
    """The member's role does not allow this (a master on an admin page): 403."""


class NoBusiness(Exception):
    """Signed in, but a member of no business (removed from the team, say): the page that
    creates one."""


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The signed-in person, their session and the businesses they work in."""

    account: AccountCard
    session: sessions.SessionInfo
    workplaces: tuple[Workplace, ...]
    # the navigation's counts and change stamp, read with the session for pages that show them
    counts: live.Counts | None = None

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_secret

    @property
    def workplace(self) -> Workplace | None:
        """The business this session works in: the chosen one while still a member, else the
        first (owned ones first)."""
        chosen = self.session.chosen_business_id
        for place in self.workplaces:
            if place.business_id == chosen:
                return place
        return self.workplaces[0] if self.workplaces else None

    @property
    def member(self) -> Member | None:
        place = self.workplace
        return place.as_member(self.account.id) if place else None


# --- the session ----------------------------------------------------------------------------


def set_cookie(request: Request[Any, Any, Any], token: str) -> None:
    max_age = int(sessions.LIFETIME[KIND].total_seconds())
    request.scope.setdefault("state", {}).setdefault("set_cookies", []).append(
        sessions.cookie_header(KIND, token, max_age=max_age)
    )


def clear_cookie(request: Request[Any, Any, Any]) -> None:
    request.scope.setdefault("state", {}).setdefault("set_cookies", []).append(
        sessions.cookie_header(KIND, "", max_age=0)
    )


async def start(
    db: Database,
    request: Request[Any, Any, Any],
    settings: Settings,
    account_id: int,
    *,
    business_id: int | None = None,
) -> sessions.SessionInfo:
    """A dashboard session for an account whose sign-in was just proven (a password, a code, a
    verified link), working in ``business_id`` when given; its cookie goes with the response."""
    async with db.transaction(account_id=account_id) as session:
        token, info = await sessions.issue(
            session,
            account_id=account_id,
            kind=KIND,
            key=secret_key_for(settings),
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
        if business_id is not None:
            await sessions.choose_business(session, info.id, business_id)
    set_cookie(request, token)
    return info


async def end(db: Database, request: Request[Any, Any, Any], viewer: Dashboard | None) -> None:
    if viewer is not None:
        async with db.transaction(account_id=viewer.account.id) as session:
            await sessions.revoke(session, viewer.session.id)
    clear_cookie(request)


async def choose(db: Database, viewer: Dashboard, business_id: int) -> bool:
    """Work in another of the person's businesses; False when they are no member of it."""
    if not any(p.business_id == business_id for p in viewer.workplaces):
        return False
    async with db.transaction(account_id=viewer.account.id) as session:
        await sessions.choose_business(session, viewer.session.id, business_id)
    return True


async def end_other_sessions(db: Database, viewer: Dashboard) -> int:
    """End every other session of the signed-in person (all kinds), keeping this one."""
    async with db.transaction(account_id=viewer.account.id) as session:
        return await sessions.revoke_others(session, viewer.account.id, keep=viewer.session.id)


async def current(
    db: Database, request: Request[Any, Any, Any], settings: Settings, *, counts: bool = False
) -> Dashboard | None:
    """The signed-in person; with ``counts``, also the navigation's counts of the business
    they work in, in the same transaction: the business set as its tenant, then one statement
    (:func:`app.domain.live.counts_in`)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    async with db.transaction() as session:
        info = await sessions.verify(session, token, kind=KIND, key=secret_key_for(settings))
        if info is None:
            return None
        account = await live_account(session, info.account_id)
        if account is None:
            return None
        places = await workplaces(session, account.id)
        viewer = Dashboard(account=card_of(account), session=info, workplaces=tuple(places))
        member = viewer.member
        if counts and member is not None:
            viewer = replace(viewer, counts=await live.counts_in(session, member))
    return viewer


def _shows_counts(request: Request[Any, Any, Any]) -> bool:
    """Whether the answer is a whole page (its navigation shows the counts): a GET that is
    not an htmx fragment, or a fragment whose handler asks for them (``opt nav_counts``)."""
    if request.method != "GET":
        return False
    wanted = request.route_handler.opt.get("nav_counts")
    if wanted is not None:
        return bool(wanted)
    return request.headers.get("hx-request") != "true"


# --- CSRF -------------------------------------------------------------------------------------


async def sent_token(request: Request[Any, Any, Any]) -> str | None:
    """The CSRF token a request carries: the header, else the form field."""
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent or None


def _mac(settings: Settings, stamp: str) -> str:
    key = hashlib.sha256(b"pozapisi:pre-session-csrf:" + secret_key_for(settings).encode()).digest()
    return hmac.new(key, stamp.encode(), hashlib.sha256).hexdigest()[:32]


def pre_session_token(settings: Settings, now: float | None = None) -> str:
    """The token of a form shown before sign-in: when it was made, signed."""
    stamp = f"{int(now if now is not None else time.time())}.{secrets.token_hex(4)}"
    return f"{stamp}.{_mac(settings, stamp)}"


def pre_session_token_ok(settings: Settings, token: str | None, now: float | None = None) -> bool:
    if not token or token.count(".") != 2 or len(token) > 80:
        return False
    stamp, _, mac = token.rpartition(".")
    if not hmac.compare_digest(mac, _mac(settings, stamp)):
        return False
    made = stamp.split(".", 1)[0]
    if not made.isdigit():
        return False
    age = (now if now is not None else time.time()) - int(made)
    return -60 <= age <= PRE_SESSION_TTL_S


async def check_pre_session(request: Request[Any, Any, Any], settings: Settings) -> None:
    """An unsafe request before sign-in: our own page's form, with its token; else 403."""
    if not same_origin(request) or not pre_session_token_ok(settings, await sent_token(request)):
        raise CsrfRejected()


# --- dependencies (provided in app.main) -----------------------------------------------------


async def provide_maybe_dashboard(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
) -> Dashboard | None:
    viewer = await current(db, request, settings, counts=_shows_counts(request))
    if viewer is not None and "lang" not in request.query_params:
        set_locale(viewer.account.locale)
    return viewer


async def provide_dashboard(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
) -> Dashboard:
    """The signed-in person; an unsafe request must also carry their session's CSRF token."""
    viewer = await provide_maybe_dashboard(request, db, settings)
    if viewer is None:
        if request.method not in SAFE_METHODS:
            raise CsrfRejected()  # a stale tab after sign-out: nothing is done, nothing leaks
        raise DashboardSignInRequired()
    if request.method not in SAFE_METHODS:
        sent = await sent_token(request)
        if not sent or not hmac.compare_digest(sent, viewer.csrf_token):
            raise CsrfRejected()
    return viewer


def role(at_least: str) -> dict[str, Provide]:
    """Dependencies of a handler that acts for the business: ``member``, the signed-in person
    as a member of the business their session works in, with at least ``at_least``
    (master < admin < owner). Use as ``@get(..., dependencies=role("admin"))``."""
    if at_least not in ROLES:
        raise ValueError(f"unknown role {at_least!r}")

    def provide_member(
        request: Request[Any, Any, Any], dashboard: NamedDependency[Dashboard]
    ) -> Member:
        member = dashboard.member
        if member is None:
            raise NoBusiness()
        if not member.at_least(at_least):
            raise RoleRequired()
        if request.method not in SAFE_METHODS:
            place = dashboard.workplace
            subscriptions.refuse_if_read_only(
                place is not None and place.read_only,
                paying=bool(request.route_handler.opt.get("billing")),
            )
        return member

    return {"member": Provide(provide_member, sync_to_thread=False)}


# the roles handlers ask for, as ``dependencies=ADMIN`` and so on
OWNER = role("owner")
ADMIN = role("admin")
ANY_MEMBER = role("master")


def staff_actor(request: Request[Any, Any, Any], member: Member) -> Actor:
    """Who acts, for the audit log: this member of the business, from this request."""
    return actor_of(request, member.account_id, "staff")


DEPENDENCIES = {
    "maybe_dashboard": Provide(provide_maybe_dashboard),
    "dashboard": Provide(provide_dashboard),
}
