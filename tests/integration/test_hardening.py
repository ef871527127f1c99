"""Hardening against an attacker with a browser: no account enumeration through a contact
change, no login CSRF, no request id of the caller's in the audit chain, and the client's
address taken from a forwarding header only when a trusted proxy sent it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import BOT_TOKEN
from tests.helpers import TelegramUser
from tests.integration.test_miniapp_security import booked, sign_in
from tests.support.telegram import make_init_data


async def _contact_page(client: Any, token: str, contact: str) -> tuple[int, str]:
    """The page after asking to move to ``contact``, with what differs between two asks (the
    contact as typed, the challenge's id, the session's token) blanked out."""
    response = await client.post("/app/me/contact", data={"contact": contact, "_csrf": token})
    page = response.text.replace(contact, "CONTACT")
    page = re.sub(r'(name="challenge_id" value=")[^"]*', r"\1ID", page)
    return response.status_code, page


@pytest.mark.policy("8.2")
@pytest.mark.parametrize(
    ("taken", "free"),
    [("+77015550201", "+77015550202"), ("held-by-someone@example.kz", "held-by-no-one@example.kz")],
    ids=["phone", "email"],
)
async def test_a_contact_change_answers_the_same_for_a_taken_and_a_free_address(
    client: Any, owner_session: Any, taken: str, free: str
) -> None:
    field = "email" if "@" in taken else "phone"
    await owner_session.execute(
        text(f"INSERT INTO accounts (name, {field}, locale) VALUES ('Holder', :c, 'ru') "
             "ON CONFLICT DO NOTHING"),
        {"c": taken},
    )  # fmt: skip
    await owner_session.commit()
    token = await sign_in(client, TelegramUser())
    taken_answer = await _contact_page(client, token, taken)
    free_answer = await _contact_page(client, token, free)
    assert taken_answer[0] == free_answer[0] == 200
    assert 'name="challenge_id"' in taken_answer[1]  # both asks went on to the code step
    assert taken_answer == free_answer


async def test_a_cross_site_plain_text_sign_in_is_refused(client: Any) -> None:
    """Login CSRF: a foreign page posting text/plain (no preflight) signs nobody in."""
    init = make_init_data(BOT_TOKEN, user_id=TelegramUser().id)
    body = json.dumps({"init_data": init})
    plain = await client.post(
        "/auth/telegram", content=body,
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )  # fmt: skip
    assert plain.status_code == 415
    assert "set-cookie" not in plain.headers
    foreign = await client.post(
        "/auth/telegram", content=body,
        headers={"Content-Type": "application/json", "Origin": "https://evil.example"},
    )  # fmt: skip
    assert foreign.status_code == 403
    assert foreign.json()["error"] == "forbidden"
    assert "set-cookie" not in foreign.headers
    for origin in ("https://testserver.local", "https://web.telegram.org"):
        allowed = await client.post(
            "/auth/telegram", content=body,
            headers={"Content-Type": "application/json", "Origin": origin},
        )  # fmt: skip
        assert allowed.status_code == 200, origin
        assert "set-cookie" in allowed.headers


async def test_a_callers_request_id_never_reaches_the_audit_chain(
    client: Any, owner_session: Any
) -> None:
    user = TelegramUser()
    forged = "forged-" + "x" * 40
    _business, booking_id = await booked(client, user, owner_session)
    response = await client.post(
        f"/api/v1/me/bookings/{booking_id}/cancel",
        headers=user.headers(**{"X-Request-Id": forged}),
    )
    assert response.status_code == 200
    ours = response.headers["x-request-id"]
    assert ours != forged and re.fullmatch(r"[0-9a-f]{16}", ours)
    ids = await owner_session.scalars(
        text("SELECT request_id FROM audit_log WHERE entity = 'booking' AND entity_id = :b"),
        {"b": booking_id},
    )
    recorded = set(ids)
    await owner_session.commit()
    assert ours in recorded
    assert forged not in recorded


async def _sessions_of(owner_session: Any, telegram_id: int) -> list[tuple[str, str | None]]:
    rows = await owner_session.execute(
        text(
            "SELECT s.id, s.user_agent FROM sessions s JOIN accounts a ON a.id = s.account_id "
            "WHERE a.telegram_id = :t AND s.revoked_at IS NULL"
        ),
        {"t": telegram_id},
    )
    found = [(r.id, r.user_agent) for r in rows]
    await owner_session.commit()
    return found


async def test_one_session_per_device_however_often_telegram_signs_in(
    client: Any, owner_session: Any
) -> None:
    user = TelegramUser()
    phone = {"User-Agent": "Telegram-Android/11.2.1 (Samsung SM-A546E; Android 14)"}
    for _ in range(5):
        client.cookies.clear()
        init = make_init_data(BOT_TOKEN, user_id=user.id)
        signed = await client.post("/auth/telegram", json={"init_data": init}, headers=phone)
        assert signed.status_code == 200
    for _ in range(5):  # the iframe lost its cookie: htmx sends the signed initData instead
        client.cookies.clear()
        init = make_init_data(BOT_TOKEN, user_id=user.id)
        page = await client.get("/app/bookings", headers={**phone, "X-Telegram-Init-Data": init})
        assert page.status_code == 200
    assert len(await _sessions_of(owner_session, user.id)) == 1
    # another device is another session; signing out ends it, and the next sign-in is new
    client.cookies.clear()
    desktop = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) TelegramDesktop/5.2"}
    init = make_init_data(BOT_TOKEN, user_id=user.id)
    await client.post("/auth/telegram", json={"init_data": init}, headers=desktop)
    live = await _sessions_of(owner_session, user.id)
    assert len(live) == 2
    token = re.search(
        r'name="csrf-token" content="([^"]+)"', (await client.get("/app/me", headers=desktop)).text
    )
    assert token
    out = await client.post("/app/logout", headers={**desktop, "X-CSRF-Token": token.group(1)})
    assert out.status_code in (200, 303)
    assert len(await _sessions_of(owner_session, user.id)) == 1
    client.cookies.clear()
    await client.post("/auth/telegram", json={"init_data": init}, headers=desktop)
    after = await _sessions_of(owner_session, user.id)
    assert len(after) == 2 and set(after) != set(live)
