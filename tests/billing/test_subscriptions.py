"""Subscriptions (issue 16 item 2; policy 4.3): a trial for every new business, plan changes
with proration (the figures worked out by hand in the comments), renewal by the daily job,
the grace period with reminders, read-only mode past it — keeping every row — and paying to
leave it. Every change is on the business's audit chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.plans import terms
from app.db.session import Database, make_engine
from app.db.urls import to_sqlalchemy
from app.domain import audit, plans, staff_accounts, subscriptions
from app.domain.members import Member
from app.domain.subscriptions import add_months, prorate
from app.models import Account, Invoice
from app.settings import Settings
from tests.conftest import ServerHandle
from tests.factories import BusinessFixture, new_business

PRO_MONTH = 499_000  # 4 990 ₸
BUSINESS_MONTH = 1_299_000  # 12 990 ₸
BUSINESS_YEAR = 12_990_000  # 129 900 ₸: ten months


@pytest.fixture(scope="module")
async def jobs_db(main_server: ServerHandle) -> DatabaseUrls:
    """The daily job goes through every business of its database: its tests have their own
    database, so the job never touches another test's businesses."""
    return await main_server.create_database()


@pytest.fixture(scope="module")
async def worker_engine(jobs_db: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    """The worker role, as the daily job runs in production."""
    engine = make_engine(jobs_db.worker, pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def jobs_app_db(jobs_db: DatabaseUrls) -> AsyncIterator[Database]:
    runtime = Database(jobs_db.app)
    yield runtime
    await runtime.dispose()


@pytest.fixture
async def jobs_owner(jobs_db: DatabaseUrls) -> AsyncIterator[AsyncSession]:
    engine = create_async_engine(to_sqlalchemy(jobs_db.owner), poolclass=NullPool)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session
        await session.commit()
    await engine.dispose()


def owner_of(business: BusinessFixture) -> Member:
    assert business.owner_account_id is not None
    return Member(business.owner_account_id, business.id, "owner", None)


async def subscription(owner_session: AsyncSession, business_id: int) -> dict[str, Any]:
    await owner_session.commit()  # a fresh snapshot
    row = (await owner_session.execute(text(
        "SELECT s.*, p.code AS plan, b.read_only_since FROM subscriptions s "
        "JOIN plans p ON p.id = s.plan_id JOIN businesses b ON b.id = s.business_id "
        "WHERE s.business_id = :b"), {"b": business_id})).mappings().one()  # fmt: skip
    return dict(row)


async def put_on(
    owner_session: AsyncSession, business_id: int, code: str, period: str, start: date,
    end: date | None, price: int, status: str = "active",
) -> None:  # fmt: skip
    """Set the business's subscription as if it had been paid so (the test's starting point)."""
    await owner_session.execute(text(
        "UPDATE subscriptions SET plan_id = (SELECT id FROM plans WHERE code = :code), "
        "billing_period = :period, current_period_start = :start, current_period_end = :end, "
        "period_price_tiyn = :price, status = :status, credit_tiyn = 0, grace_until = NULL, "
        "open_invoice_id = NULL, pending_plan_id = NULL WHERE business_id = :b"),
        {"code": code, "period": period, "start": start, "end": end, "price": price,
         "status": status, "b": business_id})  # fmt: skip
    await owner_session.commit()


async def actions(owner_session: AsyncSession, business_id: int) -> list[str]:
    await owner_session.commit()
    rows = await owner_session.scalars(text(
        "SELECT action FROM audit_log WHERE business_id = :b AND action LIKE 'billing.%' "
        "ORDER BY id"), {"b": business_id})  # fmt: skip
    return list(rows)


# --- proration, by hand -------------------------------------------------------------------------


def plan_info(code: str) -> plans.PlanInfo:
    spec = terms().plan(code)
    return plans.PlanInfo(0, code, spec.name, spec.price_month_tiyn, spec.price_year_tiyn,
                          spec.max_masters, spec.features, spec.trial_days)  # fmt: skip


def test_upgrade_mid_month_credits_the_unused_days() -> None:
    # Pro monthly, paid 4 990 ₸ for 1 Dec 2026 – 31 Dec 2026 (period [1 Dec, 1 Jan): 31 days).
    # On 11 Dec the owner moves to Business monthly. Unused: 11 Dec … 31 Dec = 21 days.
    #   credit = 499 000 × 21 ÷ 31 = 10 479 000 ÷ 31 = 338 032.26… → 338 032 tiyn (3 380.32 ₸)
    #   charge = Business for a month from 11 Dec = 1 299 000 tiyn
    #   due    = 1 299 000 − 338 032 = 960 968 tiyn (9 609.68 ₸), new period [11 Dec, 11 Jan)
    got = prorate(old_price_tiyn=PRO_MONTH, old_start=date(2026, 12, 1), old_end=date(2027, 1, 1),
                  held_credit_tiyn=0, new_plan=plan_info("business"), new_period="month",
                  on=date(2026, 12, 11))  # fmt: skip
    assert (got.unused_days, got.period_days) == (21, 31)
    assert got.credit_tiyn == 338_032
    assert got.charge_tiyn == BUSINESS_MONTH
    assert got.due_tiyn == 960_968
    assert (got.start, got.end) == (date(2026, 12, 11), date(2027, 1, 11))


def test_downgrade_keeps_the_credit_left_over() -> None:
    # Business yearly, 129 900 ₸ for [15 Jan 2026, 15 Jan 2027): 365 days. On 6 Dec 2026 the
    # owner moves to Pro monthly. Unused: 6 Dec 2026 … 14 Jan 2027 = 26 + 14 = 40 days.
    #   credit = 12 990 000 × 40 ÷ 365 = 519 600 000 ÷ 365 = 1 423 561.64… → 1 423 561 tiyn
    #   charge = Pro for a month = 499 000 tiyn, so nothing is due;
    #   left   = 1 423 561 − 499 000 = 924 561 tiyn, kept for the next invoice
    got = prorate(old_price_tiyn=BUSINESS_YEAR, old_start=date(2026, 1, 15),
                  old_end=date(2027, 1, 15), held_credit_tiyn=0, new_plan=plan_info("pro"),
                  new_period="month", on=date(2026, 12, 6))  # fmt: skip
    assert (got.unused_days, got.period_days) == (40, 365)
    assert got.credit_tiyn == 1_423_561
    assert got.due_tiyn == 0
    assert got.left_tiyn == 924_561
    assert got.end == date(2027, 1, 6)


def test_monthly_to_yearly_on_the_first_day_credits_the_whole_month() -> None:
    # Pro monthly for [1 Mar, 1 Apr) changed to Pro yearly on 1 Mar: all 31 days unused.
    #   credit = 499 000 × 31 ÷ 31 = 499 000; charge = 4 990 000; due = 4 491 000 tiyn
    got = prorate(old_price_tiyn=PRO_MONTH, old_start=date(2027, 3, 1), old_end=date(2027, 4, 1),
                  held_credit_tiyn=0, new_plan=plan_info("pro"), new_period="year",
                  on=date(2027, 3, 1))  # fmt: skip
    assert got.credit_tiyn == PRO_MONTH
    assert got.due_tiyn == 4_491_000
    assert got.end == date(2028, 3, 1)


def test_a_trial_or_the_free_plan_gives_no_credit_and_a_held_credit_counts() -> None:
    got = prorate(old_price_tiyn=0, old_start=date(2026, 12, 1), old_end=date(2026, 12, 15),
                  held_credit_tiyn=1_000, new_plan=plan_info("pro"), new_period="month",
                  on=date(2026, 12, 5))  # fmt: skip
    assert got.credit_tiyn == 1_000  # 0 × 10 ÷ 14 = 0, plus the 10 ₸ already held
    assert got.due_tiyn == PRO_MONTH - 1_000


def test_months_end_on_the_last_day_when_the_day_is_missing() -> None:
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 12, 15), 12) == date(2027, 12, 15)


