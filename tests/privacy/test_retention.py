"""Retention (policy 7): technical data of a deleted account goes within 30 days, an active
account keeps everything, financial documents stay five years and then go. The job runs as the
worker role with the clock the test gives it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.session import Database
from app.db.urls import to_sqlalchemy
from app.domain import audit, profile
from app.domain.audit import Actor
from app.domain.consent import current_policy, record_consent
from app.domain.privacy import erase_account
from app.security import sessions
from tests.conftest import make_settings
from tests.factories import create_business
from tests.privacy.conftest import SECRET, Person, make_person, random_ip
from workers import maintenance, retention
from workers.runner import cron_jobs

# The policy's own numbers, written out here so that the implementation cannot move them.
TECHNICAL_DATA_GONE_WITHIN = timedelta(days=30)  # 7.2: after the account is deleted
FINANCIAL_YEARS = 5  # 7.3: invoices and payments, counted from the document's date


def years_after(day: date, years: int = FINANCIAL_YEARS) -> date:
    """The same day ``years`` later in the calendar (29 February becomes 1 March)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


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
            action="account.contact_change", entity="account", entity_id=person.id, business_id=None,
            after={"locale": "kk"},
        )  # fmt: skip
        await profile.record_event(
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

    # kept the day after the deletion (abuse just before it can still be looked into) ...
    await retention.enforce(worker_engine, deleted_at + timedelta(days=1))
    left = await technical_data(owner_session, gone.id)
    assert left["audit_details"] >= 1 and left["consent_technical"] >= 1, left
    # ... and gone from every table by the daily run on the 30th day the policy promises
    done = await retention.enforce(worker_engine, deleted_at + TECHNICAL_DATA_GONE_WITHIN)
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


async def technical_columns(owner: AsyncSession) -> list[tuple[str, str, str]]:
    """(table, column, type) of every column of the live schema holding an IP or a user agent."""
    rows = await owner.execute(
        text(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
            "AND (c.data_type IN ('inet', 'cidr') OR c.column_name ILIKE '%user_agent%' "
            "OR c.column_name ~* '(^|_)ip(_|$)') ORDER BY 1, 2"
        )
    )
    return [(r.table_name, r.column_name, r.data_type) for r in rows]


async def holding(owner: AsyncSession, ip: str, agent: str) -> dict[str, int]:
    """How many rows of each such column still hold this IP or this user agent."""
    counts = {}
    for table, column, data_type in await technical_columns(owner):
        value = f'host("{column}")' if data_type in ("inet", "cidr") else f'"{column}"::text'
        counts[f"{table}.{column}"] = int(
            await owner.scalar(
                text(f'SELECT count(*) FROM "{table}" WHERE {value} IN (:ip, :agent)'),
                {"ip": ip, "agent": agent},
            )
            or 0
        )
    await owner.commit()
    return counts


@pytest.mark.policy("7.2")
@pytest.mark.policy("2.6")
async def test_retention_clears_every_column_that_holds_an_ip_or_a_user_agent(
    db: Database, owner_session: AsyncSession, worker_engine: AsyncEngine
) -> None:
    """Every IP and user-agent column of the live schema gets a value from a person who then
    deletes their account; 30 days later the daily jobs have cleared each one. A new column
    fails here until this test seeds it and retention clears it."""
    person = await make_person(owner_session)
    ip, agent = random_ip(), f"TestPhone/{person.id}"
    await leave_traces(db, person, ip)  # consent, session, audit entry, security event
    # a sign-in code asked for from the same address two days before
    await owner_session.execute(
        text(
            "INSERT INTO otp_challenges (channel, destination_hash, code_hash, account_id, "
            "expires_at, created_at, ip) VALUES ('sms', :h, 'x', :a, :e, :e, CAST(:ip AS inet))"
        ),
        {"h": f"retention-{person.id}", "a": person.id, "ip": ip,
         "e": datetime.now(UTC) - timedelta(days=2)},
    )  # fmt: skip
    await owner_session.commit()
    seeded = await holding(owner_session, ip, agent)
    assert seeded, "the schema query found no IP or user-agent column at all"
    unseeded = sorted(column for column, count in seeded.items() if count == 0)
    assert not unseeded, f"seed these here, and make retention clear them: {unseeded}"

    deleted_at = datetime.now(UTC)
    async with db.transaction(account_id=person.id) as session:
        await erase_account(session, person.id, now=deleted_at)
    # the daily jobs (workers.runner.cron_jobs), the retention run 30 days after the deletion
    await maintenance.purge_expired(worker_engine, datetime.now(UTC))
    await retention.enforce(worker_engine, deleted_at + TECHNICAL_DATA_GONE_WITHIN)
    assert await holding(owner_session, ip, agent) == dict.fromkeys(seeded, 0)


async def add_invoice(
    owner: AsyncSession, business_id: int, number: str, issued: date, paid: date | None
) -> int:
    """An invoice (and its payment) kept exactly the five years: the last day kept is the
    anniversary of its date."""
    invoice_id = int(
        await owner.scalar(
            text(
                "INSERT INTO invoices (business_id, number, amount_tiyn, issued_on, due_on, "
                "status, retain_until) VALUES (:b, :n, 990000, :i, :i, :s, :keep) RETURNING id"
            ),
            {"b": business_id, "n": number, "i": issued, "s": "paid" if paid else "open",
             "keep": years_after(issued)},
        )
    )  # fmt: skip
    if paid is not None:
        await owner.execute(
            text(
                "INSERT INTO payments (business_id, invoice_id, amount_tiyn, provider, paid_at, "
                "retain_until) VALUES (:b, :inv, 990000, 'kaspi', :at, :keep)"
            ),
            {"b": business_id, "inv": invoice_id, "keep": years_after(paid),
             "at": datetime.combine(paid, time(12), UTC)},
        )  # fmt: skip
    return invoice_id


@pytest.mark.policy("7.3")
async def test_financial_documents_stay_five_years_then_go(
    owner_session: AsyncSession, worker_engine: AsyncEngine
) -> None:
    business = await create_business(owner_session)
    # the database's own date: the purge never looks past it
    today: date = await owner_session.scalar(text("SELECT current_date"))
    run_at = datetime.combine(today, time(12), UTC)
    tag = business.slug[-8:]
    old = await add_invoice(
        owner_session, business.id, f"R-{tag}-1", date(2019, 1, 15), date(2019, 1, 20)
    )
    # paid four years late: the payment's own five years keep the invoice it refers to
    late = await add_invoice(
        owner_session, business.id, f"R-{tag}-2", date(2019, 2, 1), today - timedelta(days=30)
    )
    fresh = await add_invoice(owner_session, business.id, f"R-{tag}-3", today, today)
    # five years old today: still kept; its anniversary a day earlier: gone
    five_years_ago = years_after(today, -FINANCIAL_YEARS)
    a_day_older = five_years_ago - timedelta(days=1)
    while years_after(a_day_older) >= today:  # 29 February has no anniversary of its own
        a_day_older -= timedelta(days=1)
    kept = await add_invoice(owner_session, business.id, f"R-{tag}-4", five_years_ago, None)
    past = await add_invoice(owner_session, business.id, f"R-{tag}-5", a_day_older, None)
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

    done = await retention.enforce(worker_engine, run_at)
    assert done.payments >= 1 and done.invoices >= 2
    assert await invoices() == {late, fresh, kept} and await payments() == 2
    assert old not in await invoices() and past not in await invoices()

    # a job told it is 2045 still reaches nothing under its legal hold: the database's clock rules
    await retention.enforce(worker_engine, run_at + timedelta(days=20 * 365))
    assert await invoices() == {late, fresh, kept} and await payments() == 2

    # and the worker role cannot go around the function
    async with worker_engine.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text("DELETE FROM invoices"))


