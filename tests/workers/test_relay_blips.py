"""A database blip never duplicates a notification (issue 12, item 12).

The provider has accepted the messages, and the database goes away before the relay records
that: the relay keeps trying the record on a fresh connection, backing off, within the rows'
lease. When the server is back the rows are ``sent``; no lease runs out, nothing is sent twice.
The database is a private server of this test's own (stopping it disturbs no other test)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.session import make_engine
from app.db.urls import to_sqlalchemy
from app.settings import Settings
from tests.support.private_pg import PrivateServer, private_server
from tests.workers.conftest import insert_rows, new_account, poll, statuses
from tests.workers.provider_stub import ProviderStub
from tests.workers.test_relay import otp
from workers.jobs import build_channels, build_relay
from workers.relay import Relay, utcnow

MESSAGES = 6


@pytest.fixture
async def blip_db() -> AsyncIterator[tuple[PrivateServer, DatabaseUrls, AsyncEngine]]:
    async with private_server() as server:
        urls = await server.create_database()
        owner = create_async_engine(to_sqlalchemy(urls.owner), poolclass=NullPool)
        try:
            yield server, urls, owner
        finally:
            await owner.dispose()


@pytest.fixture
async def blip_relay(
    wsettings: Settings, blip_db: tuple[PrivateServer, DatabaseUrls, AsyncEngine]
) -> AsyncIterator[Relay]:
    engine = make_engine(blip_db[1].worker, pool_size=4)
    channels = build_channels(wsettings)
    yield build_relay(wsettings, engine, channels)
    for channel in channels.values():
        await channel.aclose()
    await engine.dispose()


async def test_a_stop_while_sends_are_in_flight_repeats_no_message(
    wsettings: Settings,
    stub: ProviderStub,
    blip_db: tuple[PrivateServer, DatabaseUrls, AsyncEngine],
    blip_relay: Relay,
) -> None:
    server, _urls, owner = blip_db
    async with AsyncSession(owner, expire_on_commit=False) as session:
        people = [await new_account(session) for _ in range(MESSAGES)]
        await session.commit()
    ids = await insert_rows(owner, [otp(p.id, code=f"3000{i:02d}") for i, p in enumerate(people)])

    stub.hold()  # the provider records each message and keeps its answer back
    relay_run = asyncio.create_task(blip_relay.run_once())

    async def all_arrived() -> bool:
        return len(stub.snapshot()) == MESSAGES

    await poll(all_arrived)
    await server.stop()  # the database goes away while every send is in flight
    stub.release()  # the provider accepts them all: the relay must now record that

    async def all_answered() -> bool:
        return all(call.accepted for call in stub.snapshot())

    await poll(all_answered)
    await asyncio.sleep(0.5)  # the records meet the stopped server (and back off)
    await server.start()
    assert await relay_run == Counter(sent=MESSAGES)

    # every row is recorded as sent: no lease runs out, no later tick sends one again
    rows = await statuses(owner, ids)
    assert {row["status"] for row in rows.values()} == {"sent"}
    assert all("possible_duplicates" not in row["payload"] for row in rows.values())
    later = utcnow() + timedelta(seconds=wsettings.notify_lease_s + 1)
    assert await blip_relay.recover_stalled(later) == 0
    assert await blip_relay.run_once(later) == Counter()
    sent_to = stub.accepted_count_by("address", "telegram")
    assert len(sent_to) == MESSAGES and set(sent_to.values()) == {1}  # 0 duplicates
