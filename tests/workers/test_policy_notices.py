"""Notices of a material policy change (policy 11.1): queued through the outbox to every active
person on every channel they have, once per person, version and channel — also when two workers
fan out the same version at the same time — and delivered in the person's language.

Each test has a database of its own: the fan-out walks every account there is, and a published
version can never be removed again.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.bootstrap import DatabaseUrls
from app.db.policy_versions import policy_today
from app.db.session import make_engine
from app.db.urls import to_libpq
from app.domain.policy_notices import fan_out
from tests.conftest import ServerHandle, make_settings
from tests.factories import next_telegram_id
from tests.workers.conftest import Mailbox, worker_env
from tests.workers.provider_stub import ProviderStub
from workers import jobs
from workers.jobs import build_channels, build_relay
from workers.runner import cron_jobs

pytestmark = pytest.mark.policy("11.1")

SUMMARY = {
    "en": "Backups are now kept for 30 days.",
    "ru": "Резервные копии теперь хранятся 30 дней.",
    "kk": "Сақтық көшірмелер енді 30 күн сақталады.",
}
LANDING = "https://pozapisi.kz"


@dataclass
class Fresh:
    urls: DatabaseUrls
    owner: asyncpg.Connection
    worker: AsyncEngine


@pytest.fixture
async def fresh(main_server: ServerHandle) -> AsyncIterator[Fresh]:
    urls = await main_server.create_database()
    owner = await asyncpg.connect(to_libpq(urls.owner))
    worker = make_engine(urls.worker, pool_size=4)
    try:
        yield Fresh(urls, owner, worker)
    finally:
        await owner.close()
        await worker.dispose()


def later(minutes: int = 2) -> datetime:
    """A clock past the fan-out's one-minute wait for accounts still being made."""
    return datetime.now(UTC) + timedelta(minutes=minutes)


async def person(
    conn: asyncpg.Connection,
    *,
    telegram: bool = False,
    pm: bool = True,
    email: str | None = None,
    email_verified: bool = True,
    phone: str | None = None,
    locale: str = "ru",
    deleted: bool = False,
) -> int:
    account_id: int = await conn.fetchval(
        "INSERT INTO accounts (telegram_id, allows_write_to_pm, email, email_verified_at, phone, "
        "locale, deleted_at) VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END, $5, $6, "
        "CASE WHEN $7 THEN now() END) RETURNING id",
        next_telegram_id() if telegram else None, pm, email, email_verified and email is not None,
        phone, locale, deleted,
    )  # fmt: skip
    return account_id


async def publish(
    conn: asyncpg.Connection,
    version: str,
    *,
    published: date,
    effective: date,
    material: bool = True,
) -> None:
    await conn.execute(
        "INSERT INTO policy_versions (version, digests, purposes, published_at, effective_at, "
        "material, summary) VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7::jsonb)",
        version, json.dumps({"en": "e" * 64, "ru": "r" * 64, "kk": "k" * 64}),
        ["booking", "notifications"], published, effective, material, json.dumps(SUMMARY),
    )  # fmt: skip


async def notices(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT account_id, channel, status, locale, payload, idempotency_key, business_id "
        "FROM notifications WHERE event = 'policy.notice' ORDER BY account_id, channel"
    )
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


async def told(conn: asyncpg.Connection) -> set[tuple[int, str]]:
    rows = await conn.fetch("SELECT account_id, channel FROM policy_notices")
    return {(r["account_id"], r["channel"]) for r in rows}