@pytest.mark.policy("7.3")
@pytest.mark.parametrize(
    "issued", [date(2019, 1, 15), date(2024, 1, 15)], ids=["one-leap-day", "two-leap-days"]
)
async def test_no_financial_document_can_be_set_to_go_before_five_years(
    owner_session: AsyncSession, issued: date
) -> None:
    """A retention date that lets the purge take a document on the day before its fifth
    anniversary is refused by the table, for invoices and payments alike."""
    business = await create_business(owner_session)
    tag = business.slug[-8:]
    too_soon = years_after(issued) - timedelta(days=2)  # purged the day after this
    invoice = text(
        "INSERT INTO invoices (business_id, number, amount_tiyn, issued_on, due_on, status, "
        "retain_until) VALUES (:b, :n, 990000, :i, :i, 'paid', :keep) RETURNING id"
    )
    with pytest.raises(IntegrityError, match="retention"):
        async with owner_session.begin_nested():
            await owner_session.execute(
                invoice, {"b": business.id, "n": f"R-{tag}-short", "i": issued, "keep": too_soon}
            )
    invoice_id = await owner_session.scalar(
        invoice, {"b": business.id, "n": f"R-{tag}-ok", "i": issued, "keep": years_after(issued)}
    )
    with pytest.raises(IntegrityError, match="retention"):
        async with owner_session.begin_nested():
            await owner_session.execute(
                text(
                    "INSERT INTO payments (business_id, invoice_id, amount_tiyn, provider, "
                    "paid_at, retain_until) VALUES (:b, :inv, 990000, 'kaspi', :at, :keep)"
                ),
                {"b": business.id, "inv": invoice_id, "keep": too_soon,
                 "at": datetime.combine(issued, time(12), UTC)},
            )  # fmt: skip


def test_retention_runs_daily() -> None:
    [job] = [j for j in cron_jobs(make_settings()) if j.function.__name__ == "enforce_retention"]
    minute, hour, *rest = job.cron.split()
    assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]
