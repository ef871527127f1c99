"""Rate limits (app.security.limits): counted in PostgreSQL, so they hold across processes and
servers; each answers 429 with Retry-After and the pinned body or the Mini App's error page.

The in-process app here runs with small limits over hour-long windows (a test takes far less
than the second it would need to move a sliding hour's count by one). Each test uses its own
people and its own client addresses, so no test spends another's allowance. Windows passing are
shown with the function's own clock argument, never by waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db.session import Database
from app.db.urls import to_libpq, to_sqlalchemy
from app.domain.errors import RateLimited
from app.i18n import gettext, set_locale
from app.security.limits import count_password_sign_in, hit, network_subject, subject_digest
from app.settings import load_settings
from tests.conftest import BOT_TOKEN, ROOT, SECRET_KEY, free_port, make_settings
from tests.factories import local_start, new_business, next_telegram_id
from tests.helpers import CYRILLIC, TelegramUser, assert_error, booking_body, grant_consent
from tests.support.telegram import make_init_data
from workers.maintenance import purge_expired

TIGHT = {
    "RATE_LIMIT_SIGN_IN": "3/hour",
    "RATE_LIMIT_SIGN_IN_IP": "6/hour",
    "RATE_LIMIT_CONTACT_CHANGE": "2/hour",
    "RATE_LIMIT_MESSAGES": "3/hour",
    "RATE_LIMIT_EXPORT": "2/hour",
    "RATE_LIMIT_DELETE": "2/hour",
    "RATE_LIMIT_BOOKING": "2/hour",
    "RATE_LIMIT_PASSWORD": "3/hour",
    "RATE_LIMIT_PASSWORD_IP": "5/hour",
}
_octets = count(1)


def fresh_ip() -> str:
    """A documentation address (RFC 5737) no other test uses."""
    n = next(_octets)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


def kazakh(message: str) -> str:
    set_locale("kk")
    try:
        return gettext(message)
    finally:
        set_locale("ru")


@pytest.fixture(scope="module")
def tight_settings() -> Any:
    return make_settings(**TIGHT)


@pytest.fixture(scope="module")
async def tight_app(database: Any, tight_settings: Any) -> AsyncIterator[Any]:
    from app.main import create_app

    app = create_app(tight_settings, app_url=database.app)
    yield app
    await app.state.db.dispose()


@pytest.fixture
async def connect(tight_app: Any) -> AsyncIterator[Any]:
    """An in-process client that comes from ``ip`` (the ASGI peer, as a real server reports)."""
    opened: list[httpx.AsyncClient] = []

    def open_client(ip: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=tight_app, client=(ip or fresh_ip(), 50000))
        client = httpx.AsyncClient(transport=transport, base_url="https://testserver.local")
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.aclose()


def assert_429_json(response: httpx.Response) -> dict[str, Any]:
    body = assert_error(response, 429, "rate_limited")
    assert body["fields"] == {}
    assert_retry_after(response)
    return body


def assert_retry_after(response: httpx.Response, *, at_most: int = 2 * 3600) -> int:
    value = response.headers.get("retry-after", "")
    assert value.isdigit(), response.headers
    assert 1 <= int(value) <= at_most
    return int(value)


def assert_429_page(response: httpx.Response, locale: str = "ru") -> None:
    assert response.status_code == 429, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    assert_retry_after(response)
    expected = kazakh(RateLimited.message) if locale == "kk" else None
    if expected is not None:
        assert expected in response.text.replace("&#39;", "'")
    else:
        assert CYRILLIC.search(response.text)


def init_for(user_id: int, language_code: str = "ru") -> str:
    return make_init_data(BOT_TOKEN, user_id=user_id, language_code=language_code)


async def sign_in(client: httpx.AsyncClient, user: TelegramUser) -> str:
    """A session for ``user`` in ``client``'s jar; the page's CSRF token."""
    response = await client.post("/auth/telegram", json={"init_data": init_for(user.id)})
    assert response.status_code == 200, response.text
    page = await client.get("/app/me")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token, page.text[:300]
    return token.group(1)


# ------------------------------------------------------------------ sign-in with Telegram


async def test_telegram_sign_in_is_limited_per_user_and_not_for_another(connect: Any) -> None:
    user, other = next_telegram_id(), next_telegram_id()
    statuses = []
    for _ in range(4):  # each from its own address: only the per-user limit can refuse
        response = await connect().post(
            "/auth/telegram",
            json={"init_data": init_for(user)},
            headers={"Accept-Language": "kk"},
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429]
    body = assert_429_json(response)
    assert body["detail"] == kazakh(RateLimited.message)
    assert "set-cookie" not in response.headers  # no session for a refused sign-in
    again = await connect().post("/auth/telegram", json={"init_data": init_for(other)})
    assert again.status_code == 200


async def test_forged_init_data_is_no_way_around_the_per_network_limit(connect: Any) -> None:
    ip = fresh_ip()
    forged = init_for(next_telegram_id()).replace("hash=", "hash=0")
    for _ in range(6):
        response = await connect(ip).post("/auth/telegram", json={"init_data": forged})
        assert_error(response, 401, "unauthorized")
    genuine = await connect(ip).post(
        "/auth/telegram", json={"init_data": init_for(next_telegram_id())}
    )
    assert_429_json(genuine)
    # a body that does not even parse counts for the network too, and is refused the same way
    assert_429_json(
        await connect(ip).post(
            "/auth/telegram", content=b"{", headers={"Content-Type": "application/json"}
        )
    )
    elsewhere = await connect().post(
        "/auth/telegram", json={"init_data": init_for(next_telegram_id())}
    )
    assert elsewhere.status_code == 200


async def test_init_data_header_signs_in_under_the_same_limits(connect: Any) -> None:
    """The Mini App's X-Telegram-Init-Data path (no cookie): per user, and per network for
    forged data too; refused with the Mini App's error page in the person's language."""
    user = next_telegram_id()
    pages = []
    for _ in range(4):
        pages.append(
            await connect().get(
                "/app/bookings?lang=kk", headers={"X-Telegram-Init-Data": init_for(user, "kk")}
            )
        )
    assert [p.status_code for p in pages] == [200, 200, 200, 429]
    assert_429_page(pages[-1], "kk")

    ip = fresh_ip()
    forged = init_for(next_telegram_id()).replace("hash=", "hash=0")
    for _ in range(6):
        visitor = await connect(ip).get("/app/bookings", headers={"X-Telegram-Init-Data": forged})
        assert visitor.status_code == 303  # not signed in: the sign-in page
    refused = await connect(ip).get(
        "/app/bookings", headers={"X-Telegram-Init-Data": init_for(next_telegram_id())}
    )
    assert_429_page(refused)


# ------------------------------------------------------------------ sign-in with a code


async def test_code_sign_in_is_limited_per_network(connect: Any) -> None:
    ip = fresh_ip()
    form = {"contact": "not a number", "next": "/app/bookings"}
    for _ in range(3):
        assert (await connect(ip).post("/app/signin", data=form)).status_code == 422
    verify = {"contact": "+77010000000", "challenge_id": "1", "code": "000000"}
    for _ in range(3):
        assert (await connect(ip).post("/app/signin/verify", data=verify)).status_code == 422
    assert_429_page(await connect(ip).post("/app/signin", data=form))
    assert_429_page(await connect(ip).post("/app/signin/verify", data=verify))
    assert (await connect().post("/app/signin", data=form)).status_code == 422


async def test_code_requests_keep_their_own_limit_and_say_when_to_retry(connect: Any) -> None:
    """app.domain.otp counts codes per address (3 per 15 minutes): its 429 carries Retry-After."""
    phone = f"+7701{uuid.uuid4().int % 10**7:07d}"
    statuses = []
    for _ in range(4):
        response = await connect().post("/app/signin", data={"contact": phone})
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429]
    assert_retry_after(response)
    assert CYRILLIC.search(response.text)


# ------------------------------------------------------------------ the signed-in person


async def test_contact_changes_are_limited_per_account(connect: Any) -> None:
    browser = connect()
    token = await sign_in(browser, TelegramUser())
    headers = {"X-CSRF-Token": token}
    first = await browser.post(
        "/app/me/contact", data={"contact": f"a{uuid.uuid4().hex[:8]}@example.kz"}, headers=headers
    )
    assert first.status_code == 200
    wrong = await browser.post(
        "/app/me/contact/verify",
        data={"contact": "x@example.kz", "challenge_id": "1", "code": "000000"},
        headers=headers,
    )
    assert wrong.status_code == 422
    refused = await browser.post(
        "/app/me/contact", data={"contact": f"b{uuid.uuid4().hex[:8]}@example.kz"}, headers=headers
    )
    assert_429_page(refused)
    # a request without the CSRF token is refused before it is counted
    assert (
        await browser.post("/app/me/contact", data={"contact": "c@example.kz"})
    ).status_code == 403


async def test_exports_and_deletions_are_limited_per_account(connect: Any) -> None:
    browser = connect()
    token = await sign_in(browser, TelegramUser())
    for _ in range(2):
        export = await browser.get("/app/me/export")
        assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
    assert_429_page(await browser.get("/app/me/export"))
    for _ in range(2):  # not confirmed: the page asks again (and the attempt counts)
        unconfirmed = await browser.post(
            "/app/me/delete", data={"confirm": "no"}, headers={"X-CSRF-Token": token}
        )
        assert unconfirmed.status_code == 422
    assert_429_page(
        await browser.post(
            "/app/me/delete", data={"confirm": "yes"}, headers={"X-CSRF-Token": token}
        )
    )
    # and the account is still there: the refused deletion did nothing
    assert (await browser.get("/app/me")).status_code == 200
    # another person exports as usual
    other = connect()
    await sign_in(other, TelegramUser())
    assert (await other.get("/app/me/export")).status_code == 200


async def test_client_messages_are_limited_per_account(connect: Any, owner_session: Any) -> None:
    user = TelegramUser()
    business = await new_business(owner_session)
    api = connect()
    await grant_consent(api, user)
    made = await api.post(
        f"/api/v1/businesses/{business.slug}/bookings",
        json=booking_body(business.service_id, local_start(business, 3)),
        headers=user.headers(),
    )
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    browser = connect()
    token = await sign_in(browser, user)
    url = f"/app/bookings/{booking_id}/messages"
    sent = [
        (await browser.post(url, data={"body": f"hello {i}"}, headers={"X-CSRF-Token": token}))
        for i in range(4)
    ]
    assert [r.status_code for r in sent] == [303, 303, 303, 429]
    assert_429_page(sent[-1])
    thread = await browser.get(url, headers={"HX-Request": "true"})
    assert thread.status_code == 200
    assert "hello 2" in thread.text and "hello 3" not in thread.text


async def test_bookings_are_limited_per_person_across_api_and_mini_app(
    connect: Any, owner_session: Any
) -> None:
    business = await new_business(owner_session, max_active=10)
    user = TelegramUser()
    api = connect()
    await grant_consent(api, user)
    url = f"/api/v1/businesses/{business.slug}/bookings"
    made = [
        await api.post(
            url,
            json=booking_body(business.service_id, local_start(business, 3 + day)),
            headers=user.headers(),
        )
        for day in range(3)
    ]
    assert [r.status_code for r in made[:2]] == [201, 201]
    assert_429_json(made[2])
    # the same person in the Mini App: one allowance for both ways of booking
    browser = connect()
    token = await sign_in(browser, user)
    form = {
        "service_id": str(business.service_id),
        "staff": "any",
        "start": local_start(business, 7).isoformat(),
        "_csrf": token,
    }
    assert_429_page(await browser.post(f"/app/b/{business.slug}/book", data=form))
    # somebody else books at once
    other = TelegramUser()
    await grant_consent(api, other)
    response = await api.post(
        url,
        json=booking_body(business.service_id, local_start(business, 8)),
        headers=other.headers(),
    )
    assert response.status_code == 201


# ------------------------------------------------------------------ password sign-in (dashboard)


async def test_password_sign_in_is_limited_per_account_and_per_network(
    db: Database, tight_settings: Any
) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.kz"
    ip = fresh_ip()
    for _ in range(3):
        await count_password_sign_in(db, tight_settings, email=email, ip=fresh_ip())
    with pytest.raises(RateLimited) as refused:
        await count_password_sign_in(db, tight_settings, email=f"  {email.upper()} ", ip=fresh_ip())
    assert refused.value.retry_after >= 1
    # per network: five attempts on five accounts, then even a sixth account is refused there
    for n in range(5):
        await count_password_sign_in(db, tight_settings, email=f"{n}-{email}", ip=ip)
    with pytest.raises(RateLimited):
        await count_password_sign_in(db, tight_settings, email=f"new-{email}", ip=ip)
    await count_password_sign_in(db, tight_settings, email=f"new-{email}", ip=fresh_ip())


# ------------------------------------------------------------------ windows and keys


async def test_the_window_passing_lets_requests_through_again(db: Database) -> None:
    """A controllable clock: 2 per minute, a sliding window. Retry-After is exact: one second
    earlier is still refused, at the time given the request passes."""
    settings = make_settings(RATE_LIMIT_MESSAGES="2/minute")
    subject = f"account:test-{uuid.uuid4().hex}"
    t0 = datetime(2031, 1, 1, 0, 0, 10, tzinfo=UTC)  # 10 s into a minute

    async def at(seconds: int) -> int:
        try:
            await hit(db, settings, "messages", subject, at=t0 + timedelta(seconds=seconds))
        except RateLimited as refused:
            return refused.retry_after
        return 0

    assert [await at(0), await at(1)] == [0, 0]
    # this minute is full (48 s of it left); the next one starts with these 2 weighted by
    # how much of them the sliding minute still covers: one more fits after 30 s of it
    wait = await at(2)
    assert wait == 78
    assert await at(2 + wait - 1) > 0
    assert await at(2 + wait) == 0
    # at 80 s: 1 in this minute and 2 × 0.5 of the last make 2: full until the last one's
    # share is gone, at the start of the minute after (110 s → 120 s from the window's start)
    assert await at(80) == 30
    assert await at(109) > 0
    assert await at(110) == 0


async def test_network_keys(db: Database) -> None:
    """IPv4 per address, IPv6 per /64; no address, no per-network count."""
    assert network_subject("203.0.113.7") == "network:203.0.113.7/32"
    assert network_subject("2001:db8:1:2:aaaa::1") == network_subject("2001:db8:1:2:ffff::9")
    assert network_subject("2001:db8:1:2::1") != network_subject("2001:db8:1:3::1")
    assert network_subject(None) is None and network_subject("testclient") is None


async def test_counters_keep_no_personal_data_and_the_app_cannot_touch_them(
    connect: Any, database: Any
) -> None:
    ip = fresh_ip()
    user = next_telegram_id()
    assert (
        await connect(ip).post("/auth/telegram", json={"init_data": init_for(user)})
    ).status_code == 200
    owner = await asyncpg.connect(to_libpq(database.owner))
    try:
        rows = await owner.fetch("SELECT bucket, key FROM rate_limit_counters")
    finally:
        await owner.close()
    assert {"sign_in", "sign_in_ip"} <= {r["bucket"] for r in rows}
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["key"]) for r in rows)
    keys = {(r["bucket"], r["key"]) for r in rows}
    # keyed with the server's secret: a plain digest of the id or address is not there
    for bucket, subject in (("sign_in", f"telegram:{user}"), ("sign_in_ip", f"network:{ip}/32")):
        assert (bucket, subject_digest(SECRET_KEY, subject)) in keys
        assert (bucket, hashlib.sha256(subject.encode()).hexdigest()) not in keys
    app_role = await asyncpg.connect(to_libpq(database.app))
    try:
        for statement in (
            "SELECT count(*) FROM rate_limit_counters",
            "DELETE FROM rate_limit_counters",
            "UPDATE rate_limit_counters SET hits = 0",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app_role.execute(statement)
        with pytest.raises(asyncpg.InvalidParameterValueError):  # nonsense is refused, not stored
            await app_role.fetchval("SELECT pz_rate_limit_hit('x', 'k', 0, 60)")
    finally:
        await app_role.close()


async def test_the_worker_deletes_counters_whose_windows_are_over(database: Any) -> None:
    now = datetime.now(UTC)
    owner = await asyncpg.connect(to_libpq(database.owner))
    try:
        await owner.executemany(
            "INSERT INTO rate_limit_counters (bucket, key, window_start, hits, expires_at) "
            "VALUES ('purge-test', $1, $2, 1, $3)",
            [
                ("over", now - timedelta(minutes=3), now - timedelta(minutes=1)),
                ("live", now - timedelta(minutes=1), now + timedelta(minutes=1)),
            ],
        )
    finally:
        await owner.close()
    engine = create_async_engine(to_sqlalchemy(database.worker), poolclass=NullPool)
    try:
        purged = await purge_expired(engine, now)
        async with engine.connect() as conn:
            with pytest.raises(Exception, match="permission denied"):  # the worker only deletes
                await conn.execute(text("SELECT key FROM rate_limit_counters"))
    finally:
        await engine.dispose()
    assert purged.rate_limit_counters >= 1
    owner = await asyncpg.connect(to_libpq(database.owner))
    try:
        left = await owner.fetch("SELECT key FROM rate_limit_counters WHERE bucket = 'purge-test'")
    finally:
        await owner.close()
    assert [r["key"] for r in left] == ["live"]


# ------------------------------------------------------------------ across processes and servers


def _live_limit() -> int:
    """The booking limit the live servers run with (their environment's, else the default)."""
    env = {**os.environ, "POZAPISI_ENV": "test", "SECRET_KEY": SECRET_KEY}
    return int(load_settings(env).rate_limit_booking[0])


async def _fire_bookings(urls: list[str], user: TelegramUser, total: int) -> Counter[int]:
    """``total`` bookings at a business that does not exist (refused once counted, with one
    answer that is not 429), spread over ``urls``, a few at a time."""
    body = booking_body(1, datetime(2031, 1, 1, 10, tzinfo=UTC))
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        timeout=120, limits=limits
    ) as http:  # the bound only catches a hang
        responses = await asyncio.gather(
            *(
                http.post(
                    f"{urls[i % len(urls)]}/api/v1/businesses/no-such-{uuid.uuid4().hex[:6]}/bookings",
                    json=body,
                    headers=user.headers(),
                )
                for i in range(total)
            )
        )
    for response in responses:
        statuses[response.status_code] += 1
        if response.status_code == 429:
            assert_429_json(response)
    assert len(statuses) == 2, statuses  # the counted ones all get the same answer
    return statuses


