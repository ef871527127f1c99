"""Passwords and e-mail links of dashboard accounts (issue 13 item 1; DESIGN.md security
model: bcrypt cost ≥ 12, more than 72 bytes refused cleanly). The rules of a new password
(NIST SP 800-63B); reset links single use and expiring, only their digest stored; a reset or
a password change ends the other sessions; a verification link confirms the address; a change
of e-mail applies when the link sent to the new address is opened; each is a security event."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from uuid import uuid4

import bcrypt
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import passwords
from app.domain.errors import ValidationFailed
from app.i18n import use_locale
from app.settings import Settings
from tests.support.dashboard import csrf_of, form, sign_in_as

GOOD = "tulip-river-4417"
COOKIE = "__Host-pz_dash"

# --- the rules -----------------------------------------------------------------------------------


@pytest.mark.policy("10.2")
def test_hash_uses_bcrypt_cost_12_read_back_from_the_hash() -> None:
    stored = passwords.hash_password(GOOD)
    assert stored.startswith("$2b$")
    assert int(stored.split("$")[2]) >= 12 and passwords.COST >= 12
    assert passwords.verify_password(GOOD, stored)
    assert not passwords.verify_password(GOOD + "x", stored)
    assert not passwords.verify_password(GOOD, None)  # the dummy path answers no
    assert not passwords.verify_password(GOOD, "not a bcrypt hash")


@pytest.mark.policy("10.2")
def test_73_bytes_of_cyrillic_are_refused_with_their_message_and_72_accepted() -> None:
    too_long = "ж" * 37  # 74 bytes of UTF-8
    assert len(too_long.encode()) == 74
    with use_locale("en"), pytest.raises(ValidationFailed) as refused:
        passwords.check_new_password(too_long)
    message = refused.value.fields["password"]
    assert "72 bytes" in message and "Cyrillic" in message
    with use_locale("en"), pytest.raises(ValidationFailed):
        passwords.check_new_password("ж" * 36 + "a")  # 73 bytes
    exactly = "ж" * 35 + "qz"  # 72 bytes
    assert len(exactly.encode()) == 72
    passwords.check_new_password(exactly)
    passwords.check_new_password("q" * 72)
    # never truncated: the whole 72 bytes count
    stored = passwords.hash_password(exactly)
    assert not passwords.verify_password("ж" * 35 + "qy", stored)
    # a longer one is never a 500 at sign-in either
    assert not passwords.verify_password("ж" * 100, stored)


@pytest.mark.parametrize("common", ["password", "12345678", "Qwerty123", "iloveyou", "PASSWORD1"])
def test_common_passwords_are_refused(common: str) -> None:
    with use_locale("en"), pytest.raises(ValidationFailed) as refused:
        passwords.check_new_password(common)
    assert "too common" in refused.value.fields["password"]


def test_short_and_email_passwords_are_refused() -> None:
    with use_locale("en"), pytest.raises(ValidationFailed) as refused:
        passwords.check_new_password("Ab3$xyz")
    assert "at least 8" in refused.value.fields["password"]
    for same in ("aigerim.salon@example.kz", "AIGERIM.SALON"):
        with use_locale("en"), pytest.raises(ValidationFailed) as refused:
            passwords.check_new_password(same, email="Aigerim.Salon@example.kz")
        assert "e-mail" in refused.value.fields["password"]
    passwords.check_new_password(GOOD, email="aigerim.salon@example.kz")


def test_messages_are_translated() -> None:
    with use_locale("kk"), pytest.raises(ValidationFailed) as refused:
        passwords.check_new_password("short")
    assert re.search("[әғқңөұүһі]", refused.value.fields["password"])


def test_the_common_list_is_shipped_and_large() -> None:
    common = passwords.common_passwords()
    assert len(common) >= 9000
    assert all(p == p.lower() for p in list(common)[:500])


# --- helpers --------------------------------------------------------------------------------------


def new_email() -> str:
    return f"owner-{uuid4().hex[:10]}@example.com"


async def sign_up(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/dashboard/signup")
    response = await client.post(
        "/dashboard/signup?lang=en",
        data=form(csrf_of(page.text), business_name="Салон", email=email, password=GOOD),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


async def account_id_of(owner_session: AsyncSession, email: str) -> int:
    found = await owner_session.scalar(
        text("SELECT id FROM accounts WHERE email = :e"), {"e": email}
    )
    assert found is not None
    return int(found)


async def live_sessions(owner_session: AsyncSession, account_id: int) -> int:
    await owner_session.commit()
    return int(
        await owner_session.scalar(
            text("SELECT count(*) FROM sessions WHERE account_id = :a AND revoked_at IS NULL"),
            {"a": account_id},
        )
        or 0
    )


async def events(owner_session: AsyncSession, account_id: int) -> list[str]:
    await owner_session.commit()
    rows = await owner_session.execute(
        text("SELECT event FROM security_events WHERE account_id = :a ORDER BY id"),
        {"a": account_id},
    )
    return [r.event for r in rows]


async def link_sent(owner_session: AsyncSession, event: str, address: str) -> str:
    await owner_session.commit()
    link = await owner_session.scalar(
        text(
            "SELECT payload->>'link' FROM notifications WHERE event = :ev AND address = :a "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"ev": event, "a": address},
    )
    assert link, f"no {event} to {address}"
    return str(link)


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


async def ask_reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    page = await client.get("/dashboard/forgot")
    return await client.post(
        "/dashboard/forgot?lang=en", data=form(csrf_of(page.text), email=email)
    )


async def post_pre_session(client: httpx.AsyncClient, path: str, **fields: Any) -> httpx.Response:
    page = await client.get(path)
    return await client.post(
        path + "?lang=en", data=form(csrf_of(page.text), **fields), follow_redirects=False
    )


# --- reset -----------------------------------------------------------------------------------------


async def test_reset_link_is_single_use_and_ends_every_session(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    email = new_email()
    await sign_up(client, email)
    account_id = await account_id_of(owner_session, email)
    await sign_in_as(client, owner_session, settings, account_id)  # another device
    client.cookies.clear()
    assert await live_sessions(owner_session, account_id) == 2

    known = await ask_reset(client, email)
    unknown = await ask_reset(client, new_email())
    assert known.status_code == unknown.status_code == 200
    assert "If an account has this e-mail" in known.text
    assert re.sub(r'content="[^"]+"|value="[^"]+"', "", known.text) == re.sub(
        r'content="[^"]+"|value="[^"]+"', "", unknown.text
    )
    link = await link_sent(owner_session, "account.reset_password", email)
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, URL-safe
    stored = await owner_session.scalar(
        text("SELECT token_hash FROM account_tokens WHERE account_id = :a "
             "AND purpose = 'reset_password'"), {"a": account_id},
    )  # fmt: skip
    assert stored == hashlib.sha256(token.encode()).hexdigest()

    page = await client.get(path_of(link))
    assert page.status_code == 200 and 'name="password"' in page.text
    # a bad new password: 422, the link is not spent
    weak = await post_pre_session(client, path_of(link), password="password")
    assert weak.status_code == 422 and 'id="e-password"' in weak.text
    done = await post_pre_session(client, path_of(link), password="new-" + GOOD)
    assert done.status_code == 303
    assert COOKIE in done.headers["set-cookie"]
    # every earlier session ended; only the one the reset just started lives
    assert await live_sessions(owner_session, account_id) == 1
    assert "password.reset" in await events(owner_session, account_id)
    # single use
    again = await client.get(path_of(link))
    assert again.status_code == 404
    replay = await post_pre_session(client, path_of(link), password="other-" + GOOD)
    assert replay.status_code == 404
    # the new password signs in, the old one no longer
    client.cookies.clear()
    old = await post_pre_session(client, "/dashboard/signin", email=email, password=GOOD)
    assert old.status_code == 401
    new = await post_pre_session(client, "/dashboard/signin", email=email, password="new-" + GOOD)
    assert new.status_code == 303


async def test_reset_link_expires(client: httpx.AsyncClient, owner_session: AsyncSession) -> None:
    email = new_email()
    await sign_up(client, email)
    client.cookies.clear()
    await ask_reset(client, email)
    link = await link_sent(owner_session, "account.reset_password", email)
    lifetime = await owner_session.scalar(
        text("SELECT expires_at - created_at FROM account_tokens WHERE token_hash = :h"),
        {"h": hashlib.sha256(link.rsplit("/", 1)[1].encode()).hexdigest()},
    )
    assert lifetime is not None and lifetime.total_seconds() <= 30 * 60
    await owner_session.execute(
        text("UPDATE account_tokens SET expires_at = now() - interval '1 second' "
             "WHERE token_hash = :h"), {"h": hashlib.sha256(link.rsplit("/", 1)[1].encode()).hexdigest()},
    )  # fmt: skip
    await owner_session.commit()
    assert (await client.get(path_of(link))).status_code == 404
    refused = await post_pre_session(client, path_of(link), password="new-" + GOOD)
    assert refused.status_code == 404
    assert "already used or it has expired" in refused.text


async def test_a_forged_reset_token_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/dashboard/reset/" + "A" * 43)).status_code == 404
    assert (await client.get("/dashboard/reset/short")).status_code == 404


# --- change of password on the security page ---------------------------------------------------


async def test_password_change_asks_the_current_one_and_ends_other_sessions(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    email = new_email()
    await sign_up(client, email)
    account_id = await account_id_of(owner_session, email)
    other = httpx.AsyncClient()  # a second device's session row
    await other.aclose()
    await sign_in_as(client, owner_session, settings, account_id)
    client.cookies.clear()
    csrf = await sign_in_as(client, owner_session, settings, account_id)
    assert await live_sessions(owner_session, account_id) == 3
    page = await client.get("/dashboard/security")
    assert page.status_code == 200

    wrong = await client.post(
        "/dashboard/security/password?lang=en",
        data=form(csrf, current_password="nope-nope-nope", password="new-" + GOOD),
    )
    assert wrong.status_code == 422 and 'id="e-current_password"' in wrong.text
    weak = await client.post(
        "/dashboard/security/password?lang=en",
        data=form(csrf, current_password=GOOD, password="ж" * 40),
    )
    assert weak.status_code == 422 and "72 bytes" in weak.text
    assert await live_sessions(owner_session, account_id) == 3

    changed = await client.post(
        "/dashboard/security/password",
        data=form(csrf, current_password=GOOD, password="new-" + GOOD),
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert await live_sessions(owner_session, account_id) == 1  # this one stays
    assert (await client.get("/dashboard/security")).status_code == 200
    assert "password.changed" in await events(owner_session, account_id)
    stored = await owner_session.scalar(
        text("SELECT password_hash FROM accounts WHERE id = :a"), {"a": account_id}
    )
    assert bcrypt.checkpw(("new-" + GOOD).encode(), stored.encode())


async def test_the_app_role_cannot_write_a_password_hash_or_read_tokens(
    database: Any, owner_session: AsyncSession
) -> None:
    import asyncpg

    conn = await asyncpg.connect(database.app)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE accounts SET password_hash = 'x'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM account_tokens")
        # the definer refuses a weak hash and nobody signed in
        with pytest.raises(asyncpg.PostgresError):
            await conn.fetchval("SELECT pz_password_set('$2b$04$abc', NULL)")
        with pytest.raises(asyncpg.PostgresError):
            await conn.fetchval("SELECT pz_security_event('made.up', NULL, NULL, NULL)")
    finally:
        await conn.close()


# --- e-mail verification and change -------------------------------------------------------------


async def test_verification_link_confirms_the_email_once(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    email = new_email()
    await sign_up(client, email)
    account_id = await account_id_of(owner_session, email)
    link = await link_sent(owner_session, "account.verify_email", email)
    client.cookies.clear()
    page = await client.get(path_of(link))
    assert page.status_code == 200 and "<button" in page.text
    # GET wrote nothing
    verified = await owner_session.scalar(
        text("SELECT email_verified_at FROM accounts WHERE id = :a"), {"a": account_id}
    )
    assert verified is None
    no_token = await client.post(path_of(link), data={}, follow_redirects=False)
    assert no_token.status_code == 403
    done = await post_pre_session(client, path_of(link))
    assert done.status_code == 200 and "confirmed" in done.text
    await owner_session.commit()
    verified = await owner_session.scalar(
        text("SELECT email_verified_at FROM accounts WHERE id = :a"), {"a": account_id}
    )
    assert verified is not None
    assert "email.verified" in await events(owner_session, account_id)
    assert (await client.get(path_of(link))).status_code == 404
    # expired after 48 hours
    lifetime = await owner_session.scalar(
        text("SELECT max(expires_at - created_at) FROM account_tokens WHERE account_id = :a "
             "AND purpose = 'verify_email'"), {"a": account_id},
    )  # fmt: skip
    assert lifetime.total_seconds() == 48 * 3600


async def test_email_change_applies_when_the_new_address_link_is_opened(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    email, new = new_email(), new_email()
    await sign_up(client, email)
    account_id = await account_id_of(owner_session, email)
    csrf = await sign_in_as(client, owner_session, settings, account_id)
    wrong = await client.post(
        "/dashboard/security/email?lang=en",
        data=form(csrf, email=new, current_password="not-my-password"),
    )
    assert wrong.status_code == 422 and 'id="e-current_password"' in wrong.text
    asked = await client.post(
        "/dashboard/security/email",
        data=form(csrf, email=new, current_password=GOOD),
        follow_redirects=False,
    )
    assert asked.status_code == 303
    assert (
        await owner_session.scalar(
            text("SELECT email FROM accounts WHERE id = :a"), {"a": account_id}
        )
        == email
    )  # not yet
    link = await link_sent(owner_session, "account.change_email", new)
    assert (await client.get(path_of(link))).status_code == 200
    done = await post_pre_session(client, path_of(link))
    assert done.status_code == 200
    await owner_session.commit()
    row = (
        await owner_session.execute(
            text("SELECT email, email_verified_at FROM accounts WHERE id = :a"), {"a": account_id}
        )
    ).one()
    assert row.email == new and row.email_verified_at is not None
    assert {"email.change_requested", "email.changed"} <= set(
        await events(owner_session, account_id)
    )


ACCOUNT_DEFINERS = {
    "pz_signup": "TABLE(account_id bigint, business_id bigint, slug text)",
    "pz_signup_business": "TABLE(business_id bigint, slug text)",
    "pz_password_for_email": "TABLE(account_id bigint, password_hash text, is_member boolean)",
    "pz_password_set": "integer",
    "pz_token_issue": "text",
    "pz_token_valid": "boolean",
    "pz_token_spend": "bigint",
    "pz_security_event": "void",
}


async def test_the_account_functions_run_as_owner_for_the_app_only(
    owner_session: AsyncSession,
) -> None:
    """What the app may not do itself goes through these; nobody else may call them, and each
    pins its search path (a definer function must not find objects a caller planted)."""
    rows = await owner_session.execute(
        text(
            "SELECT p.proname, pg_get_function_result(p.oid) AS result, p.prosecdef, "
            "p.proconfig, has_function_privilege('public', p.oid, 'EXECUTE') AS public, "
            "has_function_privilege('pozapisi_app', p.oid, 'EXECUTE') AS app, "
            "has_function_privilege('pozapisi_worker', p.oid, 'EXECUTE') AS worker "
            "FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace "
            "AND p.proname = ANY(:names)"
        ),
        {"names": list(ACCOUNT_DEFINERS)},
    )
    found = {r.proname: r for r in rows}
    assert {name: r.result for name, r in found.items()} == ACCOUNT_DEFINERS
    for name, r in found.items():
        assert (r.prosecdef, r.public, r.app, r.worker) == (True, False, True, False), name
        assert any(c.startswith("search_path=") for c in r.proconfig or []), name