async def test_a_material_version_is_told_on_every_channel_each_active_person_has(
    fresh: Fresh,
) -> None:
    conn = fresh.owner
    everything = await person(conn, telegram=True, email="all@example.kz", phone="+77010000001")
    telegram_kk = await person(conn, telegram=True, locale="kk")
    bot_not_allowed = await person(conn, telegram=True, pm=False, email="mail@example.kz")
    unverified = await person(conn, email="typo@example.kz", email_verified=False,
                              phone="+77010000002")  # fmt: skip
    phone_en = await person(conn, phone="+77010000003", locale="en")
    deleted = await person(conn, telegram=True, deleted=True)
    unreachable = await person(conn)
    withdrew = await person(conn, telegram=True)
    for action in ("granted", "withdrawn"):
        await conn.execute(
            "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
            "VALUES ($1, '2026-11-27', '{booking,notifications}', $2, 'mini_app')",
            withdrew, action,
        )  # fmt: skip
    today = policy_today()
    version = (today + timedelta(days=30)).isoformat()
    await publish(conn, version, published=today, effective=today + timedelta(days=30))

    result = await fan_out(fresh.worker, later())

    expected = {
        (everything, "email"), (everything, "telegram"), (telegram_kk, "telegram"),
        (bot_not_allowed, "email"),  # the bot may not write: e-mail only
        (unverified, "sms"),  # an unverified address may be a stranger's: SMS, the one left
        (phone_en, "sms"),
        (withdrew, "telegram"),  # a legal notice, not a service needing consent
    }  # fmt: skip
    assert result.queued == {version: len(expected)}
    rows = await notices(conn)
    assert {(r["account_id"], r["channel"]) for r in rows} == expected
    assert await told(conn) == expected
    assert {deleted, unreachable}.isdisjoint(r["account_id"] for r in rows)
    assert {r["status"] for r in rows} == {"pending"}  # the withdrawal gate lets it through
    locales = {r["account_id"]: r["locale"] for r in rows}
    assert (locales[telegram_kk], locales[phone_en], locales[everything]) == ("kk", "en", "ru")
    for row in rows:
        assert row["business_id"] is None  # a platform message
        assert row["payload"] == {
            "version": version, "effective_at": version, "summary": SUMMARY,
        }  # fmt: skip
        key = f"policy.notice:{version}:{row['channel']}:a{row['account_id']}"
        assert row["idempotency_key"] == key

    # run again, as the next tick would: nobody is told twice
    again = await fan_out(fresh.worker, later())
    assert again.queued == {version: 0}
    assert len(await notices(conn)) == len(expected)


async def test_only_material_versions_published_and_not_yet_in_force_are_announced(
    fresh: Fresh,
) -> None:
    conn = fresh.owner
    someone = await person(conn, telegram=True)
    today = policy_today()
    await publish(conn, "minor", published=today, effective=today, material=False)
    await publish(conn, "in-force", published=today - timedelta(days=40),
                  effective=today - timedelta(days=1))  # fmt: skip
    tomorrow = today + timedelta(days=1)
    await publish(conn, "announced-early", published=tomorrow,
                  effective=tomorrow + timedelta(days=30))  # fmt: skip

    assert (await fan_out(fresh.worker, later())).total == 0
    assert await notices(conn) == []
    # the day it is published (a Kazakh day: UTC+5), its notice goes
    kazakh_midnight = datetime.combine(tomorrow, datetime.min.time(), UTC) - timedelta(hours=5)
    assert (await fan_out(fresh.worker, kazakh_midnight - timedelta(seconds=1))).total == 0
    assert (await fan_out(fresh.worker, kazakh_midnight)).queued == {"announced-early": 1}
    assert await told(conn) == {(someone, "telegram")}


async def test_people_who_join_during_the_notice_period_are_told_and_nobody_after_it(
    fresh: Fresh,
) -> None:
    conn = fresh.owner
    first = await person(conn, telegram=True)
    today = policy_today()
    effective = today + timedelta(days=30)
    await publish(conn, "v2", published=today, effective=effective)
    assert (await fan_out(fresh.worker, later())).queued == {"v2": 1}

    newcomer = await person(conn, email="new@example.kz")
    # made this very minute: its transaction may not be the last to commit, so it waits
    assert (await fan_out(fresh.worker, datetime.now(UTC))).queued == {"v2": 0}
    assert (await fan_out(fresh.worker, later())).queued == {"v2": 1}
    assert await told(conn) == {(first, "telegram"), (newcomer, "email")}
    cursor = await conn.fetchrow("SELECT * FROM policy_announcements WHERE policy_version = 'v2'")
    assert cursor is not None
    assert (cursor["after_account_id"], cursor["queued"]) == (newcomer, 2)
    assert cursor["swept_at"] is not None

    # from the effective date they accept the new version before booking instead
    await person(conn, telegram=True)
    in_force = datetime.combine(effective, datetime.min.time(), UTC)
    assert (await fan_out(fresh.worker, in_force)).total == 0
    assert len(await told(conn)) == 2


