"""The account pages' other guarantees: a phone change goes by an SMS code after the password;
sign-ups are limited per client network; an unknown e-mail still costs a bcrypt check (the
time does not tell it from a wrong password); `pozapisi run` says where the demo signs in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import passwords
from app.settings import Settings
from tests.support.dashboard import csrf_of, form, sign_in_as

GOOD = "tulip-river-4417"


def new_email() -> str:
    return f"owner-{uuid4().hex[:10]}@example.com"


async def signed_up(client: httpx.AsyncClient, owner_session: AsyncSession) -> int:
    email = new_email()
    page = await client.get("/dashboard/signup")
    response = await client.post(
        "/dashboard/signup",
        data=form(csrf_of(page.text), business_name="Салон", email=email, password=GOOD),
        follow_redirects=False,
    )
    assert response.status_code == 303
    found = await owner_session.scalar(
        text("SELECT id FROM accounts WHERE email = :e"), {"e": email}
    )
    return int(found)


async def test_phone_change_needs_the_password_and_the_code_sent_by_sms(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    account_id = await signed_up(client, owner_session)
    await sign_in_as(client, owner_session, settings, account_id)  # another device
    client.cookies.clear()
    csrf = await sign_in_as(client, owner_session, settings, account_id)
    phone = f"+7701{uuid4().int % 10_000_000:07d}"
    wrong = await client.post(
        "/dashboard/security/phone?lang=en",
        data=form(csrf, phone=phone, current_password="not-my-password"),
    )
    assert wrong.status_code == 422 and 'id="e-current_password"' in wrong.text
    bad = await client.post(
        "/dashboard/security/phone?lang=en", data=form(csrf, phone="12", current_password=GOOD)
    )
    assert bad.status_code == 422 and 'id="e-phone"' in bad.text
    asked = await client.post(
        "/dashboard/security/phone?lang=en", data=form(csrf, phone=phone, current_password=GOOD)
    )
    assert asked.status_code == 200
    challenge = re.search(r'name="challenge_id" value="(\d+)"', asked.text)
    assert challenge
    await owner_session.commit()
    code = await owner_session.scalar(
        text("SELECT payload->>'code' FROM notifications WHERE idempotency_key = :k"),
        {"k": f"otp.code:{challenge.group(1)}"},
    )
    assert code
    wrong_code = "000000" if code != "000000" else "111111"
    refused = await client.post(
        "/dashboard/security/phone/confirm?lang=en",
        data=form(csrf, phone=phone, challenge_id=challenge.group(1), code=wrong_code),
    )
    assert refused.status_code == 422 and 'id="e-code"' in refused.text
    done = await client.post(
        "/dashboard/security/phone/confirm",
        data=form(csrf, phone=phone, challenge_id=challenge.group(1), code=code),
        follow_redirects=False,
    )
    assert done.status_code == 303
    await owner_session.commit()
    row = (
        await owner_session.execute(
            text("SELECT phone, phone_verified_at FROM accounts WHERE id = :a"), {"a": account_id}
        )
    ).one()
    assert row.phone == phone and row.phone_verified_at is not None
    live = await owner_session.scalar(
        text("SELECT count(*) FROM sessions WHERE account_id = :a AND revoked_at IS NULL"),
        {"a": account_id},
    )
    assert live == 1  # the other device's and the sign-up's sessions ended
    events = await owner_session.scalar(
        text("SELECT count(*) FROM security_events WHERE account_id = :a "
             "AND event = 'phone.changed'"), {"a": account_id},
    )  # fmt: skip
    assert events == 1


@pytest.fixture
async def from_one_network(database: Any, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client whose requests come from one address (the ASGI peer, as a real
    server reports it), on an app of its own (its pool lives on this test's event loop)."""
    from app.main import create_app

    app = create_app(settings, app_url=database.app)
    ip = f"10.{uuid4().int % 250}.{uuid4().int % 250}.{uuid4().int % 250}"
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver.local") as c:
        yield c
    await app.state.db.dispose()


