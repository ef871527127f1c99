"""Mini App pages: sessions, CSRF, headers, and one person never seeing another's booking."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import BOT_TOKEN
from tests.factories import create_business, local_start, next_telegram_id
from tests.helpers import TelegramUser, booking_body, grant_consent
from tests.support.telegram import make_init_data

COOKIE = "__Host-pz_app"


async def sign_in(client: Any, user: TelegramUser, *, user_agent: str | None = None) -> str:
    """Sign ``client`` in (its cookie jar) through POST /auth/telegram; returns the CSRF token.

    One in-process client per test: /api/v1 reads no cookies, so the same client also makes
    the API calls, and switching person is signing in again."""
    client.cookies.clear()
    init = make_init_data(BOT_TOKEN, user_id=user.id, language_code=user.language_code)
    headers = {"User-Agent": user_agent} if user_agent else {}
    response = await client.post("/auth/telegram", json={"init_data": init}, headers=headers)
    assert response.status_code == 200
    page = await client.get("/app/me", headers=headers)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token, "signed-in pages carry the session's CSRF token"
    return token.group(1)


async def booked(
    client: httpx.AsyncClient, user: TelegramUser, owner_session: Any
) -> tuple[Any, int]:
    business = await create_business(owner_session)
    await owner_session.commit()
    await grant_consent(client, user)
    response = await client.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, local_start(business, 3)),
        headers=user.headers(),
    )
    assert response.status_code == 201
    return business, int(response.json()["id"])


async def test_unsafe_request_without_csrf_token_is_refused(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    user = TelegramUser()
    _business, booking_id = await booked(client, user, owner_session)
    browser = client
    token = await sign_in(client, user)
    refused = await browser.post(f"/app/bookings/{booking_id}/cancel")
    assert refused.status_code == 403
    forged = await browser.post(
        f"/app/bookings/{booking_id}/cancel", headers={"X-CSRF-Token": "x" * 43}
    )
    assert forged.status_code == 403
    status = await owner_session.scalar(
        text("SELECT status FROM bookings WHERE id = :id"), {"id": booking_id}
    )
    await owner_session.commit()
    assert status == "confirmed"  # nothing changed
    accepted = await browser.post(
        f"/app/bookings/{booking_id}/cancel",
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    status = await owner_session.scalar(
        text("SELECT status FROM bookings WHERE id = :id"), {"id": booking_id}
    )
    assert status == "cancelled"


async def test_a_form_field_token_works_without_javascript(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    user = TelegramUser()
    _business, booking_id = await booked(client, user, owner_session)
    browser = client
    token = await sign_in(client, user)
    response = await browser.post(
        f"/app/bookings/{booking_id}/cancel", data={"_csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303


@pytest.mark.policy("9.2")
async def test_session_cookie_flags_and_logout_revokes(client) -> None:  # type: ignore[no-untyped-def]
    user = TelegramUser()
    init = make_init_data(BOT_TOKEN, user_id=user.id)
    response = await client.post("/auth/telegram", json={"init_data": init})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/"):
        assert flag in cookie
    assert "Domain=" not in cookie  # __Host- cookies are bound to the host
    page = await client.get("/app/me")
    assert page.status_code == 200
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    session_cookie = client.cookies.get(COOKIE)
    out = await client.post("/app/logout", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert "Max-Age=0" in out.headers["set-cookie"]
    # the same token presented again (say, a copy an attacker kept) is dead at once
    client.cookies.clear()
    client.cookies.set(COOKIE, session_cookie or "", domain="testserver.local")
    again = await client.get("/app/me", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/app/signin")


async def test_another_persons_booking_is_not_found(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    owner_of_booking = TelegramUser()
    business, booking_id = await booked(client, owner_of_booking, owner_session)
    stranger = TelegramUser()
    browser = client
    token = await sign_in(client, stranger)
    for url in (f"/app/bookings/{booking_id}", f"/app/bookings/{booking_id}/calendar.ics",
                f"/app/bookings/{booking_id}/reschedule"):  # fmt: skip
        assert (await browser.get(url)).status_code == 404, url
    cancel = await browser.post(
        f"/app/bookings/{booking_id}/cancel", headers={"X-CSRF-Token": token}
    )
    assert cancel.status_code == 404
    message = await browser.post(
        f"/app/bookings/{booking_id}/messages",
        data={"body": "hi"},
        headers={"X-CSRF-Token": token},
    )
    assert message.status_code == 404
    mine = await browser.get("/app/bookings")
    assert business.slug not in mine.text and str(booking_id) not in re.findall(
        r"/app/bookings/(\d+)", mine.text
    )


async def test_security_headers(client, owner_session) -> None:  # type: ignore[no-untyped-def]
    business = await create_business(owner_session)
    await owner_session.commit()
    page = await client.get(f"/app/b/{business.slug}")
    csp = page.headers["content-security-policy"]
    script_src = re.search(r"script-src ([^;]+)", csp).group(1)  # type: ignore[union-attr]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "https://web.telegram.org" in csp.split("frame-ancestors", 1)[1]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and "hx-on" not in page.text
    partial = await client.get(
        f"/app/b/{business.slug}/s/{business.service_id}/times", headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200
    assert "HX-Request" in partial.headers["vary"]
    assert partial.text.lstrip().startswith("<section")


async def code_page(client: Any, contact: str) -> tuple[int, str]:
    """The page after asking for a sign-in code, with what must differ from one ask to the next
    (the contact as typed, the challenge's id) blanked out."""
    client.cookies.clear()
    response = await client.post("/app/signin", data={"contact": contact, "next": "/app/bookings"},
                                 headers={"Origin": "https://testserver.local"})  # fmt: skip
    assert 'name="challenge_id"' in response.text, response.text
    page = response.text.replace(contact, "CONTACT")
    page = re.sub(r'(name="challenge_id" value=")[^"]*', r"\1ID", page)
    return response.status_code, page


@pytest.mark.parametrize(
    ("taken", "free"),
    [("+77015550101", "+77015550102"), ("taken-person@example.kz", "free-person@example.kz")],
    ids=["phone", "email"],
)
async def test_sign_in_answers_the_same_for_anyone(
    client: Any, owner_session: Any, taken: str, free: str
) -> None:
    """No enumeration: the page after asking for a code is the same whether or not an account
    has the contact."""
    field = "email" if "@" in taken else "phone"
    await owner_session.execute(
        text(f"INSERT INTO accounts (name, {field}, locale) VALUES ('Taken', :c, 'ru') "
             "ON CONFLICT DO NOTHING"),
        {"c": taken},
    )  # fmt: skip
    await owner_session.commit()
    assert await code_page(client, taken) == await code_page(client, free)


async def test_sign_in_from_another_site_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/app/signin",
        data={"contact": "+7 701 000 00 02"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


async def test_forged_initdata_header_signs_nobody_in(client) -> None:  # type: ignore[no-untyped-def]
    forged = make_init_data("999:other-bot-token", user_id=next_telegram_id())
    response = await client.get(
        "/app/bookings", headers={"X-Telegram-Init-Data": forged}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/app/signin")
    assert "set-cookie" not in response.headers


PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Mobile Safari/537.36 Telegram-Android/11.2.1 (Samsung SM-A546E; Android 14)"
)
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


async def device_session(client: Any, user: TelegramUser, user_agent: str) -> tuple[str, str]:
    """Sign in from a device: (its session cookie, its CSRF token)."""
    token = await sign_in(client, user, user_agent=user_agent)
    cookie = client.cookies.get(COOKIE)
    assert cookie
    return cookie, token


def use(client: Any, cookie: str) -> None:
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie, domain="testserver.local")


@pytest.mark.policy("2.6")
async def test_a_person_sees_where_they_are_signed_in_and_ends_the_other_sessions(
    client, owner_session
) -> None:  # type: ignore[no-untyped-def]
    person = TelegramUser()
    phone, phone_csrf = await device_session(client, person, PHONE_UA)
    desktop, _ = await device_session(client, person, DESKTOP_UA)
    stranger_ua = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"
    await device_session(client, TelegramUser(), stranger_ua)

    use(client, phone)
    page = await client.get("/app/me")
    found = re.findall(r"<li( aria-current=\"true\")?>\s*<span>([^<]+)", page.text)
    devices = [(current, label.strip()) for current, label in found]
    assert sorted(devices) == [("", "Chrome · Windows"),
                               (' aria-current="true"', "Telegram · Android · Samsung SM-A546E")]  # fmt: skip
    assert "Firefox" not in page.text  # another person's session is never shown
    assert "Выйти на всех других устройствах" in page.text  # the person's language (ru)

    # without the session's CSRF token nothing ends
    refused = await client.post("/app/me/sessions/sign-out-others")
    assert refused.status_code == 403
    use(client, desktop)
    assert (await client.get("/app/me", follow_redirects=False)).status_code == 200

    use(client, phone)
    done = await client.post(
        "/app/me/sessions/sign-out-others",
        headers={"X-CSRF-Token": phone_csrf, "User-Agent": PHONE_UA},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/app/me?saved=sessions"
    page = await client.get("/app/me?saved=sessions")
    assert "Вы вышли из аккаунта на всех других устройствах." in page.text
    assert "Chrome · Windows" not in page.text
    assert "Выйти на всех других устройствах" not in page.text  # nothing else to end

    use(client, desktop)  # the other device's token died at once
    gone = await client.get("/app/me", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/app/signin")

    event = (
        await owner_session.execute(
            text(
                "SELECT e.event, e.user_agent FROM security_events e JOIN accounts a "
                "ON a.id = e.account_id WHERE a.telegram_id = :t"
            ),
            {"t": person.id},
        )
    ).all()
    assert event == [("sessions.signed_out_others", PHONE_UA)]


async def test_where_you_are_signed_in_speaks_kazakh(client) -> None:  # type: ignore[no-untyped-def]
    person = TelegramUser(language_code="kk")
    await device_session(client, person, PHONE_UA)
    await device_session(client, person, "curl/8.5.0")
    page = await client.get("/app/me")
    assert "Сіз кірген құрылғылар" in page.text
    assert "осы құрылғы" in page.text and "Басқа құрылғылардың бәрінен шығу" in page.text


async def test_a_dead_token_leaves_the_transaction_acting_for_nobody(db, owner_session) -> None:  # type: ignore[no-untyped-def]
    """Checking a token acts for the account its signature names (so row-level security shows
    that account's sessions); when the row does not confirm it, that is undone."""
    from app.security import sessions
    from tests.conftest import SECRET_KEY
    from tests.workers.conftest import new_account

    person = await new_account(owner_session)
    await owner_session.commit()
    async with db.transaction() as session:
        token, info = await sessions.issue(
            session, account_id=person.id, kind="miniapp", key=SECRET_KEY, ip=None,
            user_agent=None,
        )  # fmt: skip
    acting = text("SELECT coalesce(current_setting('app.account_id', true), '')")
    async with db.transaction() as session:
        assert await sessions.verify(session, token, kind="miniapp", key=SECRET_KEY) == info
        assert await session.scalar(acting) == str(person.id)
    async with db.transaction(account_id=person.id) as session:
        await sessions.revoke(session, info.id)
    async with db.transaction() as session:
        assert await sessions.verify(session, token, kind="miniapp", key=SECRET_KEY) is None
        assert await session.scalar(acting) == ""
