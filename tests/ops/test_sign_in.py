"""The console's sign-in (policy 6.3): a password and a second factor, a code good once, its
own session that no dashboard or Mini App session opens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.security import sessions
from app.settings import Settings, secret_key_for
from tests.factories import new_business
from tests.ops.conftest import OperatorLogin, code_step, password_step, sign_in
from tests.support.dashboard import csrf_of, form

pytestmark = pytest.mark.policy("6.3")
ALERT = re.compile(r'<p class="error" role="alert">([^<]+)</p>')


def _ops_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("__Host-pz_ops=") and "Max-Age=0" not in header:
            return header
    return None


async def test_the_password_alone_signs_nobody_in(
    client: httpx.AsyncClient, support: OperatorLogin
) -> None:
    answer, ticket = await password_step(client, support.email, support.password)
    assert answer.status_code == 200 and ticket is not None
    assert _ops_cookie(answer) is None
    assert 'name="code"' in answer.text
    assert (await client.get("/ops/", follow_redirects=False)).status_code == 303
    # a wrong code, a ticket made up or altered: refused, still no session
    wrong = f"{(int(support.totp.now()) + 1) % 1_000_000:06d}"
    for ticket_sent, code in ((ticket, wrong), ("1.99999999999.abc", support.totp.now()),
                              (ticket.replace(".", ".9", 1), support.totp.now())):  # fmt: skip
        refused = await code_step(client, ticket_sent, code)
        assert refused.status_code == 401
        assert _ops_cookie(refused) is None
    assert (await client.get("/ops/", follow_redirects=False)).status_code == 303


async def test_with_the_code_the_session_is_the_consoles_own(
    client: httpx.AsyncClient, support: OperatorLogin
) -> None:
    _answer, ticket = await password_step(client, support.email, support.password)
    assert ticket is not None
    done = await code_step(client, ticket, support.totp.now())
    assert done.status_code == 303
    assert done.headers["location"].rstrip("/") == "/ops"
    cookie = _ops_cookie(done)
    assert cookie is not None
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    queue = await client.get("/ops/")
    assert queue.status_code == 200
    assert csrf_of(queue.text)
    assert support.email in queue.text


async def test_a_reused_totp_code_fails(client: httpx.AsyncClient, support: OperatorLogin) -> None:
    code = support.totp.now()
    await sign_in(client, support, code)
    client.cookies.clear()  # another browser, or someone who saw the code
    _answer, ticket = await password_step(client, support.email, support.password)
    assert ticket is not None
    again = await code_step(client, ticket, code)
    assert again.status_code == 401
    assert _ops_cookie(again) is None
    # the code of the step before, still inside the drift window, is older: refused too
    earlier = support.totp.at(datetime.now(UTC) - timedelta(seconds=30))
    assert (await code_step(client, ticket, earlier)).status_code == 401


async def test_a_recovery_code_works_once(
    client: httpx.AsyncClient, support: OperatorLogin
) -> None:
    recovery = support.recovery_codes[0]
    await sign_in(client, support, recovery.upper())  # as typed from paper
    client.cookies.clear()
    _answer, ticket = await password_step(client, support.email, support.password)
    assert ticket is not None
    assert (await code_step(client, ticket, recovery)).status_code == 401
    assert (await code_step(client, ticket, support.recovery_codes[1])).status_code == 303


async def test_wrong_password_and_no_operator_get_the_same_answer(
    client: httpx.AsyncClient, owner_session: AsyncSession, support: OperatorLogin
) -> None:
    wrong, ticket = await password_step(client, support.email, "not-the-password")
    assert wrong.status_code == 401 and ticket is None
    unknown, _ = await password_step(client, "nobody-here@pozapisi.kz", "whatever-it-is")
    # a business owner with the right password is no operator
    from app.domain.passwords import hash_password

    business = await new_business(owner_session)
    await owner_session.execute(
        text("UPDATE accounts SET password_hash = :h, email = :e WHERE id = :a"),
        {"h": hash_password("owner-password-1"), "e": f"owner-{business.id}@example.com",
         "a": business.owner_account_id},
    )  # fmt: skip
    await owner_session.commit()
    owner, ticket = await password_step(
        client, f"owner-{business.id}@example.com", "owner-password-1"
    )
    assert ticket is None
    assert wrong.status_code == unknown.status_code == owner.status_code == 401
    said = [ALERT.search(r.text) for r in (wrong, unknown, owner)]
    assert all(said) and len({m.group(1) for m in said if m}) == 1


async def test_dashboard_and_mini_app_sessions_open_no_ops_page(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings,
    support: OperatorLogin,
) -> None:  # fmt: skip
    """Even the operator's own account, signed in to the dashboard or the Mini App."""
    for kind in ("dashboard", "miniapp"):
        token, _info = await sessions.issue(
            owner_session, account_id=support.account_id, kind=kind,
            key=secret_key_for(settings), ip=None, user_agent=f"pytest-{kind}",
        )  # fmt: skip
        await owner_session.commit()
        client.cookies.clear()
        client.cookies.set(sessions.COOKIE_NAMES[kind], token)
        assert (await client.get("/ops/", follow_redirects=False)).status_code == 303
        client.cookies.set("__Host-pz_ops", token)  # nor as the console's cookie
        assert (await client.get("/ops/", follow_redirects=False)).status_code == 303
        assert (await client.get("/ops/people", follow_redirects=False)).status_code == 303