# --- in the database ----------------------------------------------------------------------------


async def test_a_new_business_starts_a_pro_trial_and_it_is_audited(
    db: Database, owner_session: AsyncSession
) -> None:
    account = Account(name="Founder", email=f"founder-{uuid4().hex[:8]}@example.com")
    owner_session.add(account)
    await owner_session.commit()
    made = await staff_accounts.create_business(
        db, account.id, business_name="Trial Salon", actor=audit.SYSTEM
    )
    sub = await subscription(owner_session, made.business_id)
    trial = terms()
    assert (sub["plan"], sub["status"]) == (trial.trial_plan, "trial")
    assert sub["current_period_end"] - sub["current_period_start"] == timedelta(trial.trial_days)
    assert sub["period_price_tiyn"] == 0
    assert await actions(owner_session, made.business_id) == ["billing.trial_started"]
    # a business made any other way (here: the tests' factory) has its trial too
    other = await new_business(owner_session)
    assert (await subscription(owner_session, other.id))["status"] == "trial"


async def test_an_upgrade_is_invoiced_with_its_credit_and_takes_effect_when_paid(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session)
    # the figures of test_upgrade_mid_month_…, five years on (December has 31 days then too),
    # so the paid period still runs on the day the test pays
    await put_on(owner_session, business.id, "pro", "month", date(2031, 12, 1),
                 date(2032, 1, 1), PRO_MONTH)  # fmt: skip
    change = await subscriptions.change_plan(
        db,
        owner_of(business),
        {"plan": "business", "period": "month"},
        actor=audit.SYSTEM,
        on=date(2031, 12, 11),
    )
    assert not change.applied and change.invoice_id is not None
    await owner_session.commit()
    invoice = await owner_session.get_one(Invoice, change.invoice_id)
    assert invoice.amount_tiyn == 960_968  # worked out in test_upgrade_mid_month_…
    assert invoice.status == "open"
    sub = await subscription(owner_session, business.id)
    assert sub["plan"] == "pro"  # nothing changes before it is paid
    assert sub["open_invoice_id"] == invoice.id

    async with db.transaction(business_id=business.id) as session:  # the payment's transaction
        await subscriptions.on_invoice_paid(session, await session.get_one(Invoice, invoice.id))
    sub = await subscription(owner_session, business.id)
    assert (sub["plan"], sub["status"], sub["billing_period"]) == ("business", "active", "month")
    assert (sub["current_period_start"], sub["current_period_end"]) == (
        date(2031, 12, 11), date(2032, 1, 11))  # fmt: skip
    assert sub["open_invoice_id"] is None and sub["pending_plan_id"] is None
    async with db.transaction(business_id=business.id) as session:  # told twice: nothing more
        await subscriptions.on_invoice_paid(session, await session.get_one(Invoice, invoice.id))
    assert (await subscription(owner_session, business.id))["current_period_end"] == date(
        2032, 1, 11
    )
    assert await actions(owner_session, business.id) == [
        "billing.change_ordered", "billing.plan_changed"]  # fmt: skip