async def test_two_workers_fanning_out_at_once_queue_each_notice_once(fresh: Fresh) -> None:
    conn = fresh.owner
    people = [await person(conn, telegram=True, email=f"p{i}@example.kz") for i in range(120)]
    today = policy_today()
    await publish(conn, "v2", published=today, effective=today + timedelta(days=30))
    other = make_engine(fresh.urls.worker, pool_size=4)
    try:
        now = later()
        first, second = await asyncio.gather(
            fan_out(fresh.worker, now, batch=7), fan_out(other, now, batch=7)
        )
    finally:
        await other.dispose()
    assert first.queued["v2"] + second.queued["v2"] == 2 * len(people)
    rows = await notices(conn)
    per_key = Counter((r["account_id"], r["channel"]) for r in rows)
    assert set(per_key) == {(p, c) for p in people for c in ("email", "telegram")}
    assert set(per_key.values()) == {1}
    assert len(await told(conn)) == 2 * len(people)
    cursor = await conn.fetchrow("SELECT * FROM policy_announcements")
    assert cursor is not None and cursor["after_account_id"] == max(people)


async def test_the_second_of_two_overlapping_batches_waits_then_queues_nothing(
    fresh: Fresh,
) -> None:
    """The database, not the job, keeps the second worker from repeating: the same batch,
    started while the first is still open, waits on the first's keys and then adds nothing."""
    conn = fresh.owner
    people = [await person(conn, telegram=True) for _ in range(5)]
    today = policy_today()
    await publish(conn, "v2", published=today, effective=today + timedelta(days=30))
    batch = "SELECT pz_policy_notice_batch('v2', $1, $2, 100)"
    now = later()
    a = await asyncpg.connect(to_libpq(fresh.urls.worker))
    b = await asyncpg.connect(to_libpq(fresh.urls.worker))
    try:
        transaction = a.transaction()
        await transaction.start()
        assert json.loads(await a.fetchval(batch, today, now))["queued"] == len(people)
        second = asyncio.create_task(b.fetchval(batch, today, now))
        b_pid = b.get_server_pid()
        waiting = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"
        while not await conn.fetchval(waiting, b_pid):
            assert not second.done(), "the second batch did not wait for the first"
            await asyncio.sleep(0.02)
        await transaction.commit()
        assert json.loads(await second)["queued"] == 0
    finally:
        await a.close()
        await b.close()
    assert len(await notices(conn)) == len(people)


async def test_the_database_itself_refuses_a_second_notice_for_the_same_key(fresh: Fresh) -> None:
    conn = fresh.owner
    someone = await person(conn, telegram=True)
    today = policy_today()
    await publish(conn, "v2", published=today, effective=today + timedelta(days=30))
    insert = (
        "INSERT INTO policy_notices (policy_version, account_id, channel) VALUES ('v2', $1, $2)"
    )
    await conn.execute(insert, someone, "telegram")
    with pytest.raises(asyncpg.UniqueViolationError, match="pk_policy_notices"):
        await conn.execute(insert, someone, "telegram")
    await conn.execute(insert, someone, "email")  # another channel is another notice
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(insert, someone, "pigeon")
    # the fan-out respects what is already recorded: nothing more on Telegram
    assert (await fan_out(fresh.worker, later())).queued == {"v2": 0}