async def test_the_limit_holds_across_two_worker_processes(live_server: str) -> None:
    limit = _live_limit()
    statuses = await _fire_bookings([live_server], TelegramUser(), limit + 10)
    assert statuses[429] == 10 and sum(statuses.values()) - 10 == limit, statuses


@pytest.fixture(scope="module")
def two_servers(database: Any) -> Iterator[list[str]]:
    """Two separate app servers (one process each) on one database: requests alternate, so
    each server surely answers half of them."""
    env = {**os.environ, "POZAPISI_ENV": "test", "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
           "SECRET_KEY": SECRET_KEY, "DATABASE_URL": database.owner,
           "DATABASE_APP_URL": database.app}  # fmt: skip
    procs, urls = [], []
    for _ in range(2):
        port = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app_from_env", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=env,
        ))  # fmt: skip
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for proc, url in zip(procs, urls, strict=True):
            deadline = time.monotonic() + 60  # only catches a server that never comes up
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, "an app server exited during start-up"
                time.sleep(0.2)
            else:
                raise RuntimeError(f"{url} did not answer /healthz")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def test_the_limit_holds_across_two_servers(two_servers: list[str]) -> None:
    limit = _live_limit()
    statuses = await _fire_bookings(two_servers, TelegramUser(), limit + 6)
    assert statuses[429] == 6 and sum(statuses.values()) - 6 == limit, statuses
