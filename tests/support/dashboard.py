"""Dashboard test helpers: a person with a role at a business, and a client signed in as them.

``sign_in_as`` issues a real dashboard session (the ``sessions`` row and its signed JWT, as a
password sign-in does) and puts the cookie in the client, so tests of one dashboard part need
not walk through sign-in; the sign-in itself has its own tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, Membership
from app.security import sessions
from app.settings import Settings, secret_key_for

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Person:
    account_id: int
    email: str


async def add_member(
    session: AsyncSession, business_id: int, role: str, *, staff_id: int | None = None
) -> Person:
    """A new account with ``role`` at the business (committed)."""
    email = f"{role}-{uuid4().hex[:10]}@example.com"
    account = Account(name=f"{role.title()} {email[:6]}", email=email, locale="en")
    session.add(account)
    await session.flush()
    session.add(
        Membership(business_id=business_id, account_id=account.id, role=role, staff_id=staff_id)
    )
    await session.commit()
    return Person(account.id, email)


async def sign_in_as(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    account_id: int,
    *,
    business_id: int | None = None,
) -> str:
    """Put a live dashboard session of the account into ``client``; its CSRF token."""
    token, info = await sessions.issue(
        session, account_id=account_id, kind="dashboard", key=secret_key_for(settings),
        ip="127.0.0.1", user_agent=f"pytest-{uuid4().hex[:8]}",
    )  # fmt: skip
    if business_id is not None:
        await sessions.choose_business(session, info.id, business_id)
    await session.commit()
    client.cookies.set(sessions.COOKIE_NAMES["dashboard"], token)
    return info.csrf_secret


def csrf_of(html: str) -> str:
    """The CSRF token a dashboard page carries (pinned: a meta tag)."""
    found = CSRF_META.search(html)
    assert found, "the page carries no csrf-token meta tag"
    return found.group(1)


def form(csrf: str, **fields: Any) -> dict[str, str]:
    return {"csrf_token": csrf, **{k: str(v) for k, v in fields.items()}}
