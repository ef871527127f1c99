"""Retention (policy 7): technical data of a deleted account goes within 30 days, an active
account keeps everything, financial documents stay five years and then go. The job runs as the
worker role with the clock the test gives it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database
from app.db.urls import to_sqlalchemy
from app.domain import audit
from app.domain.audit import Actor
from app.domain.consent import current_policy, record_consent
from app.domain.privacy import erase_account
from app.security import sessions
from tests.conftest import make_settings
from tests.factories import create_business
from tests.privacy.conftest import SECRET, Person, make_person, random_ip
from workers import retention
from workers.settings import cron_jobs


@pytest.fixture
async def worker_engine(database: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(to_sqlalchemy(database.worker), poolclass=NullPool)
    yield engine
    await engine.dispose()


async def leave_traces(db: Database, person: Person, ip: str) -> None:
    """What a person's visits leave behind: a consent, a sign-in session, an audited change and
    a security event, each with the IP and user agent they came from (the app's own functions)."""
    agent = f"TestPhone/{person.id}"
    async with db.transaction(account_id=person.id) as session:
        policy = await current_policy(session)
        await record_consent(
            session, person.id, policy_version=policy.version, purposes=policy.purposes,
            action="granted", channel="mini_app", ip=ip, user_agent=agent,
        )  # fmt: skip
        await sessions.issue(
            session, account_id=person.id, kind="miniapp", key=SECRET,
            ip=ip, user_agent=agent,
        )  # fmt: skip
        await audit.record(
            session, actor=Actor(kind="client", account_id=person.id, ip=ip, user_agent=agent),
            action="account.update", entity="account", entity_id=person.id, business_id=None,
            after={"locale": "kk"},
        )  # fmt: skip
        await sessions.record_event(
            session, person.id, "sessions.signed_out_others", ip=ip, user_agent=agent
        )


async def technical_data(owner: AsyncSession, account_id: int) -> dict[str, int]:
    """How many rows still hold an IP or user agent of the account, per table."""
    queries = {
        "audit_details": "SELECT count(*) FROM audit_details d JOIN audit_log a "
        "ON a.id = d.audit_id WHERE a.actor_account_id = :a "
        "AND (d.ip IS NOT NULL OR d.user_agent IS NOT NULL)",
        "consent_technical": "SELECT count(*) FROM consent_technical t JOIN consents c "
        "ON c.id = t.consent_id WHERE c.account_id = :a",
        "security_events": "SELECT count(*) FROM security_events WHERE account_id = :a",
        "sessions": "SELECT count(*) FROM sessions WHERE account_id = :a",
    }
    return {
        table: int(await owner.scalar(text(sql), {"a": account_id}) or 0)
        for table, sql in queries.items()
    }


@pytest.mark.policy("7.2")
@pytest.mark.policy("7.1")
async def test_technical_data_of_a_deleted_account_goes_within_30_days_and_nobody_elses(
    db: Database, owner_session: AsyncSession, worker_engine: AsyncEngine
) -> None:
    gone = await make_person(owner_session)
    stays = await make_person(owner_session, first="Aliya")
    for person in (gone, stays):
        await leave_traces(db, person, random_ip())
    before = {p.id: await technical_data(owner_session, p.id) for p in (gone, stays)}
    assert all(count >= 1 for counts in before.values() for count in counts.values()), before

    deleted_at = datetime.now(UTC)
    async with db.transaction(account_id=gone.id) as session:
        await erase_account(session, gone.id, now=deleted_at)

    # kept a while after the deletion (abuse just before it can still be looked into) ...
    early = deleted_at + retention.TECHNICAL_DATA_KEPT - timedelta(hours=1)
    await retention.enforce(worker_engine, early)
    left = await technical_data(owner_session, gone.id)
    assert left["audit_details"] >= 1 and left["consent_technical"] >= 1, left
    # ... and gone well within the 30 days the policy promises, from every table
    done = await retention.enforce(worker_engine, deleted_at + retention.TECHNICAL_DATA_KEPT)
    assert done.audit_details >= 1 and done.consent_records >= 1 and done.security_events >= 1
    assert await technical_data(owner_session, gone.id) == dict.fromkeys(before[gone.id], 0)

    # an active account keeps everything, however late the job runs (7.1)
    await retention.enforce(worker_engine, deleted_at + timedelta(days=3650))
    assert await technical_data(owner_session, stays.id) == before[stays.id]
    assert await owner_session.scalar(
        text("SELECT deleted_at IS NULL AND name IS NOT NULL FROM accounts WHERE id = :a"),
        {"a": stays.id},
    )
    # the audit chains still verify: only side-table values were cleared
    assert (await owner_session.execute(text("SELECT * FROM audit_verify()"))).all() == []


@pytest.mark.policy("7.2")
@pytest.mark.policy("2.6")
async def test_retention_covers_every_column_that_holds_an_ip_or_a_user_agent(
    owner_session: AsyncSession,
) -> None:
    """A new table with an IP address or a user agent fails here until retention covers it."""
    rows = (
        await owner_session.execute(
            text(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
                "AND (c.data_type = 'inet' OR c.column_name ILIKE '%user_agent%' "
                "OR c.column_name ~* '(^|_)ip(_|$)')"
            )
        )
    ).all()
    assert {(r.table_name, r.column_name) for r in rows} == retention.TECHNICAL_COLUMNS


async def add_invoice(
    owner: AsyncSession, business_id: int, number: str, issued: date, paid: date | None
) -> int:
    invoice_id = int(
        await owner.scalar(
            text(
                "INSERT INTO invoices (business_id, number, amount_tiyn, issued_on, due_on, "
                "status, retain_until) VALUES (:b, :n, 990000, :i, :i, :s, "
                "CAST(:i AS date) + 1826) RETURNING id"
            ),
            {"b": business_id, "n": number, "i": issued, "s": "paid" if paid else "open"},
        )
    )
    if paid is not None:
        await owner.execute(
            text(
                "INSERT INTO payments (business_id, invoice_id, amount_tiyn, provider, paid_at, "
                "retain_until) VALUES (:b, :inv, 990000, 'kaspi', :at, CAST(:day AS date) + 1826)"
            ),
            {"b": business_id, "inv": invoice_id, "day": paid,
             "at": datetime.combine(paid, time(12), UTC)},
        )  # fmt: skip
    return invoice_id


@pytest.mark.policy("7.3")
async def test_financial_documents_stay_five_years_then_go(
    owner_session: AsyncSession, worker_engine: AsyncEngine
) -> None:
    business = await create_business(owner_session)
    today = datetime.now(UTC).date()
    tag = business.slug[-8:]
    old = await add_invoice(
        owner_session, business.id, f"R-{tag}-1", date(2019, 1, 15), date(2019, 1, 20)
    )
    # paid four years late: the payment's own five years keep the invoice it refers to
    late = await add_invoice(
        owner_session, business.id, f"R-{tag}-2", date(2019, 2, 1), today - timedelta(days=30)
    )
    fresh = await add_invoice(owner_session, business.id, f"R-{tag}-3", today, today)
    await owner_session.commit()

    async def invoices() -> set[int]:
        rows = await owner_session.execute(
            text("SELECT id FROM invoices WHERE business_id = :b"), {"b": business.id}
        )
        return set(rows.scalars())

    async def payments() -> int:
        return int(
            await owner_session.scalar(
                text("SELECT count(*) FROM payments WHERE business_id = :b"), {"b": business.id}
            )
            or 0
        )

    done = await retention.enforce(worker_engine, datetime.now(UTC))
    assert done.payments >= 1 and done.invoices >= 1
    assert await invoices() == {late, fresh} and await payments() == 2
    assert old not in await invoices()

    # a job told it is 2045 still reaches nothing under its legal hold: the database's clock rules
    await retention.enforce(worker_engine, datetime.now(UTC) + timedelta(days=20 * 365))
    assert await invoices() == {late, fresh} and await payments() == 2

    # and the worker role cannot go around the function
    async with worker_engine.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text("DELETE FROM invoices"))


def test_retention_runs_daily() -> None:
    [job] = [j for j in cron_jobs(make_settings()) if j.function.__name__ == "enforce_retention"]
    minute, hour, *rest = job.cron.split()
    assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]
