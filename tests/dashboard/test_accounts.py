"""Dashboard accounts (issue 13 item 1; DESIGN.md "Dashboard contracts"): sign-up makes an
account, its business and the owner's membership and signs in with the pinned cookie; refusals
are 422 with the message beside the field; the form needs its CSRF token; password sign-in
answers alike for an unknown e-mail and a wrong password, and is throttled; a one-time code
signs a member in; security events are written; the demo's owner signs in with the pinned
credentials."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import ValidationFailed
from app.domain.staff_accounts import check_slug, slug_from_name
from app.settings import Settings
from tests.factories import new_business
from tests.support.dashboard import csrf_of, form

COOKIE = "__Host-pz_dash"
GOOD_PASSWORD = "tulip-river-4417"


def new_email() -> str:
    return f"owner-{uuid4().hex[:10]}@example.com"


async def pre_session(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200
    token = csrf_of(page.text)
    assert f'name="csrf_token" value="{token}"' in page.text
    return token


async def sign_up(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    csrf = await pre_session(client, "/dashboard/signup")
    values = {"business_name": "Салон Ақ Бота", "email": new_email(), "password": GOOD_PASSWORD}
    values.update(fields)
    return await client.post(
        "/dashboard/signup?lang=en", data=form(csrf, **values), follow_redirects=False
    )


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    csrf = await pre_session(client, "/dashboard/signin")
    return await client.post(
        "/dashboard/signin?lang=en", data=form(csrf, email=email, password=password),
        follow_redirects=False,
    )  # fmt: skip


async def events_of(owner_session: AsyncSession, account_id: int | None) -> list[str]:
    rows = await owner_session.execute(
        text("SELECT event FROM security_events WHERE account_id IS NOT DISTINCT FROM :a "
             "ORDER BY id"), {"a": account_id},
    )  # fmt: skip
    return [r.event for r in rows]


async def account_by_email(owner_session: AsyncSession, email: str) -> Any:
    return (
        await owner_session.execute(
            text(
                "SELECT id, email, email_verified_at, locale, password_hash FROM accounts "
                "WHERE lower(email) = lower(:e)"
            ),
            {"e": email},
        )
    ).one()


# --- sign-up -----------------------------------------------------------------------------------


async def test_sign_up_makes_account_business_and_owner_and_signs_in(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    email = new_email()
    response = await sign_up(client, email=email.upper(), business_name="  Барбершоп  Қыран ")
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/dashboard/")
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in cookie, cookie
    account = await account_by_email(owner_session, email)
    assert account.email == email and account.email_verified_at is None
    business = (
        await owner_session.execute(
            text(
                "SELECT b.id, b.name, b.slug, m.role FROM businesses b JOIN memberships m "
                "ON m.business_id = b.id WHERE m.account_id = :a"
            ),
            {"a": account.id},
        )
    ).one()
    assert (business.name, business.role) == ("Барбершоп Қыран", "owner")
    assert re.fullmatch(r"barbershop-qyran(-\d+)?", business.slug)
    # the session works: the dashboard opens for the new owner
    home = await client.get("/dashboard/", follow_redirects=False)
    assert home.status_code == 200
    # a verification link went by e-mail, and its business's creation is audited
    queued = (
        await owner_session.execute(
            text(
                "SELECT address, channel, payload FROM notifications "
                "WHERE event = 'account.verify_email' AND address = :e"
            ),
            {"e": email},
        )
    ).one()
    assert queued.channel == "email"
    assert (
        queued.payload["link"].startswith("http") and "/dashboard/verify/" in queued.payload["link"]
    )
    audited = await owner_session.scalar(
        text(
            "SELECT count(*) FROM audit_log WHERE business_id = :b AND action = 'business.create'"
        ),
        {"b": business.id},
    )
    assert audited == 1
    assert "dashboard.sign_up" in await events_of(owner_session, account.id)


async def test_sign_up_without_csrf_token_is_403(client: httpx.AsyncClient) -> None:
    await client.get("/dashboard/signup")
    values = {"business_name": "Без токена", "email": new_email(), "password": GOOD_PASSWORD}
    response = await client.post("/dashboard/signup", data=values, follow_redirects=False)
    assert response.status_code == 403
    forged = await client.post(
        "/dashboard/signup", data=form("1.2.3", **values), follow_redirects=False
    )
    assert forged.status_code == 403
    assert COOKIE not in response.headers.get("set-cookie", "")


async def test_sign_up_refusals_are_422_beside_the_fields(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    email = new_email()
    response = await sign_up(client, business_name="A", email="not-an-email", password="short")
    assert response.status_code == 422
    html = response.text
    for field in ("business_name", "email", "password"):
        assert f'id="e-{field}"' in html, field
    assert "2 to 200 characters" in html
    assert "at least 8 characters" in html
    # nothing half-written
    assert (
        await owner_session.scalar(
            text("SELECT count(*) FROM accounts WHERE lower(email) = :e"), {"e": email}
        )
        == 0
    )
    # in the person's language
    csrf = await pre_session(client, "/dashboard/signup?lang=ru")
    russian = await client.post(
        "/dashboard/signup?lang=ru", data=form(csrf, business_name="Салон", email=new_email(),
                                               password="password"),
    )  # fmt: skip
    assert russian.status_code == 422
    assert 'id="e-password"' in russian.text
    assert re.search("[а-яА-Я]{4}", russian.text.split('id="e-password"')[1][:300])


async def test_sign_up_with_a_taken_email_is_refused(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    email = new_email()
    assert (await sign_up(client, email=email)).status_code == 303
    client.cookies.clear()
    again = await sign_up(client, email=email.upper(), business_name="Second salon")
    assert again.status_code == 422
    assert "An account with this e-mail exists" in again.text
    assert 'id="e-email"' in again.text
    count = await owner_session.scalar(
        text("SELECT count(*) FROM businesses WHERE name = 'Second salon' AND id IN "
             "(SELECT business_id FROM memberships m JOIN accounts a ON a.id = m.account_id "
             "WHERE lower(a.email) = :e)"), {"e": email},
    )  # fmt: skip
    assert count == 0


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Салон красоты «Ақ Бота»", "salon-krasoty-aq-bota"),
        ("Әсем Ғажайып Қала Ңң Өнер Ұлы Үй Һ Іні", "asem-gazhayyp-qala-nn-oner-uly-uy-h-ini"),
        ("Щука и Ёж", "shchuka-i-ezh"),
        ("Café Zürich 24/7", "cafe-zurich-24-7"),
        ("Ая", "aya"),
        ("Я", "ya-kz"),
        ("!!!", "business"),
        ("Dashboard", "dashboard-kz"),
    ],
)
def test_slug_from_name_transliterates_russian_and_kazakh(name: str, slug: str) -> None:
    assert slug_from_name(name) == slug
    check_slug(slug)


def test_slug_from_name_fits_63_characters_and_check_slug_refuses_bad_ones() -> None:
    slug = slug_from_name("Очень длинное название " * 10)
    assert 3 <= len(slug) <= 63 and not slug.endswith("-")
    for bad in ("ab", "-abc", "abc-", "a--b", "Abc", "абв", "x" * 64, "app"):
        with pytest.raises(ValidationFailed) as refused:
            check_slug(bad)
        assert "slug" in refused.value.fields


async def test_slug_collisions_get_a_number(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    name = f"Салон {uuid4().hex[:6]}"
    slugs = []
    for _ in range(3):
        email = new_email()
        client.cookies.clear()
        assert (await sign_up(client, email=email, business_name=name)).status_code == 303
        slugs.append(
            await owner_session.scalar(
                text(
                    "SELECT b.slug FROM businesses b JOIN memberships m ON m.business_id = b.id "
                    "JOIN accounts a ON a.id = m.account_id WHERE a.email = :e"
                ),
                {"e": email},
            )
        )
    base = slug_from_name(name)
    assert slugs == [base, f"{base}-2", f"{base}-3"]


# --- sign-in -----------------------------------------------------------------------------------


async def owner_with_password(client: httpx.AsyncClient) -> str:
    email = new_email()
    assert (await sign_up(client, email=email)).status_code == 303
    client.cookies.clear()
    return email


async def test_sign_in_with_password_then_next(client: httpx.AsyncClient) -> None:
    email = await owner_with_password(client)
    csrf = await pre_session(client, "/dashboard/signin?next=/dashboard/security")
    response = await client.post(
        "/dashboard/signin",
        data=form(csrf, email=email.upper(), password=GOOD_PASSWORD, next="/dashboard/security"),
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/security"
    assert "HttpOnly" in response.headers["set-cookie"]
    assert (await client.get("/dashboard/security")).status_code == 200
    # an outside address in next is ignored
    client.cookies.clear()
    csrf = await pre_session(client, "/dashboard/signin")
    away = await client.post(
        "/dashboard/signin",
        data=form(csrf, email=email, password=GOOD_PASSWORD, next="https://evil.example/"),
        follow_redirects=False,
    )
    assert away.status_code == 303 and away.headers["location"] == "/dashboard"


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    email = await owner_with_password(client)
    wrong = await sign_in(client, email, "not-the-password")
    unknown_email = new_email()
    unknown = await sign_in(client, unknown_email, "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert COOKIE not in wrong.headers.get("set-cookie", "")

    def message(html: str) -> str:
        found = re.search(r'class="error form-error" role="alert">([^<]+)<', html)
        assert found
        return found.group(1)

    assert message(wrong.text) == message(unknown.text) == "The e-mail or password is wrong."
    account = await account_by_email(owner_session, email)
    assert "dashboard.sign_in_failed" in await events_of(owner_session, account.id)
    unknown_events = await owner_session.scalar(
        text("SELECT count(*) FROM security_events WHERE account_id IS NULL "
             "AND event = 'dashboard.sign_in_failed'"),
    )  # fmt: skip
    assert unknown_events >= 1


async def test_sign_in_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/dashboard/signin", data={"email": new_email(), "password": "x" * 10},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 403


async def test_repeated_failures_are_throttled_with_retry_after(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = await owner_with_password(client)
    allowed, _window = settings.rate_limit_password
    for _ in range(allowed):
        assert (await sign_in(client, email, "wrong-password-1")).status_code == 401
    refused = await sign_in(client, email, GOOD_PASSWORD)  # even the right one, for now
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    # an unknown address is counted alike
    stranger = new_email()
    for _ in range(allowed):
        assert (await sign_in(client, stranger, "wrong-password-1")).status_code == 401
    assert (await sign_in(client, stranger, "wrong-password-1")).status_code == 429


async def test_a_person_without_a_business_gets_the_same_refusal(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    email = await owner_with_password(client)
    account = await account_by_email(owner_session, email)
    await owner_session.execute(
        text("DELETE FROM memberships WHERE account_id = :a"), {"a": account.id}
    )
    await owner_session.commit()
    response = await sign_in(client, email, GOOD_PASSWORD)
    assert response.status_code == 401
    assert "The e-mail or password is wrong." in response.text


async def test_sign_in_with_a_code_for_members_only(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    from app.domain import otp

    email = await owner_with_password(client)
    csrf = await pre_session(client, "/dashboard/signin?tab=code")
    sent = await client.post("/dashboard/signin/code/send", data=form(csrf, contact=email))
    assert sent.status_code == 200
    challenge = re.search(r'name="challenge_id" value="(\d+)"', sent.text)
    assert challenge
    # the code is in the outbox; read it as the relay would
    code = await owner_session.scalar(
        text("SELECT payload->>'code' FROM notifications WHERE idempotency_key = :k"),
        {"k": f"otp.code:{challenge.group(1)}"},
    )
    assert code and otp.CODE_TTL
    wrong = await client.post(
        "/dashboard/signin/code",
        data=form(csrf, contact=email, challenge_id=challenge.group(1), code="000000"
                  if code != "000000" else "111111"),
        follow_redirects=False,
    )  # fmt: skip
    assert wrong.status_code == 422 and 'id="e-code"' in wrong.text
    right = await client.post(
        "/dashboard/signin/code",
        data=form(csrf, contact=email, challenge_id=challenge.group(1), code=code),
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert COOKIE in right.headers["set-cookie"]
    account = await account_by_email(owner_session, email)
    assert "dashboard.sign_in_code" in await events_of(owner_session, account.id)

    # a person who works in no business: the wrong-code answer, no session
    client.cookies.clear()
    stranger = new_email()
    csrf = await pre_session(client, "/dashboard/signin?tab=code")
    sent = await client.post("/dashboard/signin/code/send", data=form(csrf, contact=stranger))
    challenge = re.search(r'name="challenge_id" value="(\d+)"', sent.text)
    assert challenge
    code = await owner_session.scalar(
        text("SELECT payload->>'code' FROM notifications WHERE idempotency_key = :k"),
        {"k": f"otp.code:{challenge.group(1)}"},
    )
    refused = await client.post(
        "/dashboard/signin/code",
        data=form(csrf, contact=stranger, challenge_id=challenge.group(1), code=code),
        follow_redirects=False,
    )
    assert refused.status_code == 422
    assert COOKIE not in refused.headers.get("set-cookie", "")


async def test_a_member_without_business_is_sent_to_create_one(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    from tests.support.dashboard import sign_in_as

    email = await owner_with_password(client)
    account = await account_by_email(owner_session, email)
    csrf = await sign_in_as(client, owner_session, settings, account.id)
    await owner_session.execute(
        text("DELETE FROM memberships WHERE account_id = :a"), {"a": account.id}
    )
    await owner_session.commit()
    home = await client.get("/dashboard/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/dashboard/new-business"
    page = await client.get("/dashboard/new-business")
    assert page.status_code == 200
    refused = await client.post(
        "/dashboard/new-business", data=form(csrf, business_name="x"), follow_redirects=False
    )
    assert refused.status_code == 422 and 'id="e-business_name"' in refused.text
    created = await client.post(
        "/dashboard/new-business", data=form(csrf, business_name="Новый салон"),
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303
    assert (await client.get("/dashboard/", follow_redirects=False)).status_code == 200
    role = await owner_session.scalar(
        text("SELECT role FROM memberships WHERE account_id = :a"), {"a": account.id}
    )
    assert role == "owner"


# --- the demo ----------------------------------------------------------------------------------


async def test_demo_logins_sign_in_with_the_pinned_credentials(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    from app.domain.demo import DEMO_LOGINS, load_demo

    business = await load_demo(owner_session)
    await load_demo(owner_session)  # idempotent
    await owner_session.commit()
    roles = dict(
        (
            await owner_session.execute(
                text(
                    "SELECT a.email, m.role FROM memberships m JOIN accounts a "
                    "ON a.id = m.account_id WHERE m.business_id = :b AND a.email LIKE "
                    "'%@demo.pozapisi.kz'"
                ),
                {"b": business.id},
            )
        ).all()
    )
    assert roles == {email: role for role, email, _ in DEMO_LOGINS}
    master_staff = await owner_session.scalar(
        text("SELECT m.staff_id FROM memberships m JOIN accounts a ON a.id = m.account_id "
             "WHERE a.email = 'master@demo.pozapisi.kz'"),
    )  # fmt: skip
    assert master_staff is not None
    response = await sign_in(client, "owner@demo.pozapisi.kz", "demo-salon-owner")
    assert response.status_code == 303
    home = await client.get("/dashboard/")
    assert home.status_code == 200 and "Ақ Бота" in home.text
    owner = await account_by_email(owner_session, "owner@demo.pozapisi.kz")
    assert owner.email_verified_at is not None


async def test_factory_business_has_no_password_sign_in(
    client: httpx.AsyncClient, owner_session: AsyncSession
) -> None:
    """An account without a password (signed in by code only) is refused like a wrong one."""
    business = await new_business(owner_session)
    email = new_email()
    await owner_session.execute(
        text("UPDATE accounts SET email = :e, password_hash = NULL WHERE id = :a"),
        {"e": email, "a": business.owner_account_id},
    )
    await owner_session.commit()
    assert (await sign_in(client, email, GOOD_PASSWORD)).status_code == 401
