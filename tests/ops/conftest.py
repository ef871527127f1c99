"""Operators of the console for the tests: enrolled as ``pozapisi ops add-operator`` does, and
signed in through the two pages as a person would (password, then a code)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import uuid4

import httpx
import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import operators
from app.settings import Settings, secret_key_for
from tests.support.dashboard import csrf_of, form

TICKET = re.compile(r'name="ticket" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class OperatorLogin:
    account_id: int
    email: str
    password: str
    totp: pyotp.TOTP
    recovery_codes: tuple[str, ...]


async def enrol(session: AsyncSession, settings: Settings, role: str) -> OperatorLogin:
    email = f"op-{role}-{uuid4().hex[:10]}@pozapisi.kz"
    made = await operators.enrol(session, secret_key_for(settings), email=email, role=role)
    await session.commit()
    assert made.password is not None  # a new account: its first password
    totp = pyotp.parse_uri(made.provisioning_uri)
    assert isinstance(totp, pyotp.TOTP)
    return OperatorLogin(made.account_id, email, made.password, totp, made.recovery_codes)


@pytest.fixture
async def support(owner_session: AsyncSession, settings: Settings) -> OperatorLogin:
    return await enrol(owner_session, settings, "support")


@pytest.fixture
async def privacy_officer(owner_session: AsyncSession, settings: Settings) -> OperatorLogin:
    return await enrol(owner_session, settings, "privacy")


async def password_step(
    client: httpx.AsyncClient, email: str, password: str
) -> tuple[httpx.Response, str | None]:
    """Step one; the page it answers with and the ticket for step two (None when refused)."""
    page = await client.get("/ops/signin")
    answer = await client.post(
        "/ops/signin", data=form(csrf_of(page.text), email=email, password=password)
    )
    found = TICKET.search(answer.text)
    return answer, found.group(1) if found else None


async def code_step(client: httpx.AsyncClient, ticket: str, code: str) -> httpx.Response:
    page = await client.get("/ops/signin")
    return await client.post(
        "/ops/signin/second-factor",
        data=form(csrf_of(page.text), ticket=ticket, code=code),
        follow_redirects=False,
    )


async def sign_in(client: httpx.AsyncClient, login: OperatorLogin, code: str | None = None) -> str:
    """A signed-in console in ``client``; the CSRF token of its pages."""
    _answer, ticket = await password_step(client, login.email, login.password)
    assert ticket is not None
    done = await code_step(client, ticket, code or login.totp.now())
    assert done.status_code == 303, done.text
    queue = await client.get("/ops/")
    assert queue.status_code == 200
    return csrf_of(queue.text)
