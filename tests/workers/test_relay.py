"""The outbox relay, driven directly (worker role, loopback providers, a controllable clock)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.settings import Settings
from tests.conftest import make_settings
from tests.workers.conftest import Mailbox, insert_rows, new_account, statuses
from tests.workers.provider_stub import ProviderStub
from workers.jobs import build_channels, build_relay
from workers.relay import Relay, RelayConfig


def otp(account_id: int | None = None, *, code: str, address: str | None = None,
        channel: str = "auto", key: str | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "event": "otp.code", "account_id": account_id, "address": address, "channel": channel,
        "payload": json.dumps({"code": code}), "idempotency_key": key or f"otp:{code}", **extra,
    }  # fmt: skip


def code_in(text: str) -> str:
    [code] = re.findall(r"\b\d{6}\b", text)
    return code


@pytest.mark.policy("5.2")
async def test_telegram_first_when_the_bot_may_write(
    relay: Relay, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        person = await new_account(owner, phone="+77011110001", email="a@example.kz")
    ids = await insert_rows(wowner, [otp(person.id, code="100001")])
    assert await relay.drain() == Counter(sent=1)
    [call] = stub.snapshot()
    assert (call.api, call.address) == ("telegram", str(person.telegram_id))
    assert "100001" in call.text and call.body["parse_mode"] == "HTML"
    # policy 5.2: the provider gets the address and the text, nothing else about the person
    assert set(call.body) == {"chat_id", "text", "parse_mode", "link_preview_options"}
    row = (await statuses(wowner, ids))[ids[0]]
    assert (row["status"], row["delivered_channel"], row["attempts"]) == ("sent", "telegram", 1)
    assert "code" not in row["payload"]  # a sent code does not linger in the outbox


@pytest.mark.policy("5.2")
async def test_sms_when_telegram_is_not_allowed_then_email(
    relay: Relay,
    wowner: AsyncEngine,
    owner: AsyncSession,
    stub: ProviderStub,
    smtp: tuple[Mailbox, int],
) -> None:
    async with owner.begin():
        by_sms = await new_account(owner, allows_pm=False, phone="+77011110002")
        by_mail = await new_account(owner, telegram=False, email="client@example.kz", locale="kk")
    await insert_rows(wowner, [otp(by_sms.id, code="100002"), otp(by_mail.id, code="100003")])
    assert await relay.drain() == Counter(sent=2)
    [sms] = stub.snapshot("sms")
    assert sms.address == "+77011110002" and "100002" in sms.text
    assert set(sms.body) == {"recipient", "text", "sender"}
    assert stub.snapshot("telegram") == []
    mailbox, _port = smtp
    [(recipients, mail)] = mailbox.messages
    assert recipients == ["client@example.kz"]
    assert "100003" in str(mail["Subject"])
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert {"text/plain", "text/html"} <= set(parts)
    assert "100003" in parts["text/plain"].get_payload(decode=True).decode()
    assert "<html" in parts["text/html"].get_payload(decode=True).decode()
    assert "коды" in parts["text/plain"].get_payload(decode=True).decode()  # Kazakh, as chosen


async def test_a_code_to_an_address_uses_that_channel(
    relay: Relay, wowner: AsyncEngine, stub: ProviderStub
) -> None:
    ids = await insert_rows(wowner, [otp(address="+77011110003", channel="sms", code="100004")])
    await relay.drain()
    [sms] = stub.snapshot()
    assert (sms.api, sms.address) == ("sms", "+77011110003") and "100004" in sms.text
    assert (await statuses(wowner, ids))[ids[0]]["status"] == "sent"


async def test_nobody_to_reach_fails_visibly_in_production(
    wsettings: Settings, worker_engine: AsyncEngine, wowner: AsyncEngine, owner: AsyncSession
) -> None:
    async with owner.begin():
        nobody = await new_account(owner, telegram=False)
    production = msgspec.structs.replace(wsettings, environment="production")
    relay = build_relay(production, worker_engine, build_channels(wsettings))
    ids = await insert_rows(wowner, [otp(nobody.id, code="100005")])
    assert await relay.drain() == Counter(failed=1)
    assert (await statuses(wowner, ids))[ids[0]]["last_error"].startswith("no_channel")


async def test_dev_outbox_when_nothing_is_configured(
    worker_engine: AsyncEngine,
    wowner: AsyncEngine,
    owner: AsyncSession,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bare = make_settings(TELEGRAM_BOT_TOKEN="", DATA_DIR=str(tmp_path))
    channels = build_channels(bare)
    assert channels == {}
    relay = build_relay(bare, worker_engine, channels)
    async with owner.begin():
        person = await new_account(owner, phone="+77011110006")
    ids = await insert_rows(wowner, [otp(person.id, code="731905")])
    assert await relay.drain() == Counter(sent=1)
    row = (await statuses(wowner, ids))[ids[0]]
    assert row["delivered_channel"] == "dev"
    [letter] = list((tmp_path / "outbox").glob("*.txt"))
    content = letter.read_text()
    assert "731905" in content and "telegram:" in content  # an operator can read it
    assert "731905" not in capsys.readouterr().out  # … but it is never logged


async def test_two_relays_side_by_side_never_send_a_row_twice(
    relay: Relay, wsettings: Settings, worker_engine: AsyncEngine, wowner: AsyncEngine,
    owner: AsyncSession, stub: ProviderStub,
) -> None:  # fmt: skip
    async with owner.begin():
        person = await new_account(owner)
    codes = [f"2{n:05d}" for n in range(300)]
    await insert_rows(wowner, [otp(person.id, code=c) for c in codes])
    other = build_relay(wsettings, worker_engine, build_channels(wsettings))
    results = await asyncio.gather(*(r.drain() for r in (relay, other, relay, other)))
    assert sum((c for c in results), Counter()) == Counter(sent=300)
    sent = Counter(code_in(call.text) for call in stub.snapshot())
    assert sorted(sent) == codes and set(sent.values()) == {1}


async def test_provider_errors_back_off_and_the_message_arrives_once(
    relay: Relay, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        person = await new_account(owner)
    ids = await insert_rows(wowner, [otp(person.id, code="300001")])
    stub.fail_next("telegram", 3, 500)
    now = datetime.now(UTC)
    delays = []
    for _ in range(3):
        assert await relay.run_once(now) == Counter(retry=1)
        row = (await statuses(wowner, ids))[ids[0]]
        assert row["status"] == "pending" and row["last_error"].startswith("provider_unavailable")
        assert await relay.run_once(now) == Counter()  # not before its time
        delays.append(row["next_attempt_at"] - now)
        now = row["next_attempt_at"]
    assert await relay.run_once(now) == Counter(sent=1)
    assert len(stub.snapshot()) == 4 and len(stub.accepted()) == 1
    assert (await statuses(wowner, ids))[ids[0]]["attempts"] == 4
    assert all(d > timedelta(0) for d in delays)


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    config = RelayConfig(retry_base_s=10, retry_cap_s=1000)
    for attempt, full in [(1, 10), (2, 20), (3, 40), (8, 1000), (12, 1000)]:
        delay = config.backoff(attempt).total_seconds()
        assert full / 2 <= delay <= full
    assert config.backoff(1, retry_after=300).total_seconds() >= 300


async def test_rate_limit_waits_as_long_as_telegram_asks(
    relay: Relay, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        person = await new_account(owner)
    ids = await insert_rows(wowner, [otp(person.id, code="300002")])
    stub.fail_next(
        "telegram", 1, 429, description="Too Many Requests", parameters={"retry_after": 45}
    )
    now = datetime.now(UTC)
    await relay.run_once(now)
    row = (await statuses(wowner, ids))[ids[0]]
    assert row["last_error"].startswith("rate_limited")
    assert row["next_attempt_at"] >= now + timedelta(seconds=45)


async def test_blocked_bot_fails_at_once_and_switches_the_person_to_sms(
    relay: Relay, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        person = await new_account(owner, phone="+77011110007")
    stub.block_chat(person.telegram_id)
    ids = await insert_rows(wowner, [otp(person.id, code="300003")])
    assert await relay.drain() == Counter(failed=1)
    row = (await statuses(wowner, ids))[ids[0]]
    assert row["status"] == "failed" and row["last_error"].startswith("blocked")
    assert await relay.run_once(datetime.now(UTC) + timedelta(days=1)) == Counter()
    assert len(stub.snapshot("telegram")) == 1
    # the next message goes by SMS: the bot may no longer write to them
    await insert_rows(wowner, [otp(person.id, code="300004")])
    await relay.drain()
    assert [c.address for c in stub.snapshot("sms")] == ["+77011110007"]


async def test_a_number_the_provider_refuses_is_permanent(
    relay: Relay, wowner: AsyncEngine, stub: ProviderStub
) -> None:
    ids = await insert_rows(
        wowner,
        [
            otp(address="+15550000001", channel="sms", code="300005"),  # the stub takes +7 only
            otp(address="not-a-number", channel="sms", code="300006"),  # refused before sending
        ],
    )
    assert await relay.drain() == Counter(failed=2)
    rows = await statuses(wowner, ids)
    assert all(r["last_error"].startswith("invalid_address") for r in rows.values())
    assert len(stub.snapshot("sms")) == 1


async def test_a_dead_workers_rows_return_after_the_lease_counted_as_possible_repeats(
    relay: Relay, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        person = await new_account(owner)
    ids = await insert_rows(wowner, [otp(person.id, code="400001")])
    t0 = datetime.now(UTC)
    [claimed] = await relay.claim(t0)  # … and the worker dies before it records anything
    assert (await statuses(wowner, ids))[ids[0]]["status"] == "sending"
    assert await relay.run_once(t0 + timedelta(seconds=1)) == Counter()  # nobody else takes it
    assert await relay.recover_stalled(t0 + timedelta(seconds=1)) == 0
    assert await relay.recover_stalled(t0 + relay.config.lease + timedelta(seconds=1)) == 1
    row = (await statuses(wowner, ids))[ids[0]]
    assert row["status"] == "pending" and row["payload"]["possible_duplicates"] == 1
    assert await relay.run_once(t0 + relay.config.lease + timedelta(seconds=2)) == Counter(sent=1)
    # the dead worker's late answer cannot overwrite what the living one recorded
    from workers.relay import Retry

    await relay.record(claimed, Retry("network: late", t0), t0)
    row = (await statuses(wowner, ids))[ids[0]]
    assert (row["status"], row["attempts"]) == ("sent", 2)


async def test_gives_up_after_the_last_attempt(
    wsettings: Settings, worker_engine: AsyncEngine, wowner: AsyncEngine, owner: AsyncSession,
    stub: ProviderStub,
) -> None:  # fmt: skip
    relay = build_relay(wsettings, worker_engine, build_channels(wsettings))
    relay.config = RelayConfig(max_attempts=2, retry_base_s=0.01)
    async with owner.begin():
        person = await new_account(owner)
    ids = await insert_rows(wowner, [otp(person.id, code="400002")])
    stub.fail_next("telegram", 5, 503)
    now = datetime.now(UTC)
    assert await relay.run_once(now) == Counter(retry=1)
    assert await relay.run_once(now + timedelta(minutes=1)) == Counter(failed=1)
    assert (await statuses(wowner, ids))[ids[0]]["last_error"].startswith("gave_up")


async def test_expired_code_deleted_account_and_unusable_rows_are_not_sent(
    relay: Relay, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    async with owner.begin():
        person = await new_account(owner)
        gone = await new_account(owner)
        await owner.execute(
            text("UPDATE accounts SET deleted_at = now() WHERE id = :id"), {"id": gone.id}
        )
    now = datetime.now(UTC)
    ids = await insert_rows(
        wowner,
        [
            otp(person.id, code="400003"),
            otp(gone.id, code="400004"),
            {"event": "booking.exploded", "account_id": person.id, "idempotency_key": "x:1"},
            {"event": "policy.notice", "account_id": person.id, "idempotency_key": "x:2"},
        ],
    )
    assert await relay.run_once(now + timedelta(minutes=6)) == Counter(cancelled=2, failed=2)
    rows = await statuses(wowner, ids)
    assert rows[ids[0]]["last_error"] == "code expired before it could be sent"
    assert rows[ids[1]]["last_error"] == "account deleted"
    assert rows[ids[2]]["last_error"].startswith("rejected")  # no such event
    assert rows[ids[3]]["last_error"].startswith("rejected")  # no effective date to announce
    assert stub.snapshot() == []


async def test_a_row_whose_lease_runs_short_is_released_not_sent(
    wsettings: Settings, worker_engine: AsyncEngine, wowner: AsyncEngine, owner: AsyncSession,
    stub: ProviderStub,
) -> None:  # fmt: skip
    """A worker slowed down (a busy machine) must not send what another may already retry."""
    relay = build_relay(wsettings, worker_engine, build_channels(wsettings))
    relay.config = RelayConfig(lease=timedelta(seconds=2), send_timeout_s=1, lease_margin_s=1)
    assert relay.config.send_window_s == 0
    async with owner.begin():
        person = await new_account(owner)
    ids = await insert_rows(wowner, [otp(person.id, code="500001")])
    assert await relay.run_once() == Counter(released=1)
    row = (await statuses(wowner, ids))[ids[0]]
    assert (row["status"], row["next_attempt_at"]) == ("pending", None)
    assert stub.snapshot() == []


async def test_a_provider_that_does_not_answer_in_time_is_retried_as_a_possible_repeat(
    wsettings: Settings, worker_engine: AsyncEngine, wowner: AsyncEngine, owner: AsyncSession,
    stub: ProviderStub,
) -> None:  # fmt: skip
    impatient = msgspec.structs.replace(wsettings, notify_timeout_s=0.5)
    channels = build_channels(impatient)
    relay = build_relay(impatient, worker_engine, channels)
    async with owner.begin():
        person = await new_account(owner)
    ids = await insert_rows(wowner, [otp(person.id, code="500002")])
    stub.delay_s = 2  # the provider took the message but answers too late
    assert await relay.run_once() == Counter(retry=1)
    row = (await statuses(wowner, ids))[ids[0]]
    assert row["last_error"].startswith("network")
    assert row["payload"]["possible_duplicates"] == 1  # the retry may repeat it
    for channel in channels.values():
        await channel.aclose()