async def test_a_downgrade_applies_at_once_and_keeps_the_credit(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session)
    await put_on(owner_session, business.id, "business", "year", date(2026, 1, 15),
                 date(2027, 1, 15), BUSINESS_YEAR)  # fmt: skip
    change = await subscriptions.change_plan(
        db,
        owner_of(business),
        {"plan": "pro", "period": "month"},
        actor=audit.SYSTEM,
        on=date(2026, 12, 6),
    )
    assert change.applied and change.invoice_id is None
    sub = await subscription(owner_session, business.id)
    assert (sub["plan"], sub["billing_period"], sub["credit_tiyn"]) == ("pro", "month", 924_561)
    assert sub["current_period_end"] == date(2027, 1, 6)
    assert (await actions(owner_session, business.id))[-1] == "billing.plan_changed"


async def test_a_second_change_voids_the_unpaid_one(
    db: Database, owner_session: AsyncSession
) -> None:
    business = await new_business(owner_session)
    member = owner_of(business)
    first = await subscriptions.change_plan(
        db, member, {"plan": "pro", "period": "month"}, actor=audit.SYSTEM
    )
    second = await subscriptions.change_plan(
        db, member, {"plan": "business", "period": "year"}, actor=audit.SYSTEM
    )
    assert first.invoice_id and second.invoice_id and first.invoice_id != second.invoice_id
    await owner_session.commit()
    assert (await owner_session.get_one(Invoice, first.invoice_id)).status == "void"
    assert (await owner_session.get_one(Invoice, second.invoice_id)).amount_tiyn == BUSINESS_YEAR
    sub = await subscription(owner_session, business.id)
    assert sub["open_invoice_id"] == second.invoice_id and sub["plan"] == "pro"  # the trial's