async def test_sign_ups_are_limited_per_network(
    from_one_network: httpx.AsyncClient, settings: Settings
) -> None:
    allowed, _window = settings.rate_limit_signup_ip
    page = await from_one_network.get("/dashboard/signup")
    csrf = csrf_of(page.text)
    for _ in range(allowed):
        response = await from_one_network.post(
            "/dashboard/signup", data=form(csrf, business_name="A", email="x", password="y")
        )
        assert response.status_code == 422
    refused = await from_one_network.post(
        "/dashboard/signup", data=form(csrf, business_name="A", email="x", password="y")
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


def test_an_unknown_email_still_costs_a_bcrypt_check(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[bytes] = []
    real = passwords.bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        checks.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(passwords.bcrypt, "checkpw", spy)
    stored = passwords.hash_password(GOOD)
    assert not passwords.verify_password("wrong-password", stored)
    assert not passwords.verify_password("wrong-password", None)
    assert not passwords.verify_password("ж" * 50, stored)  # too long: still one check
    assert len(checks) == 3
    # the dummy hash has the real cost, so it takes as long
    assert all(int(h.decode().split("$")[2]) == passwords.COST for h in checks)


def test_run_prints_where_the_demo_signs_in() -> None:
    from app import cli

    said = cli.demo_sign_in_text("http://127.0.0.1:8000")
    assert "http://127.0.0.1:8000/dashboard/signin" in said
    assert "owner@demo.pozapisi.kz / demo-salon-owner" in said
    assert "admin@demo.pozapisi.kz / demo-salon-admin" in said
    assert "master@demo.pozapisi.kz / demo-salon-master" in said


async def test_the_confirmation_link_can_be_sent_again_until_confirmed(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    account_id = await signed_up(client, owner_session)
    email = await owner_session.scalar(
        text("SELECT email FROM accounts WHERE id = :a"), {"a": account_id}
    )
    csrf = await sign_in_as(client, owner_session, settings, account_id)
    page = await client.get("/dashboard/security")
    assert "/dashboard/security/verify-email" in page.text

    async def links() -> int:
        await owner_session.commit()
        return int(
            await owner_session.scalar(
                text(
                    "SELECT count(*) FROM notifications WHERE event = 'account.verify_email' "
                    "AND address = :e"
                ),
                {"e": email},
            )
            or 0
        )

    assert await links() == 1
    again = await client.post(
        "/dashboard/security/verify-email", data=form(csrf), follow_redirects=False
    )
    assert again.status_code == 303
    assert await links() == 2
    await owner_session.execute(
        text("UPDATE accounts SET email_verified_at = now() WHERE id = :a"), {"a": account_id}
    )
    await owner_session.commit()
    await client.post("/dashboard/security/verify-email", data=form(csrf))
    assert await links() == 2
    assert "/dashboard/security/verify-email" not in (await client.get("/dashboard/security")).text


async def test_the_security_page_lists_devices_and_signs_the_others_out(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    account_id = await signed_up(client, owner_session)
    client.cookies.clear()
    csrf = await sign_in_as(client, owner_session, settings, account_id)
    page = await client.get("/dashboard/security?lang=en")
    assert page.text.count("signed in ") >= 2 and "this device" in page.text
    done = await client.post(
        "/dashboard/security/sessions", data=form(csrf), follow_redirects=False
    )
    assert done.status_code == 303
    await owner_session.commit()
    live = await owner_session.scalar(
        text("SELECT count(*) FROM sessions WHERE account_id = :a AND revoked_at IS NULL"),
        {"a": account_id},
    )
    assert live == 1
    after = await client.get("/dashboard/security?lang=en&done=sessions")
    assert "You are signed out on every other device." in after.text
    assert "/dashboard/security/sessions" not in after.text  # one device left: no button
