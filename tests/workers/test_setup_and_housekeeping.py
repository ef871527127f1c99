"""What ``pozapisi db upgrade`` gives the workers, the outbox wake-up, platform messages,
policy notices on every channel, and the purge of expired codes and sessions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.urls import to_libpq, to_sqlalchemy
from app.domain import outbox
from tests.conftest import BOT_TOKEN, ROOT, SECRET_KEY, ServerHandle
from tests.workers.conftest import Mailbox, new_account, statuses
from tests.workers.provider_stub import ProviderStub
from workers.maintenance import purge_expired
from workers.queue import QueueSetupError, build_queue
from workers.relay import Relay
from workers.wake import CHANNEL


async def test_the_worker_role_uses_the_queue_without_any_create_right(wdb: DatabaseUrls) -> None:
    conn = await asyncpg.connect(to_libpq(wdb.worker))
    try:
        assert not await conn.fetchval("SELECT has_schema_privilege('public', 'CREATE')")
        assert not await conn.fetchval(
            "SELECT has_database_privilege(current_database(), 'CREATE')"
        )
    finally:
        await conn.close()
    queue = build_queue(None, wdb.worker)
    await queue.connect()
    try:
        job = await queue.enqueue("noop", key="setup-test")
        assert job is not None and await queue.count("incomplete") >= 1
    finally:
        await queue.disconnect()


async def test_a_worker_on_an_outdated_queue_schema_says_what_to_run(
    main_server: ServerHandle,
) -> None:
    urls = await main_server.create_database()
    conn = await asyncpg.connect(to_libpq(urls.owner))
    try:
        await conn.execute("UPDATE saq_versions SET version = 1")
    finally:
        await conn.close()
    queue = build_queue(None, urls.worker)
    with pytest.raises(QueueSetupError, match="pozapisi db upgrade"):
        await queue.connect()
    await queue.disconnect()

    env = {"POZAPISI_ENV": "test", "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "SECRET_KEY": SECRET_KEY,
           "DATABASE_URL": urls.owner, "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "pozapisi db upgrade" in done.stdout


async def test_a_commit_wakes_the_workers_and_nothing_before_it(wdb: DatabaseUrls) -> None:
    listener = await asyncpg.connect(to_libpq(wdb.worker))
    woken: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(CHANNEL, lambda *args: woken.put_nowait(args[2]))
    engine = create_async_engine(to_sqlalchemy(wdb.owner), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            await conn.execute(
                text(
                    "INSERT INTO notifications (event, address, channel, idempotency_key) "
                    "VALUES ('otp.code', '+77010000000', 'sms', 'wake-test')"
                )
            )
            await asyncio.sleep(0.3)
            assert woken.empty()  # not before the rows are visible
            await transaction.commit()
        async with asyncio.timeout(10):
            assert await woken.get() == CHANNEL
    finally:
        await listener.close()
        await engine.dispose()


async def test_a_policy_notice_goes_to_every_channel_the_person_has(
    relay: Relay,
    owner: AsyncSession,
    wowner: AsyncEngine,
    stub: ProviderStub,
    smtp: tuple[Mailbox, int],
) -> None:
    async with owner.begin():
        both = await new_account(owner, phone="+77011112222", email="both@example.kz")
        phone_only = await new_account(owner, telegram=False, phone="+77011113333")
        notices = []
        for person in (both, phone_only):
            notice = outbox.Outgoing(
                event="policy.notice", scheduled_at=datetime.now(UTC), account_id=person.id,
                payload={"version": "2027-01", "effective_at": "2027-01-15"},
            )  # fmt: skip
            notices += await outbox.on_every_channel(owner, notice)
        assert [n.channel for n in notices] == ["telegram", "email", "sms"]
        await outbox.enqueue(owner, notices)
    assert await relay.drain() == Counter(sent=3)
    [telegram] = stub.snapshot("telegram")
    assert "15 января 2027" in telegram.text and "/ru/privacy/" in telegram.text
    [sms] = stub.snapshot("sms")
    assert sms.address == "+77011113333" and "15.01.2027" in sms.text
    [(rcpt, mail)] = smtp[0].messages
    assert rcpt == ["both@example.kz"] and "конфиденциальности" in str(mail["Subject"])


async def test_purge_removes_expired_codes_and_dead_sessions_only(
    worker_engine: AsyncEngine, owner: AsyncSession, wowner: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    async with owner.begin():
        person = await new_account(owner)
    async with wowner.begin() as conn:
        for name, expires in (
            ("old", now - timedelta(days=2)),
            ("fresh", now + timedelta(minutes=5)),
        ):
            await conn.execute(
                text(
                    "INSERT INTO otp_challenges (channel, destination_hash, code_hash, expires_at) "
                    "VALUES ('sms', :h, 'x', :e)"
                ),
                {"h": f"purge-{name}", "e": expires},
            )
        for sid, expires, revoked in (
            ("purge-expired", now - timedelta(hours=1), None),
            ("purge-revoked", now + timedelta(days=1), now - timedelta(minutes=1)),
            ("purge-live", now + timedelta(days=1), None),
        ):
            await conn.execute(
                text(
                    "INSERT INTO sessions (id, account_id, kind, csrf_secret, expires_at, "
                    "revoked_at) VALUES (:id, :a, 'miniapp', 'c', :e, :r)"
                ),
                {"id": sid, "a": person.id, "e": expires, "r": revoked},
            )
        code_messages = {}
        for name, created in (("old", now - timedelta(days=2)), ("fresh", now)):
            code_messages[name] = await conn.scalar(
                text(
                    "INSERT INTO notifications (event, address, channel, idempotency_key, "
                    "status, created_at, payload) VALUES ('otp.code', '+77010000001', 'sms', "
                    ":key, 'sent', :created, CAST(:p AS jsonb)) RETURNING id"
                ),
                {"key": f"purge-{name}-{person.id}", "created": created, "p": json.dumps({})},
            )
    purged = await purge_expired(worker_engine, now)
    assert purged.otp_challenges >= 1 and purged.sessions >= 2 and purged.code_messages >= 1
    async with wowner.connect() as conn:
        left: dict[str, Any] = {
            "otp": set(
                (await conn.execute(text(
                    "SELECT destination_hash FROM otp_challenges WHERE destination_hash LIKE 'purge-%'"
                ))).scalars()
            ),
            "sessions": set(
                (await conn.execute(text("SELECT id FROM sessions WHERE id LIKE 'purge-%'"))).scalars()
            ),
        }  # fmt: skip
    assert left == {"otp": {"purge-fresh"}, "sessions": {"purge-live"}}
    # the message that carried the old code is gone, today's stays until it is a day old
    assert set(await statuses(wowner, list(code_messages.values()))) == {code_messages["fresh"]}


async def test_purge_removes_dead_email_links_and_old_invitations_only(
    worker_engine: AsyncEngine, owner: AsyncSession, wowner: AsyncEngine
) -> None:
    """Links a day past expiry and invitations a month past their end go; live ones stay."""
    now = datetime.now(UTC)
    async with owner.begin():
        person = await new_account(owner)
        business_id = await owner.scalar(
            text("INSERT INTO businesses (slug, name) VALUES (:s, 'Purge test') RETURNING id"),
            {"s": f"purge-{person.id}"},
        )
    tag = f"purge-{person.id}"
    async with wowner.begin() as conn:
        for name, expires in (
            ("dead", now - timedelta(days=2)),
            ("live", now + timedelta(hours=1)),
        ):
            await conn.execute(
                text(
                    "INSERT INTO account_tokens (account_id, purpose, token_hash, expires_at) "
                    "VALUES (:a, 'reset_password', :h, :e)"
                ),
                {"a": person.id, "h": f"{tag}-{name}", "e": expires},
            )
        invitations = {
            "expired long ago": (now - timedelta(days=40), None),
            "accepted long ago": (now + timedelta(days=1), now - timedelta(days=31)),
            "expired lately": (now - timedelta(days=3), None),
            "open": (now + timedelta(days=5), None),
        }
        for name, (expires, accepted) in invitations.items():
            await conn.execute(
                text(
                    "INSERT INTO invitations (business_id, role, email, token_hash, expires_at, "
                    "accepted_at) VALUES (:b, 'admin', :email, :h, :e, :acc)"
                ),
                {"b": business_id, "email": f"{name.replace(' ', '.')}@example.kz",
                 "h": f"{tag}-{name}", "e": expires, "acc": accepted},
            )  # fmt: skip
    purged = await purge_expired(worker_engine, now)
    assert purged.email_links >= 1 and purged.invitations >= 2
    async with wowner.connect() as conn:
        links = set(
            (await conn.execute(
                text("SELECT token_hash FROM account_tokens WHERE token_hash LIKE :t"),
                {"t": f"{tag}-%"},
            )).scalars()
        )  # fmt: skip
        left = set(
            (await conn.execute(
                text("SELECT token_hash FROM invitations WHERE business_id = :b"),
                {"b": business_id},
            )).scalars()
        )  # fmt: skip
    assert links == {f"{tag}-live"}
    assert left == {f"{tag}-expired lately", f"{tag}-open"}