async def test_a_bad_choice_is_refused_in_the_users_language(
    db: Database, owner_session: AsyncSession
) -> None:
    from app.domain.errors import ValidationFailed
    from app.i18n import use_locale

    business = await new_business(owner_session)
    with use_locale("ru"), pytest.raises(ValidationFailed) as refused:
        await subscriptions.change_plan(db, owner_of(business), {"plan": "gold"},
                                        actor=audit.SYSTEM)  # fmt: skip
    assert refused.value.fields == {"plan": "Выберите один из тарифов."}
    with use_locale("kk"), pytest.raises(ValidationFailed) as refused:
        await subscriptions.change_plan(db, owner_of(business), {"plan": "pro", "period": "week"},
                                        actor=audit.SYSTEM)  # fmt: skip
    assert "period" in refused.value.fields
    assert (await subscription(owner_session, business.id))["status"] == "trial"


# --- the daily job ------------------------------------------------------------------------------


async def counts(owner_session: AsyncSession, business_id: int) -> dict[str, int]:
    await owner_session.commit()
    found = {}
    for table in ("staff", "services", "clients", "bookings", "working_hours"):
        found[table] = await owner_session.scalar(
            text(f"SELECT count(*) FROM {table} WHERE business_id = :b"), {"b": business_id}
        )
    return found


async def test_a_trial_that_ends_moves_to_free_and_keeps_every_master(
    jobs_app_db: Database, jobs_owner: AsyncSession, worker_engine: AsyncEngine
) -> None:
    business = await new_business(jobs_owner, masters=4)
    ordered = await subscriptions.change_plan(  # ordered, not paid before the trial ends
        jobs_app_db, owner_of(business), {"plan": "pro", "period": "month"}, actor=audit.SYSTEM
    )
    assert ordered.invoice_id is not None
    sub = await subscription(jobs_owner, business.id)
    ends = datetime.combine(sub["current_period_end"], datetime.min.time(), UTC) + timedelta(
        hours=1
    )
    before = await counts(jobs_owner, business.id)
    await subscriptions.run_daily(worker_engine, ends - timedelta(days=1))  # not yet
    assert (await subscription(jobs_owner, business.id))["status"] == "trial"
    await subscriptions.run_daily(worker_engine, ends)
    sub = await subscription(jobs_owner, business.id)
    assert (sub["plan"], sub["status"], sub["current_period_end"]) == ("free", "active", None)
    assert await counts(jobs_owner, business.id) == before  # 4 masters on a 1-master plan
    assert (await actions(jobs_owner, business.id))[-1] == "billing.trial_ended"
    assert sub["open_invoice_id"] == ordered.invoice_id  # still ordered: paying applies it
    async with jobs_app_db.transaction(business_id=business.id) as session:
        await subscriptions.on_invoice_paid(
            session, await session.get_one(Invoice, ordered.invoice_id)
        )
    sub = await subscription(jobs_owner, business.id)
    assert (sub["plan"], sub["status"]) == ("pro", "active")
    assert sub["current_period_start"] == subscriptions.today()  # from the day it is paid


async def test_an_unpaid_renewal_has_grace_with_reminders_then_read_only_and_paying_lifts_it(
    jobs_app_db: Database, jobs_owner: AsyncSession, worker_engine: AsyncEngine
) -> None:
    business = await new_business(jobs_owner)
    start, end = date(2031, 3, 1), date(2031, 4, 1)
    await put_on(jobs_owner, business.id, "pro", "month", start, end, PRO_MONTH)
    before = await counts(jobs_owner, business.id)
    # 06:10 in Kazakhstan on the day the period ends (01:10 UTC, when the job runs)
    day = datetime(2031, 4, 1, 1, 10, tzinfo=UTC)

    await subscriptions.run_daily(worker_engine, day)
    await subscriptions.run_daily(worker_engine, day + timedelta(hours=1))  # twice: once
    sub = await subscription(jobs_owner, business.id)
    assert sub["status"] == "past_due"
    assert sub["grace_until"] == end + timedelta(days=terms().grace_days)  # 8 April
    renewal = await jobs_owner.get_one(Invoice, sub["open_invoice_id"])
    assert renewal.amount_tiyn == PRO_MONTH and renewal.status == "open"
    assert sub["read_only_since"] is None

    async def told(event: str) -> list[str]:
        await jobs_owner.commit()
        rows = await jobs_owner.scalars(text(
            "SELECT channel FROM notifications WHERE business_id = :b AND event = :e "
            "ORDER BY id"), {"b": business.id, "e": event})  # fmt: skip
        return list(rows)

    assert await told("billing.grace") == ["telegram"]  # the factory's owner has Telegram only
    # two days before the grace ends: one more reminder, once
    await subscriptions.run_daily(worker_engine, day + timedelta(days=5))
    await subscriptions.run_daily(worker_engine, day + timedelta(days=5, hours=2))
    assert len(await told("billing.grace")) == 2
    assert (await subscription(jobs_owner, business.id))["read_only_since"] is None

    await subscriptions.run_daily(worker_engine, day + timedelta(days=7))  # grace over
    sub = await subscription(jobs_owner, business.id)
    assert sub["read_only_since"] is not None
    assert await told("billing.read_only") == ["telegram"]
    assert await counts(jobs_owner, business.id) == before  # nothing deleted, ever
    await subscriptions.run_daily(worker_engine, day + timedelta(days=9))
    assert len(await told("billing.read_only")) == 1

    async with jobs_app_db.transaction(business_id=business.id) as session:  # paid at last
        await subscriptions.on_invoice_paid(session, await session.get_one(Invoice, renewal.id))
    sub = await subscription(jobs_owner, business.id)
    assert sub["read_only_since"] is None and sub["status"] == "active"
    assert (sub["current_period_start"], sub["current_period_end"]) == (end, date(2031, 5, 1))
    logged = await actions(jobs_owner, business.id)
    assert logged[-4:] == ["billing.grace_started", "billing.read_only", "billing.renewed",
                           "billing.reactivated"]  # fmt: skip