async def test_unsafe_requests_need_the_sessions_token(
    client: httpx.AsyncClient, support: OperatorLogin
) -> None:
    csrf = await sign_in(client, support)
    body = {"query": "someone@example.com", "reason": "answering request about access"}
    assert (await client.post("/ops/people", data=body)).status_code == 403
    assert (await client.post("/ops/people", data={**body, "csrf_token": "x"})).status_code == 403
    signed_out = await client.post("/ops/signout", data=form(csrf), follow_redirects=False)
    assert signed_out.status_code == 303
    assert (await client.get("/ops/", follow_redirects=False)).status_code == 303


async def test_guessing_codes_is_throttled(
    client: httpx.AsyncClient, settings: Settings, support: OperatorLogin
) -> None:
    _answer, ticket = await password_step(client, support.email, support.password)
    assert ticket is not None
    allowed, _window = settings.rate_limit_password
    right = support.totp.now()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(allowed):
        assert (await code_step(client, ticket, wrong)).status_code == 401
    throttled = await code_step(client, ticket, right)  # even the right code, for a while
    assert throttled.status_code == 429
    assert throttled.headers.get("retry-after")
    assert _ops_cookie(throttled) is None


async def test_a_secret_sealed_under_another_key_signs_nobody_in(
    client: httpx.AsyncClient, owner_session: AsyncSession, settings: Settings
) -> None:
    """After SECRET_KEY changed: refused (enrol again), never an error page."""
    from tests.ops.conftest import enrol

    login = await enrol(owner_session, settings, "support")
    from app.domain.operators import seal

    await owner_session.execute(
        text("UPDATE operators SET totp_secret = :s WHERE account_id = :a"),
        {"s": seal("the-key-before-it-changed-0123456789", login.totp.secret),
         "a": login.account_id},
    )  # fmt: skip
    await owner_session.commit()
    _answer, ticket = await password_step(client, login.email, login.password)
    assert ticket is not None
    assert (await code_step(client, ticket, login.totp.now())).status_code == 401


@pytest.mark.policy("2.6")
async def test_sign_ins_and_failed_attempts_are_security_events(
    client: httpx.AsyncClient, owner_session: AsyncSession, support: OperatorLogin
) -> None:
    _answer, ticket = await password_step(client, support.email, "a-wrong-password")
    assert ticket is None
    _answer, ticket = await password_step(client, support.email, support.password)
    assert ticket is not None
    wrong = f"{(int(support.totp.now()) + 1) % 1_000_000:06d}"
    assert (await code_step(client, ticket, wrong)).status_code == 401
    assert (await code_step(client, ticket, support.totp.now())).status_code == 303
    events = (
        await owner_session.execute(
            text("SELECT event FROM security_events WHERE account_id = :a ORDER BY id"),
            {"a": support.account_id},
        )
    ).scalars().all()  # fmt: skip
    await owner_session.commit()
    assert events == ["ops.sign_in_failed", "ops.sign_in_failed", "ops.sign_in"]
