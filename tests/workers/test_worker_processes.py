"""Real ``pozapisi worker`` processes: one killed mid-send (SIGKILL), two running together."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.workers.conftest import insert_rows, new_account, poll
from tests.workers.provider_stub import ProviderStub

CODE = re.compile(r"\b\d{6}\b")


def code_of(message_text: str) -> str:
    [code] = CODE.findall(message_text)
    return code


async def queue_codes(
    engine: AsyncEngine, owner: AsyncSession, count: int, prefix: str
) -> tuple[list[str], list[int]]:
    """``count`` sign-in codes to one Telegram user: each text names its row."""
    async with owner.begin():
        person = await new_account(owner)
    codes = [f"{prefix}{n:05d}" for n in range(count)]
    ids = await insert_rows(
        engine,
        [
            {"event": "otp.code", "account_id": person.id, "idempotency_key": f"proc:{code}",
             "payload": json.dumps({"code": code, "ttl_min": 60})}
            for code in codes
        ],
    )  # fmt: skip
    return codes, ids


async def all_sent(engine: AsyncEngine, ids: list[int]) -> bool:
    async with engine.connect() as conn:
        left = await conn.scalar(
            text("SELECT count(*) FROM notifications WHERE id = ANY(:ids) AND status <> 'sent'"),
            {"ids": ids},
        )
    return left == 0


async def test_a_killed_worker_loses_nothing_and_repeats_only_what_was_in_flight(
    spawn_worker: Any, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    stub.hold()  # the provider takes each message, then holds its answer
    codes, ids = await queue_codes(wowner, owner, 150, "7")
    first = spawn_worker()
    await poll(lambda: _at_least(stub, 1))  # first is mid-send …
    await _quiet(stub)  # … with every request it may have in flight at the provider
    first.kill()
    # what the dead worker had written to its sockets still reaches the provider: count it
    await _quiet(stub)
    in_flight = {code_of(c.text) for c in stub.snapshot()}
    stub.release()

    spawn_worker()
    await poll(lambda: all_sent(wowner, ids), timeout_s=120)
    await asyncio.sleep(2.5)  # nothing more arrives after the outbox says "sent"

    delivered = Counter(code_of(c.text) for c in stub.accepted())
    assert set(delivered) == set(codes), "every notification delivered at least once"
    repeated = {code for code, n in delivered.items() if n > 1}
    assert repeated <= in_flight, "only messages the provider had when the worker died repeat"
    # … and every repeat is counted on its row as a possible duplicate (sent rows lose their
    # code, so rows are matched by id, in the order they were queued)
    code_by_id = dict(zip(ids, codes, strict=True))
    async with wowner.connect() as conn:
        counted = {
            code_by_id[row_id]: duplicates or 0
            for row_id, duplicates in await conn.execute(
                text(
                    "SELECT id, (payload->>'possible_duplicates')::int FROM notifications "
                    "WHERE id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        }
    assert all(delivered[code] - 1 <= counted[code] for code in codes)
    print(f"in flight at kill: {len(in_flight)}, delivered more than once: {len(repeated)}")


async def _quiet(stub: ProviderStub, for_s: float = 1.0) -> None:
    """Wait until no new request has arrived for ``for_s`` seconds."""
    seen = -1
    while (count := len(stub.snapshot())) != seen:
        seen = count
        await asyncio.sleep(for_s)


async def _at_least(stub: ProviderStub, count: int) -> bool:
    return len(stub.snapshot()) >= count


async def test_two_workers_together_never_send_a_row_twice(
    spawn_worker: Any, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    workers = [spawn_worker(), spawn_worker()]

    async def both_up() -> bool:
        async with wowner.connect() as conn:
            alive = await conn.scalar(
                text("SELECT count(*) FROM saq_stats WHERE expire_at >= extract(epoch FROM now())")
            )
            # and both listen for new rows: a worker whose LISTEN is not up yet would only see
            # them on a later tick, by which time the other may have sent them all
            listening = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'pozapisi-wake'"
                )
            )
        return int(alive or 0) >= 2 and int(listening or 0) >= 2

    await poll(both_up)
    # a provider that takes a moment per message, as real ones do: otherwise on a quiet machine
    # one worker can drain all 1,000 rows before the other wakes, and nothing is tested
    stub.delay_s = 0.05  # ~6 s for one worker alone: longer than the other one's cron tick
    codes, ids = await queue_codes(wowner, owner, 1000, "8")
    await poll(lambda: all_sent(wowner, ids), timeout_s=120)
    await asyncio.sleep(2.5)

    delivered = Counter(code_of(c.text) for c in stub.accepted())
    assert sorted(delivered) == codes
    assert set(delivered.values()) == {1}, "a row was sent twice"
    # every claim is one attempt; a row claims again only after a worker released it unsent
    # (too little of its lease left: a busy machine delays messages rather than repeat them)
    released = Counter(
        int(found)
        for w in workers
        for found in re.findall(r"notification\.released.*?notification_id=(\d+)", w.output())
    )
    async with wowner.connect() as conn:
        attempts = dict(
            (
                await conn.execute(
                    text("SELECT id, attempts FROM notifications WHERE id = ANY(:ids)"),
                    {"ids": ids},
                )
            ).all()
        )
    assert {i: attempts[i] - 1 for i in ids if attempts[i] > 1} == {
        i: n for i, n in released.items() if i in attempts
    }
    shares = [_sent_by(w.output()) for w in workers]
    print(f"rows sent by each worker: {shares}")
    assert sum(shares) == 1000 and min(shares) > 0, "both workers took part"


def _sent_by(log: str) -> int:
    return sum(int(n) for n in re.findall(r"relay\.drained.*?\bsent=(\d+)", log))


async def test_sigterm_lets_the_sends_in_flight_finish(
    spawn_worker: Any, wowner: AsyncEngine, owner: AsyncSession, stub: ProviderStub
) -> None:
    """A deploy stops workers with SIGTERM: what they are sending is finished and recorded,
    so the next worker repeats nothing."""
    stub.delay_s = 1.0  # the provider answers slowly, well within the timeout
    _codes, ids = await queue_codes(wowner, owner, 8, "9")
    worker = spawn_worker()
    await poll(lambda: _at_least(stub, 8))
    await asyncio.to_thread(worker.stop)  # SIGTERM, then wait for the exit
    assert worker.proc.returncode == 0
    assert await all_sent(wowner, ids)
    async with wowner.connect() as conn:
        repeats = await conn.scalar(
            text(
                "SELECT count(*) FROM notifications WHERE id = ANY(:ids) "
                "AND payload ? 'possible_duplicates'"
            ),
            {"ids": ids},
        )
    assert repeats == 0