def test_the_billing_job_runs_daily_before_the_working_day(settings: Settings) -> None:
    from workers.runner import cron_jobs

    crons = {job.function.__name__: job.cron for job in cron_jobs(settings)}
    assert crons["billing_daily"] == "10 1 * * *"  # 06:10 in Kazakhstan (UTC+5)


async def test_an_order_unpaid_when_the_period_ends_is_what_the_grace_runs_on(
    jobs_app_db: Database, jobs_owner: AsyncSession, worker_engine: AsyncEngine
) -> None:
    business = await new_business(jobs_owner)
    await put_on(jobs_owner, business.id, "pro", "month", date(2032, 3, 1), date(2032, 4, 1),
                 PRO_MONTH)  # fmt: skip
    ordered = await subscriptions.change_plan(
        jobs_app_db, owner_of(business), {"plan": "business", "period": "month"},
        actor=audit.SYSTEM, on=date(2032, 3, 20),
    )  # fmt: skip
    await subscriptions.run_daily(worker_engine, datetime(2032, 4, 1, 1, 10, tzinfo=UTC))
    sub = await subscription(jobs_owner, business.id)
    assert (sub["plan"], sub["status"]) == ("pro", "past_due")
    assert sub["open_invoice_id"] == ordered.invoice_id  # no second invoice for the same days
    assert sub["grace_until"] == date(2032, 4, 8)
    # asking for the ordered plan again leads to the invoice already owed
    again = await subscriptions.change_plan(
        jobs_app_db, owner_of(business), {"plan": "business", "period": "month"},
        actor=audit.SYSTEM,
    )  # fmt: skip
    assert again.invoice_id == ordered.invoice_id and not again.applied
    async with jobs_app_db.transaction(business_id=business.id) as session:
        await subscriptions.on_invoice_paid(
            session, await session.get_one(Invoice, ordered.invoice_id)
        )
    sub = await subscription(jobs_owner, business.id)
    assert (sub["plan"], sub["status"], sub["grace_until"]) == ("business", "active", None)


async def test_a_renewal_owed_is_what_choosing_the_same_plan_leads_to(
    jobs_app_db: Database, jobs_owner: AsyncSession, worker_engine: AsyncEngine
) -> None:
    business = await new_business(jobs_owner)
    await put_on(jobs_owner, business.id, "pro", "year", date(2033, 5, 1), date(2034, 5, 1),
                 PRO_MONTH * 10)  # fmt: skip
    await subscriptions.run_daily(worker_engine, datetime(2034, 5, 1, 1, 10, tzinfo=UTC))
    sub = await subscription(jobs_owner, business.id)
    assert sub["status"] == "past_due" and sub["open_invoice_id"] is not None
    again = await subscriptions.change_plan(
        jobs_app_db, owner_of(business), {"plan": "pro", "period": "year"}, actor=audit.SYSTEM
    )
    assert (again.applied, again.invoice_id) == (False, sub["open_invoice_id"])
    renewal = await jobs_owner.get_one(Invoice, sub["open_invoice_id"])
    assert renewal.amount_tiyn == 4_990_000  # a year of Pro: ten months