async def test_the_worker_cannot_write_the_record_of_notices_itself(fresh: Fresh) -> None:
    worker = await asyncpg.connect(to_libpq(fresh.urls.worker))
    try:
        for statement in (
            "SELECT count(*) FROM policy_notices",
            "DELETE FROM policy_notices",
            "UPDATE policy_announcements SET after_account_id = 0",
            "INSERT INTO policy_announcements (policy_version) VALUES ('2026-11-27')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await worker.execute(statement)
    finally:
        await worker.close()
    app = await asyncpg.connect(to_libpq(fresh.urls.app))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.fetchval(
                "SELECT pz_policy_notice_batch('2026-11-27', current_date, now(), 1)"
            )
    finally:
        await app.close()


async def test_withdrawing_consent_leaves_a_queued_policy_notice_pending(fresh: Fresh) -> None:
    """Withdrawal (8.4) stops every message that needs consent; the notice of a policy change
    does not (pz_notification_blocked), so it is not cancelled with them."""
    conn = fresh.owner
    someone = await person(conn, telegram=True)
    today = policy_today()
    await publish(conn, "v2", published=today, effective=today + timedelta(days=30))
    await fan_out(fresh.worker, later())
    await conn.execute(
        "INSERT INTO notifications (account_id, event, channel, idempotency_key) "
        "VALUES ($1, 'booking.reminder', 'auto', 'other-message')",
        someone,
    )
    await conn.execute(
        "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
        "VALUES ($1, '2026-11-27', '{booking,notifications}', 'withdrawn', 'mini_app')",
        someone,
    )
    async with conn.transaction():  # as the person themselves, as the app calls it
        await conn.execute("SELECT set_config('app.account_id', $1, true)", str(someone))
        await conn.execute("SELECT pz_consent_withdrawal($1, now())", someone)
    rows = await conn.fetch(
        "SELECT event, status FROM notifications WHERE account_id = $1 ORDER BY event", someone
    )
    assert [tuple(r) for r in rows] == [("booking.reminder", "cancelled"),
                                        ("policy.notice", "pending")]  # fmt: skip


async def test_the_notice_is_delivered_in_the_persons_language_with_what_changes(
    fresh: Fresh, stub: ProviderStub, smtp: tuple[Mailbox, int], tmp_path: Any
) -> None:
    conn = fresh.owner
    await person(conn, telegram=True, email="aigerim@example.kz", locale="kk")
    today = policy_today()
    effective = today + timedelta(days=31)
    version = effective.isoformat()
    await publish(conn, version, published=today, effective=effective)
    await fan_out(fresh.worker, later())

    settings = make_settings(**worker_env(stub, smtp[1], tmp_path), LANDING_BASE_URL=LANDING)
    channels = build_channels(settings)
    relay = build_relay(settings, fresh.worker, channels)
    try:
        assert await relay.run_once(later()) == Counter(sent=2)
    finally:
        for channel in channels.values():
            await channel.aclose()
    [telegram] = stub.snapshot("telegram")
    for text in (telegram.text, smtp[0].messages[-1][1].get_body(("plain",)).get_content()):
        assert SUMMARY["kk"] in text
        assert f"{LANDING}/kk/privacy/{version}/" in text  # the new text
        assert f"{LANDING}/kk/privacy/" in text  # the policy in force (the landing's contract)
        assert str(effective.year) in text and "күшіне енеді" in text  # Kazakh, with the date
        assert "жаңа редакцияны қабылдауды" in text  # asked to accept before the next booking
    [(rcpt, mail)] = smtp[0].messages
    assert rcpt == ["aigerim@example.kz"] and "құпиялылық" in str(mail["Subject"]).lower()


async def test_the_worker_job_announces_and_wakes_the_relay(fresh: Fresh, wsettings: Any) -> None:
    """``announce_policy`` as SAQ runs it (every 5 minutes): the notices queued, then the relay
    started at once instead of at its next tick; a run with nothing new starts nothing."""
    someone = await person(fresh.owner, telegram=True)
    await fresh.owner.execute("UPDATE accounts SET created_at = now() - interval '1 hour'")
    today = policy_today()
    await publish(fresh.owner, "v2", published=today, effective=today + timedelta(days=30))

    @dataclass
    class Runtime:  # what the job uses of workers.jobs.Runtime: the engine, and the kick
        engine: AsyncEngine
        kicks: int = 0

        async def kick(self) -> int:
            self.kicks += 1
            return 1

    runtime = Runtime(fresh.worker)
    assert await jobs.announce_policy({"runtime": runtime}) == {"v2": 1}
    assert runtime.kicks == 1 and await told(fresh.owner) == {(someone, "telegram")}
    assert await jobs.announce_policy({"runtime": runtime}) == {"v2": 0}
    assert runtime.kicks == 1
    crons = {job.function.__name__: job.cron for job in cron_jobs(wsettings)}
    assert crons["announce_policy"] == "*/5 * * * *"
