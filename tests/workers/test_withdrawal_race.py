"""Withdrawal of consent (policy 8.4) racing a worker, on real PostgreSQL with two concurrent
transactions.

What happens, case by case:

* the withdrawal locks the person's pending rows first: a worker's claim (``FOR UPDATE SKIP
  LOCKED``) passes them by, and once the withdrawal commits they are cancelled;
* a worker has claimed rows and not yet committed (the worst case for the database): the
  withdrawal's UPDATE waits for the claim, then sees the rows ``sending`` and leaves them to
  the worker, which checks the consent after its claim (``pz_notification_blocked``) and
  cancels them instead of sending;
* a worker put a row back to ``pending`` after a failed try: the outbox's gate cancels it;
* a worker had already called the provider when the withdrawal committed: that message
  arrives. It cannot be called back; it was sent at the moment consent was withdrawn, and it
  is the only kind that can be (a batch, within the provider timeout).
"""

from __future__ import annotations

import asyncio
import time as clock
from collections.abc import AsyncIterator
from datetime import time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database
from app.domain import privacy
from app.domain.consent import current_policy, record_consent
from app.models import Account
from tests.factories import BusinessFixture, create_business, local_start
from tests.workers.conftest import new_account, poll
from tests.workers.provider_stub import ProviderStub
from tests.workers.test_reminders import book
from workers import reminders
from workers.relay import _CLAIM, Claimed, Relay

pytestmark = pytest.mark.policy("8.4")

HOUR = timedelta(hours=1)


@pytest.fixture
async def app_db(wdb: DatabaseUrls) -> AsyncIterator[Database]:
    runtime = Database(wdb.app)
    yield runtime
    await runtime.dispose()


async def consenting_client(owner: AsyncSession) -> tuple[BusinessFixture, Account]:
    async with owner.begin():
        business = await create_business(owner)
        client = await new_account(owner)
        policy = await current_policy(owner)
        await record_consent(
            owner, client.id, policy_version=policy.version, purposes=policy.purposes,
            action="granted", channel="mini_app", ip=None, user_agent=None,
        )  # fmt: skip
    return business, client


async def rows_of(engine: AsyncEngine, account_id: int) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT event, status, last_error FROM notifications WHERE account_id = :a "
                "ORDER BY id"
            ),
            {"a": account_id},
        )
        return [(r.event, r.status, r.last_error) for r in rows]


def calls_to(stub: ProviderStub, client: Account) -> int:
    return sum(1 for call in stub.snapshot() if call.address == str(client.telegram_id))


async def test_rows_a_worker_claimed_before_the_withdrawal_committed_are_not_sent(
    relay: Relay,
    app_db: Database,
    owner: AsyncSession,
    wowner: AsyncEngine,
    worker_engine: AsyncEngine,
    stub: ProviderStub,
) -> None:
    fixture, client = await consenting_client(owner)
    start = local_start(fixture, days_ahead=5, at=time(11))
    await book(owner, fixture, client, start, now=start - 3 * 24 * HOUR)
    now = start - 23 * HOUR  # the confirmation and the 24 h reminder are due

    # the worker claims, and has not committed yet: it holds the rows' locks
    worker = await worker_engine.connect()
    claim = await worker.begin()
    claimed = (
        await worker.execute(
            _CLAIM, {"now": now, "limit": 20, "lease_until": now + relay.config.lease}
        )
    ).all()
    mine = [r for r in claimed if r.account_id == client.id]
    assert {r.event for r in mine} == {"booking.created", "booking.reminder"}

    backend: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def withdraw() -> None:
        async with app_db.transaction(account_id=client.id) as session:
            backend.set_result(await session.scalar(text("SELECT pg_backend_pid()")))
            await privacy.withdraw_consent(session, client.id, "mini_app", None, None, now=now)

    withdrawal = asyncio.create_task(withdraw())
    pid = await backend

    async def waits_for_the_worker() -> bool:
        async with wowner.connect() as conn:
            blockers = await conn.scalar(text("SELECT pg_blocking_pids(:p)"), {"p": pid})
        return bool(blockers)

    await poll(waits_for_the_worker)  # the withdrawal's UPDATE waits for the claim's locks
    assert not withdrawal.done()
    await claim.commit()
    await worker.close()
    await withdrawal

    # the claimed rows stayed with the worker, nothing of the person is left pending
    states = await rows_of(wowner, client.id)
    assert {(e, s) for e, s, _ in states if s != "cancelled"} == {
        ("booking.created", "sending"),
        ("booking.reminder", "sending"),
    }
    # the worker goes on with its batch: it sees the withdrawal and sends nothing to them
    rows = [Claimed(**r._mapping, claimed_mono=clock.monotonic()) for r in claimed]
    outcomes = await relay.process(rows, now)
    assert outcomes["cancelled"] == len(mine)
    assert calls_to(stub, client) == 0
    assert {(e, s, w) for e, s, w in await rows_of(wowner, client.id) if s != "cancelled"} == set()
    assert all(
        w in ("consent withdrawn", "booking cancelled")
        for _, _, w in await rows_of(wowner, client.id)
    )

    # no later job queues anything due for them: the desk books their account again, the
    # reminder job runs, the relay drains through the visit
    again = start + 24 * HOUR
    await book(owner, fixture, client, again, now=now)
    for moment in (again - 25 * HOUR, again - 23 * HOUR, again - 90 * timedelta(minutes=1)):
        await reminders.sweep(worker_engine, moment)
        await relay.drain(clock=lambda m=moment: m)
    assert calls_to(stub, client) == 0
    assert [r for r in await rows_of(wowner, client.id) if r[1] == "pending"] == []


async def test_a_withdrawal_holding_the_rows_makes_a_worker_pass_them_by(
    relay: Relay,
    app_db: Database,
    owner: AsyncSession,
    wowner: AsyncEngine,
    stub: ProviderStub,
) -> None:
    fixture, client = await consenting_client(owner)
    start = local_start(fixture, days_ahead=5, at=time(15))
    await book(owner, fixture, client, start, now=start - 3 * 24 * HOUR)
    now = start - 23 * HOUR

    async with app_db.transaction(account_id=client.id) as session:
        await privacy.withdraw_consent(session, client.id, "mini_app", None, None, now=now)
        # not committed yet: a worker runs meanwhile, on its own connection
        await relay.run_once(now)
        assert calls_to(stub, client) == 0
    states = await rows_of(wowner, client.id)
    assert states and {(s, w) for _, s, w in states} == {("cancelled", "consent withdrawn")}
    outcomes = await relay.drain(clock=lambda: now)
    assert calls_to(stub, client) == 0
    assert outcomes["sent"] >= 1  # the business's people are told of the cancelled visit
