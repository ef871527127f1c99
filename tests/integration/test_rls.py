"""Tenant isolation in PostgreSQL itself (policy 10.3): roles, FORCE RLS, the cross-tenant matrix.

Everything here talks to the database as the runtime roles (``pozapisi_app``,
``pozapisi_worker``) with plain asyncpg connections, exactly as a pooled connection of the app
would; the data is arranged as the tables' owner. Two businesses, A and B: every table that
carries a ``business_id`` holds rows of A, so "B sees none of A's rows" is never vacuously true
(each check also runs a positive control with tenant A).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.bootstrap import DatabaseUrls
from app.db.urls import APP_ROLE, WORKER_ROLE, to_libpq, to_sqlalchemy
from tests.conftest import ServerHandle
from tests.factories import BusinessFixture, create_business, next_telegram_id

pytestmark = pytest.mark.both_servers

# Tables whose rows belong to one business and are nobody else's business.
PRIVATE = (
    "memberships",
    "invitations",
    "calendar_feeds",
    "time_off",
    "clients",
    "bookings",
    "messages",
    "notifications",
    "audit_log",
    "audit_details",
    "subscriptions",
    "billing_profiles",
    "invoices",
    "payments",
    "payment_orders",
    "billing_profiles",
)
# A business's public profile: readable by anyone (shown by slug), written only by its tenant.
CATALOG = (
    "staff",
    "services",
    "staff_services",
    "working_hours",
    "schedule_overrides",
    "holidays",
    "locations",
)
TENANT_TABLES = ("businesses", *CATALOG, *PRIVATE)
# the column naming the tenant (businesses is the tenant itself)
TENANT_KEY = {"businesses": "id"}

DAY = datetime(2031, 3, 3, tzinfo=UTC)  # a Monday, far from anything else in this database


def at(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    return DAY + timedelta(days=days, hours=hour, minutes=minute)


def affected(status: str) -> int:
    """Rows affected, from asyncpg's command tag ("UPDATE 3", "DELETE 0", "INSERT 0 1")."""
    return int(status.rsplit(" ", 1)[-1])


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(to_libpq(dsn))
    try:
        yield conn
    finally:
        await conn.close()


async def set_context(
    conn: asyncpg.Connection, *, business_id: int | None = None, account_id: int | None = None
) -> None:
    """What ``app.db.session`` does: transaction-local settings (``is_local`` = true)."""
    if business_id is not None:
        await conn.execute("SELECT set_config('app.business_id', $1, true)", str(business_id))
    if account_id is not None:
        await conn.execute("SELECT set_config('app.account_id', $1, true)", str(account_id))


@asynccontextmanager
async def tx(
    dsn: str, *, business_id: int | None = None, account_id: int | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """One transaction as the role in ``dsn``, always rolled back (tests never leave traces)."""
    async with connected(dsn) as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await set_context(conn, business_id=business_id, account_id=account_id)
            yield conn
        finally:
            await transaction.rollback()


@dataclass
class World:
    urls: DatabaseUrls
    a: BusinessFixture
    b: BusinessFixture
    account_x: int  # a client of both A and B
    account_y: int  # a client of A only
    client_x_a: int
    client_x_b: int
    client_y_a: int
    booking_x_a: int
    booking_y_a: int
    booking_x_b: int
    consent_y: int  # Y's consent, with no technical row yet
    code_x: int  # a code X asked for to change the phone
    code_y: int  # a code Y asked for to change the e-mail


@pytest.fixture(scope="module", params=["main", "other"])
async def any_server(
    request: pytest.FixtureRequest, servers: dict[str, ServerHandle], main_server: ServerHandle
) -> ServerHandle:
    """conftest's ``any_server``, module-scoped: one database per server for this module."""
    if request.param not in servers:
        pytest.skip("only one PostgreSQL server here (set TEST_DATABASE_URL for a second)")
    return servers[request.param]


async def _insert_booking(
    conn: asyncpg.Connection,
    business: BusinessFixture,
    *,
    client_id: int,
    account_id: int | None,
    staff_id: int,
    start: datetime,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO bookings (business_id, public_code, client_id, account_id, staff_id, "
            "service_id, period, blocked_period, status, source, service_name, duration_min, "
            "price_tiyn) VALUES ($1, $2, $3, $4, $5, $6, tstzrange($7, $8), tstzrange($7, $9), "
            "'confirmed', 'api', '{\"ru\": \"Стрижка\"}', 60, 500000) RETURNING id",
            business.id,
            f"T{next_telegram_id() % 10**12}",
            client_id,
            account_id,
            staff_id,
            business.service_id,
            start,
            start + timedelta(minutes=60),
            start + timedelta(minutes=70),
        )
    )


async def _arrange(urls: DatabaseUrls) -> World:
    """As the owner: two businesses, their people and a row of A in every tenant table."""
    engine = create_async_engine(to_sqlalchemy(urls.owner), poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            a = await create_business(session)
            b = await create_business(session)
    finally:
        await engine.dispose()

    async with connected(urls.owner) as conn, conn.transaction():
        account = (
            "INSERT INTO accounts (name, phone, email, telegram_id) "
            "VALUES ($1, $2, $3, $4) RETURNING id"
        )
        account_x = await conn.fetchval(
            account,
            "Xenia",
            "+77010000001",
            f"x{next_telegram_id()}@example.kz",
            next_telegram_id(),
        )
        account_y = await conn.fetchval(
            account,
            "Yerlan",
            "+77010000002",
            f"y{next_telegram_id()}@example.kz",
            next_telegram_id(),
        )
        client = (
            "INSERT INTO clients (business_id, account_id, name, phone, notes, tags) "
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
        )
        client_x_a = await conn.fetchval(
            client, a.id, account_x, "Xenia", "+77010000001", "prefers mornings (A)", ["vip"]
        )
        client_y_a = await conn.fetchval(
            client, a.id, account_y, "Yerlan", "+77010000002", "allergic to dye (A)", []
        )
        client_x_b = await conn.fetchval(
            client, b.id, account_x, "Ksenia", "+77010000001", "notes of B", []
        )
        booking_x_a = await _insert_booking(
            conn, a, client_id=client_x_a, account_id=account_x, staff_id=a.staff_ids[0],
            start=at(5),
        )  # fmt: skip
        booking_y_a = await _insert_booking(
            conn, a, client_id=client_y_a, account_id=account_y, staff_id=a.staff_ids[0],
            start=at(7),
        )  # fmt: skip
        booking_x_b = await _insert_booking(
            conn, b, client_id=client_x_b, account_id=account_x, staff_id=b.staff_ids[0],
            start=at(5),
        )  # fmt: skip
        for business, client_id, booking_id in (
            (a, client_x_a, booking_x_a),
            (a, client_y_a, booking_y_a),
            (b, client_x_b, booking_x_b),
        ):
            await conn.execute(
                "INSERT INTO messages (business_id, client_id, booking_id, sender, body) "
                "VALUES ($1, $2, $3, 'business', 'See you tomorrow')",
                business.id,
                client_id,
                booking_id,
            )
        notification = (
            "INSERT INTO notifications (business_id, booking_id, account_id, event, "
            "idempotency_key) VALUES ($1, $2, $3, $4, $5)"
        )
        for business_id, booking_id, account_id, event in (
            (a.id, booking_x_a, account_x, "booking.created"),
            (a.id, booking_y_a, account_y, "booking.created"),
            (a.id, booking_x_a, a.owner_account_id, "staff.booking.created"),
            (b.id, booking_x_b, account_x, "booking.created"),
            (None, None, account_x, "policy.notice"),  # a platform message
        ):
            await conn.execute(
                notification, business_id, booking_id, account_id, event,
                f"{event}:{booking_id}:{account_id}:{business_id}",
            )  # fmt: skip
        for business in (a, b):
            await conn.execute(
                "INSERT INTO time_off (business_id, staff_id, period, reason) "
                "VALUES ($1, $2, tstzrange($3, $4), 'vacation')",
                business.id,
                business.staff_ids[1],
                at(0, days=10),
                at(0, days=17),
            )
            await conn.execute(
                "INSERT INTO schedule_overrides (business_id, staff_id, on_date, kind) "
                "VALUES ($1, NULL, $2, 'day_off')",
                business.id,
                date(2031, 3, 8),
            )
            await conn.execute(
                "INSERT INTO holidays (business_id, on_date, name) VALUES ($1, $2, 'Nauryz')",
                business.id,
                date(2031, 3, 21),
            )
            await conn.execute(
                "INSERT INTO locations (business_id, name, address) "
                "VALUES ($1, 'Main', 'Abay ave 1')",
                business.id,
            )
            await conn.execute(
                "INSERT INTO invitations (business_id, role, email, token_hash, expires_at) "
                "VALUES ($1, 'admin', 'invitee@example.com', md5(random()::text), $2)",
                business.id,
                at(0, days=7),
            )
            await conn.execute(
                "INSERT INTO calendar_feeds (business_id, staff_id, token_hash) "
                "VALUES ($1, $2, md5(random()::text))",
                business.id,
                business.staff_ids[0],
            )
            # the audit chain: one entry per business, with personal details in audit_details
            await conn.execute(
                "SELECT audit_append($1, $2, 'staff', 'service.update', 'service', $3, "
                "'{\"price\": 1}'::jsonb, '{\"price\": 2}'::jsonb, 'req-1', '10.0.0.1'::inet, "
                "'pytest')",
                business.id,
                business.owner_account_id,
                business.service_id,
            )
        await conn.execute(
            "SELECT audit_append(NULL, $1, 'client', 'consent.grant', 'consent', NULL, NULL, "
            "NULL, 'req-2', '10.0.0.2'::inet, 'pytest')",
            account_x,
        )
        await conn.execute(
            "INSERT INTO policy_versions (version, digests, purposes, published_at, "
            "effective_at, material) VALUES ('rls-test', '{}', '{booking}', '2031-01-01', "
            "'2031-01-01', false)"
        )
        consent_id = await conn.fetchval(
            "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
            "VALUES ($1, 'rls-test', '{booking}', 'granted', 'mini_app') RETURNING id",
            account_x,
        )
        await conn.execute(
            "INSERT INTO consent_technical (consent_id, ip, user_agent) "
            "VALUES ($1, '10.0.0.3', 'pytest')",
            consent_id,
        )
        consent = (
            "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
            "VALUES ($1, 'rls-test', '{booking}', 'granted', 'api') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO consent_technical (consent_id, ip, user_agent) "
            "VALUES ($1, '10.0.0.6', 'pytest')",
            await conn.fetchval(consent, account_y),
        )
        consent_y = await conn.fetchval(consent, account_y)
        for account, who in ((account_x, "x"), (account_y, "y")):
            await conn.execute(
                "INSERT INTO data_requests (account_id, kind, channel, due_on, details) "
                "VALUES ($1, 'correct', 'email', '2031-03-17', $2::jsonb)",
                account, f'{{"note": "from {who}"}}',
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO security_events (account_id, event, ip, user_agent) "
                "VALUES ($1, 'sessions.signed_out_others', '10.0.0.4', 'pytest')",
                account,
            )
            await conn.execute(
                "INSERT INTO sessions (id, account_id, kind, csrf_secret, expires_at, ip) "
                "VALUES ($1, $2, 'miniapp', 'secret', now() + interval '1 day', '10.1.2.3')",
                f"rls-{who}", account,
            )  # fmt: skip
        challenge = (
            "INSERT INTO otp_challenges (channel, destination_hash, code_hash, purpose, "
            "account_id, expires_at, ip) VALUES ($1, $2, 'v2$x', $3, $4, $5, '10.0.0.5') "
            "RETURNING id"
        )
        soon = datetime.now(UTC) + timedelta(minutes=5)
        code_x = await conn.fetchval(challenge, "sms", "rls-x", "change_phone", account_x, soon)
        code_y = await conn.fetchval(challenge, "email", "rls-y", "change_email", account_y, soon)
        # codes nobody owns: one that may still be used, one spent a day ago
        await conn.fetchval(challenge, "sms", "rls-anon", "sign_in", None, soon)
        await conn.fetchval(
            challenge, "sms", "rls-old", "sign_in", None, datetime.now(UTC) - timedelta(days=1)
        )
        plan_id = await conn.fetchval(
            'INSERT INTO plans (code, name, price_tiyn) VALUES ($1, \'{"ru": "Старт"}\', 500000) '
            "RETURNING id",
            f"p{next_telegram_id() % 10**8}",
        )
        for business in (a, b):
            # the business started its trial when it was created (pz_start_trial): it pays now
            subscription_id = await conn.fetchval(
                "INSERT INTO subscriptions (business_id, plan_id, status, current_period_end) "
                "VALUES ($1, $2, 'active', '2031-04-01') ON CONFLICT (business_id) DO UPDATE "
                "SET plan_id = EXCLUDED.plan_id, status = EXCLUDED.status, "
                "current_period_end = EXCLUDED.current_period_end RETURNING id",
                business.id,
                plan_id,
            )
            await conn.execute(
                "INSERT INTO billing_profiles (business_id, legal_name, bin_iin, address) "
                "VALUES ($1, $2, NULL, 'Almaty')",
                business.id,
                f"TOO Test {business.id}",
            )
            invoice_id = await conn.fetchval(
                "INSERT INTO invoices (business_id, subscription_id, number, amount_tiyn, "
                "issued_on, due_on, status, retain_until) VALUES ($1, $2, $3, 500000, "
                "'2031-03-01', '2031-03-10', 'paid', '2036-03-01') RETURNING id",
                business.id,
                subscription_id,
                f"INV-{business.id}-{next_telegram_id() % 10**6}",
            )
            await conn.execute(
                "INSERT INTO payments (business_id, invoice_id, amount_tiyn, provider, paid_at, "
                "retain_until) VALUES ($1, $2, 500000, 'kaspi', '2031-03-02T10:00:00Z', "
                "'2036-03-02')",
                business.id,
                invoice_id,
            )
            await conn.execute(
                "INSERT INTO payment_orders (business_id, invoice_id, provider, order_ref, url, "
                "amount_tiyn, currency, retain_until) VALUES ($1, $2, 'cloudpayments', $3, "
                "'https://orders.cloudpayments.ru/d/x', 500000, 'KZT', '2036-03-01')",
                business.id,
                invoice_id,
                f"ord-{business.id}",
            )
    return World(
        urls=urls, a=a, b=b, account_x=account_x, account_y=account_y,
        client_x_a=client_x_a, client_x_b=client_x_b, client_y_a=client_y_a,
        booking_x_a=booking_x_a, booking_y_a=booking_y_a, booking_x_b=booking_x_b,
        consent_y=consent_y, code_x=code_x, code_y=code_y,
    )  # fmt: skip


@pytest.fixture(scope="module")
async def world(any_server: ServerHandle) -> World:
    urls = await any_server.create_database()
    return await _arrange(urls)


async def owner_count(world: World, table: str, business_id: int | None = None) -> int:
    key = TENANT_KEY.get(table, "business_id")
    async with connected(world.urls.owner) as conn:
        if business_id is None:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        return int(
            await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {key} = $1", business_id)
        )


async def privilege(world: World, role: str, table: str, action: str) -> bool:
    async with connected(world.urls.owner) as conn:
        return bool(
            await conn.fetchval("SELECT has_table_privilege($1, $2, $3)", role, table, action)
        )


# --- the roles themselves -------------------------------------------------------------------


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("role", [APP_ROLE, WORKER_ROLE])
async def test_runtime_role_is_not_privileged_and_owns_nothing(world: World, role: str) -> None:
    async with connected(world.urls.owner) as conn:
        flags = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = $1",
            role,
        )
        assert flags is not None, f"role {role} missing"
        assert dict(flags) == {
            "rolsuper": False,
            "rolbypassrls": False,
            "rolcreaterole": False,
            "rolcreatedb": False,
        }
        owned = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = $1",
            role,
        )
        assert [r["relname"] for r in owned] == []
        # nor a member of a role that owns a table (ownership would be inherited)
        inherited = await conn.fetch(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
            "AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
            "AND pg_has_role($1, c.relowner, 'USAGE')",
            role,
        )
        assert [r["relname"] for r in inherited] == []
    # and the server agrees: the session as that role is not superuser and does not bypass RLS
    dsn = world.urls.app if role == APP_ROLE else world.urls.worker
    async with connected(dsn) as conn:
        assert await conn.fetchval("SELECT current_user") == role
        assert await conn.fetchval("SHOW is_superuser") == "off"
        assert await conn.fetchval("SHOW row_security") == "on"


@pytest.mark.policy("10.3")
async def test_every_tenant_table_forces_row_level_security(world: World) -> None:
    async with connected(world.urls.owner) as conn:
        with_tenant = {
            r["table_name"]
            for r in await conn.fetch(
                "SELECT c.table_name FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND c.column_name = 'business_id' "
                "AND t.table_type = 'BASE TABLE'"
            )
        }
        tables = sorted(with_tenant | {"businesses"})
        rows = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relname = ANY($1::text[])",
            tables,
        )
    flags = {r["relname"]: (r["relrowsecurity"], r["relforcerowsecurity"]) for r in rows}
    assert "bookings" in flags and "clients" in flags  # the enumeration found the tables
    not_forced = sorted(t for t in tables if flags.get(t) != (True, True))
    assert not_forced == [], f"tables with business_id but without ENABLE+FORCE RLS: {not_forced}"
    # every tenant table is classified here, so the matrix below covers it
    unclassified = sorted(set(tables) - set(TENANT_TABLES))
    assert unclassified == [], (
        f"new tenant tables {unclassified}: add them to PRIVATE or CATALOG in this test"
    )
    assert sorted(set(TENANT_TABLES) - set(tables)) == []


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_arrangement_has_rows_of_a_in_every_tenant_table(world: World, table: str) -> None:
    """The matrix below would prove nothing on empty tables."""
    assert await owner_count(world, table, world.a.id) > 0
    assert await owner_count(world, table, world.b.id) > 0


# --- reads across tenants ---------------------------------------------------------------------


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("table", PRIVATE)
async def test_tenant_b_reads_none_of_a_private_rows(world: World, table: str) -> None:
    expected_a = await owner_count(world, table, world.a.id)
    expected_b = await owner_count(world, table, world.b.id)
    query = f"SELECT business_id FROM {table}"
    async with tx(world.urls.app, business_id=world.b.id) as conn:
        seen = [r["business_id"] for r in await conn.fetch(query)]
        assert seen.count(world.a.id) == 0
        assert seen == [world.b.id] * expected_b  # B sees its own rows, and only those
        # asking for A's rows explicitly does not help either
        explicit = f"SELECT count(*) FROM {table} WHERE business_id = $1"
        assert await conn.fetchval(explicit, world.a.id) == 0
    async with tx(world.urls.app, business_id=world.a.id) as conn:
        seen = [r["business_id"] for r in await conn.fetch(query)]
        assert seen == [world.a.id] * expected_a  # positive control: the query finds A's rows


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("table", PRIVATE)
async def test_without_tenant_no_private_rows(world: World, table: str) -> None:
    assert await owner_count(world, table) > 0
    async with tx(world.urls.app) as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("table", ["businesses", *CATALOG])
async def test_catalog_is_publicly_readable(world: World, table: str) -> None:
    key = TENANT_KEY.get(table, "business_id")
    expected = await owner_count(world, table, world.a.id)
    for business_id in (None, world.b.id):
        async with tx(world.urls.app, business_id=business_id) as conn:
            seen = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {key} = $1", world.a.id)
        assert seen == expected


@pytest.mark.policy("10.3")
async def test_pooled_connection_never_keeps_a_tenant(world: World) -> None:
    """One connection, as a pool would reuse it: the tenant dies with its transaction."""
    async with connected(world.urls.app) as conn:
        async with conn.transaction():
            await set_context(conn, business_id=world.a.id, account_id=world.account_y)
            assert await conn.fetchval("SELECT count(*) FROM bookings") > 0
            assert await conn.fetchval("SELECT count(*) FROM clients") > 0
        # committed; the next transaction on the same connection starts with no tenant
        async with conn.transaction():
            assert await conn.fetchval("SELECT app_business_id()") is None
            assert await conn.fetchval("SELECT app_account_id()") is None
            for table in PRIVATE:
                assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        # the same after a rollback
        transaction = conn.transaction()
        await transaction.start()
        await set_context(conn, business_id=world.a.id)
        assert await conn.fetchval("SELECT count(*) FROM bookings") > 0
        await transaction.rollback()
        assert await conn.fetchval("SELECT count(*) FROM bookings") == 0
        # a tenant set by a lone statement (its own implicit transaction) is gone at once too
        await conn.execute("SELECT set_config('app.business_id', $1, true)", str(world.a.id))
        assert await conn.fetchval("SELECT count(*) FROM bookings") == 0


# --- writes across tenants --------------------------------------------------------------------


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("action", ["UPDATE", "DELETE"])
@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_tenant_b_cannot_modify_a_rows(world: World, table: str, action: str) -> None:
    key = TENANT_KEY.get(table, "business_id")
    if action == "UPDATE":
        statement = f"UPDATE {table} SET {key} = {key} WHERE {key} = $1"
    else:
        statement = f"DELETE FROM {table} WHERE {key} = $1"
    if not await privilege(world, APP_ROLE, table, action):
        # not granted at all: refused for every tenant
        for business_id in (world.b.id, world.a.id):
            async with tx(world.urls.app, business_id=business_id) as conn:
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                    await conn.execute(statement, world.a.id)
        return
    async with tx(world.urls.app, business_id=world.b.id) as conn:
        assert affected(await conn.execute(statement, world.a.id)) == 0
    async with tx(world.urls.app) as conn:
        assert affected(await conn.execute(statement, world.a.id)) == 0
    # positive control: the tenant itself can (rolled back)
    expected = await owner_count(world, table, world.a.id)
    async with tx(world.urls.app, business_id=world.a.id) as conn:
        assert affected(await conn.execute(statement, world.a.id)) == expected > 0
    assert await owner_count(world, table, world.a.id) == expected


# tenant tables the app role may INSERT into (checked against the grants below)
INSERTABLE = (
    "memberships",
    "invitations",
    "calendar_feeds",
    "locations",
    "staff",
    "services",
    "staff_services",
    "working_hours",
    "schedule_overrides",
    "time_off",
    "holidays",
    "clients",
    "bookings",
    "messages",
    "notifications",
    "payments",
    "payment_orders",
    "billing_profiles",
)


def insert_statements(world: World) -> dict[str, tuple[str, list[Any]]]:
    """A valid new row of business ``$1`` for every tenant table the app may INSERT into."""
    a = world.a
    return {
        "memberships": (
            "INSERT INTO memberships (business_id, account_id, role) VALUES ($1, $2, 'admin')",
            [world.account_y],
        ),
        "invitations": (
            "INSERT INTO invitations (business_id, role, phone, token_hash, expires_at) "
            "VALUES ($1, 'master', '+77010000099', md5(random()::text), now() + interval '1 day')",
            [],
        ),
        "calendar_feeds": (
            "INSERT INTO calendar_feeds (business_id, staff_id, token_hash) "
            "VALUES ($1, $2, md5(random()::text))",
            [a.staff_ids[0]],
        ),
        "locations": ("INSERT INTO locations (business_id, name) VALUES ($1, 'Branch')", []),
        "staff": ("INSERT INTO staff (business_id, name) VALUES ($1, 'Intruder')", []),
        "services": (
            "INSERT INTO services (business_id, name, duration_min, price_tiyn) "
            'VALUES ($1, \'{"ru": "Фальшивка"}\', 30, 0)',
            [],
        ),
        "staff_services": (
            "INSERT INTO staff_services (business_id, staff_id, service_id) VALUES ($1, $2, $3)",
            [a.staff_ids[1], a.short_service_id],
        ),
        "working_hours": (
            "INSERT INTO working_hours (business_id, staff_id, weekday, start_time, end_time) "
            "VALUES ($1, $2, 0, '19:00', '20:00')",
            [a.staff_ids[0]],
        ),
        "schedule_overrides": (
            "INSERT INTO schedule_overrides (business_id, staff_id, on_date, kind) "
            "VALUES ($1, $2, '2031-03-09', 'day_off')",
            [a.staff_ids[0]],
        ),
        "time_off": (
            "INSERT INTO time_off (business_id, staff_id, period) VALUES ($1, $2, tstzrange($3, $4))",
            [a.staff_ids[0], at(0, days=20), at(0, days=21)],
        ),
        "holidays": (
            "INSERT INTO holidays (business_id, on_date) VALUES ($1, '2031-05-09')",
            [],
        ),
        "clients": ("INSERT INTO clients (business_id, name) VALUES ($1, 'Walk-in')", []),
        "bookings": (
            "INSERT INTO bookings (business_id, public_code, client_id, staff_id, service_id, "
            "period, blocked_period, status, source, service_name, duration_min, price_tiyn) "
            "VALUES ($1, 'INTRUDER01', $2, $3, $4, tstzrange($5, $6), tstzrange($5, $6), "
            "'confirmed', 'dashboard', '{\"ru\": \"x\"}', 60, 0)",
            [world.client_y_a, a.staff_ids[1], a.service_id, at(12), at(13)],
        ),
        "messages": (
            "INSERT INTO messages (business_id, client_id, sender, body) "
            "VALUES ($1, $2, 'business', 'phishing')",
            [world.client_x_a],
        ),
        "notifications": (
            "INSERT INTO notifications (business_id, account_id, event, idempotency_key) "
            "VALUES ($1, $2, 'booking.created', 'intruder-key')",
            [world.account_x],
        ),
        # what the payment provider reported, and the page it made, for one of A's invoices
        # (the row-level check comes before the invoice id's NOT NULL: B's subquery sees none)
        "payments": (
            "INSERT INTO payments (business_id, invoice_id, amount_tiyn, provider, provider_ref, "
            "paid_at, retain_until) VALUES ($1, (SELECT min(id) FROM invoices WHERE "
            "business_id = $1), 500000, 'cloudpayments', 'intruder-txn', now(), '2099-01-01')",
            [],
        ),
        "payment_orders": (
            "INSERT INTO payment_orders (business_id, invoice_id, provider, order_ref, url, "
            "amount_tiyn, currency, retain_until) VALUES ($1, (SELECT min(id) FROM invoices "
            "WHERE business_id = $1), 'cloudpayments', 'intruder-order', 'https://x', 1, "
            "'KZT', '2099-01-01')",
            [],
        ),
        # the business's billing details (one row a business: the owner's first save makes it)
        "billing_profiles": (
            "INSERT INTO billing_profiles (business_id, legal_name) VALUES ($1, 'Intruder') "
            "ON CONFLICT (business_id) DO UPDATE SET legal_name = EXCLUDED.legal_name",
            [],
        ),
    }


async def test_every_insertable_tenant_table_is_in_the_insert_matrix(world: World) -> None:
    insertable = {t for t in TENANT_TABLES if await privilege(world, APP_ROLE, t, "INSERT")}
    assert insertable == set(INSERTABLE) == set(insert_statements(world))


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("table", INSERTABLE)
async def test_tenant_b_cannot_insert_rows_of_a(world: World, table: str) -> None:
    statement, args = insert_statements(world)[table]
    async with tx(world.urls.app, business_id=world.b.id) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security") as exc:
            await conn.execute(statement, world.a.id, *args)
        assert exc.value.sqlstate == "42501"
    async with tx(world.urls.app) as conn:  # no tenant: no row of anyone's
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute(statement, world.a.id, *args)
    # positive control: the same row is accepted for its own tenant (rolled back)
    async with tx(world.urls.app, business_id=world.a.id) as conn:
        assert affected(await conn.execute(statement, world.a.id, *args)) == 1


@pytest.mark.policy("10.3")
async def test_tenant_b_cannot_move_its_rows_into_a(world: World) -> None:
    """WITH CHECK also guards UPDATE: a row of B cannot be re-labelled as A's."""
    async with tx(world.urls.app, business_id=world.b.id) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute(
                "UPDATE clients SET business_id = $1 WHERE id = $2", world.a.id, world.client_x_b
            )


@pytest.mark.policy("10.3")
async def test_tenant_b_cannot_append_to_a_audit_chain(world: World) -> None:
    append = (
        "SELECT audit_append($1, NULL, 'staff', 'booking.cancel', 'booking', $2, NULL, NULL, "
        "NULL, NULL, NULL)"
    )
    async with tx(world.urls.app, business_id=world.b.id) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="tenant mismatch"):
            await conn.fetchval(append, world.a.id, world.booking_x_a)
    async with tx(world.urls.app, business_id=world.a.id) as conn:  # positive control
        assert await conn.fetchval(append, world.a.id, world.booking_x_a) is not None


# --- a client's own rows across businesses --------------------------------------------------


@pytest.mark.policy("10.3")
async def test_client_sees_own_bookings_in_every_business_and_nobody_elses(world: World) -> None:
    async with tx(world.urls.app, account_id=world.account_x) as conn:
        rows = await conn.fetch("SELECT id, business_id, account_id FROM bookings ORDER BY id")
        assert {r["id"] for r in rows} == {world.booking_x_a, world.booking_x_b}
        assert {r["business_id"] for r in rows} == {world.a.id, world.b.id}
        clients = await conn.fetch("SELECT id FROM clients")
        assert {r["id"] for r in clients} == {world.client_x_a, world.client_x_b}
        messages = await conn.fetch("SELECT client_id FROM messages")
        assert {r["client_id"] for r in messages} == {world.client_x_a, world.client_x_b}
        notes = await conn.fetch("SELECT account_id FROM notifications")
        assert {r["account_id"] for r in notes} == {world.account_x}
        assert len(notes) == 3  # A's, B's and the platform notice
        # reading is all: the client policy does not let an account change its bookings
        status = await conn.execute(
            "UPDATE bookings SET status = 'cancelled' WHERE id = $1", world.booking_x_a
        )
        assert affected(status) == 0
    async with tx(world.urls.app, account_id=world.account_y) as conn:
        rows = await conn.fetch("SELECT id FROM bookings")
        assert {r["id"] for r in rows} == {world.booking_y_a}
        others = "SELECT count(*) FROM bookings WHERE account_id = $1"
        assert await conn.fetchval(others, world.account_x) == 0


@pytest.mark.policy("10.3")
async def test_client_context_adds_nothing_of_other_accounts_within_a_tenant(world: World) -> None:
    """Tenant B plus account Y (a client of A only): Y's own rows, B's rows, nothing else of A."""
    async with tx(world.urls.app, business_id=world.b.id, account_id=world.account_y) as conn:
        rows = await conn.fetch("SELECT id FROM bookings")
        assert {r["id"] for r in rows} == {world.booking_x_b, world.booking_y_a}
        assert world.booking_x_a not in {r["id"] for r in rows}


# --- the worker role and what nobody may do -------------------------------------------------


async def test_worker_reads_notifications_and_bookings_across_tenants(world: World) -> None:
    for table in ("notifications", "bookings"):
        total = await owner_count(world, table)
        async with tx(world.urls.worker) as conn:
            rows = await conn.fetch(f"SELECT business_id FROM {table}")
        assert len(rows) == total
        assert {world.a.id, world.b.id} <= {r["business_id"] for r in rows}
    async with tx(world.urls.worker) as conn:
        status = await conn.execute(
            "UPDATE notifications SET status = 'sent', attempts = attempts + 1 "
            "WHERE status = 'pending'"
        )
        assert affected(status) == await owner_count(world, "notifications")


REFUSED = [
    # the worker: delivery, reminders and retention need none of these
    (WORKER_ROLE, "INSERT INTO bookings (business_id) VALUES (1)"),
    (WORKER_ROLE, "DELETE FROM bookings"),
    (WORKER_ROLE, "UPDATE messages SET body = 'x'"),
    (WORKER_ROLE, "SELECT count(*) FROM data_requests"),
    (WORKER_ROLE, "SELECT count(*) FROM time_off"),
    (WORKER_ROLE, "SELECT count(*) FROM audit_log"),
    (WORKER_ROLE, "UPDATE audit_log SET action = 'x'"),
    (WORKER_ROLE, "UPDATE clients SET notes = NULL"),
    (WORKER_ROLE, "SELECT notes FROM clients"),  # a message names the client, no more
    (WORKER_ROLE, "SELECT phone, tags FROM clients"),
    (WORKER_ROLE, "SELECT * FROM clients"),
    (WORKER_ROLE, "SELECT count(*) FROM invoices"),
    (WORKER_ROLE, "DELETE FROM consents"),
    # the app: bookings are cancelled, never deleted; the audit log and consents are append-only
    (APP_ROLE, "DELETE FROM bookings"),
    (APP_ROLE, "DELETE FROM clients"),
    (APP_ROLE, "DELETE FROM messages"),
    (APP_ROLE, "UPDATE audit_log SET action = 'x'"),
    (APP_ROLE, "DELETE FROM audit_log"),
    (
        APP_ROLE,
        "INSERT INTO audit_log (chain_key, seq, actor_kind, action, entity, prev_hash, "
        "hash) VALUES (0, 999, 'x', 'x', 'x', '', '')",
    ),
    (APP_ROLE, "UPDATE audit_details SET ip = NULL"),
    (APP_ROLE, "UPDATE consents SET action = 'granted'"),
    (APP_ROLE, "DELETE FROM consents"),
    (APP_ROLE, "DELETE FROM consent_technical"),
    (APP_ROLE, "UPDATE audit_chain_heads SET seq = 0"),
    (APP_ROLE, "INSERT INTO businesses (slug, name) VALUES ('intruder', 'Intruder')"),
    (APP_ROLE, "INSERT INTO invoices (business_id) VALUES (1)"),
    (APP_ROLE, "UPDATE policy_versions SET material = false"),
    (APP_ROLE, "SELECT * FROM audit_verify()"),
    # personal tables (migration 0016): accounts are made only by pz_account_for_*, codes only
    # by pz_otp_issue and pz_otp_check; nobody gives themselves an operator's rights
    (APP_ROLE, "INSERT INTO accounts (name) VALUES ('Intruder')"),
    (APP_ROLE, "UPDATE accounts SET is_operator = true"),
    (APP_ROLE, "UPDATE accounts SET telegram_id = 1"),
    (APP_ROLE, "UPDATE accounts SET deleted_at = NULL"),
    (APP_ROLE, "UPDATE accounts SET password_hash = NULL"),
    (APP_ROLE, "DELETE FROM accounts"),
    (
        APP_ROLE,
        "INSERT INTO otp_challenges (channel, destination_hash, code_hash, expires_at) "
        "VALUES ('sms', 'h', 'c', now())",
    ),
    (APP_ROLE, "UPDATE otp_challenges SET attempts = 0"),
    (APP_ROLE, "DELETE FROM otp_challenges"),
    (APP_ROLE, "DELETE FROM data_requests"),
    (APP_ROLE, "DELETE FROM security_events"),
    (APP_ROLE, "UPDATE security_events SET ip = NULL"),
    # the worker: delivery reads contacts and language, never who the person is otherwise
    (WORKER_ROLE, "SELECT name FROM accounts"),
    (WORKER_ROLE, "SELECT avatar FROM accounts"),
    (WORKER_ROLE, "SELECT password_hash FROM accounts"),
    (WORKER_ROLE, "SELECT * FROM accounts"),
    (WORKER_ROLE, "UPDATE accounts SET phone = NULL"),
    (WORKER_ROLE, "UPDATE accounts SET locale = 'en'"),
    (WORKER_ROLE, "INSERT INTO accounts (name) VALUES ('x')"),
    (WORKER_ROLE, "DELETE FROM accounts"),
    (WORKER_ROLE, "SELECT count(*) FROM consents"),
    (WORKER_ROLE, "SELECT count(*) FROM consent_technical"),
    (WORKER_ROLE, "DELETE FROM consent_technical"),
    (WORKER_ROLE, "SELECT count(*) FROM security_events"),
    (WORKER_ROLE, "DELETE FROM security_events"),
    (WORKER_ROLE, "UPDATE otp_challenges SET attempts = 0"),
    (WORKER_ROLE, "SELECT pz_account_by_telegram(1)"),
    (WORKER_ROLE, "SELECT pz_otp_sent_to('h', now())"),
    # policy notices (policy 11.1, migration 0023): written by pz_policy_notice_batch only
    (APP_ROLE, "SELECT count(*) FROM policy_notices"),
    (APP_ROLE, "SELECT count(*) FROM policy_announcements"),
    (APP_ROLE, "SELECT pz_policy_notice_batch('x', current_date, now(), 1)"),
    (WORKER_ROLE, "SELECT count(*) FROM policy_notices"),
    (
        WORKER_ROLE,
        "INSERT INTO policy_notices (policy_version, account_id, channel) VALUES ('x', 1, 'sms')",
    ),
    (WORKER_ROLE, "UPDATE policy_announcements SET after_account_id = 0"),
    (APP_ROLE, "UPDATE policy_versions SET digests = '{}'"),
]


@pytest.mark.parametrize(("role", "statement"), REFUSED)
async def test_not_granted_is_refused(world: World, role: str, statement: str) -> None:
    dsn = world.urls.app if role == APP_ROLE else world.urls.worker
    async with tx(dsn, business_id=world.a.id) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute(statement)


@pytest.mark.parametrize("table", ["audit_log", "consents"])
async def test_append_only_even_for_the_owner(world: World, table: str) -> None:
    assert await owner_count(world, table) > 0
    async with tx(world.urls.owner) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"UPDATE {table} SET id = id")
    async with tx(world.urls.owner) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"DELETE FROM {table}")


@pytest.mark.policy("10.3")
async def test_the_app_sees_and_writes_only_the_signed_in_accounts_sessions(world: World) -> None:
    """A session row holds a sign-in's CSRF secret, IP and user agent (migration 0012)."""
    async with tx(world.urls.app, account_id=world.account_x) as conn:
        assert {r["id"] for r in await conn.fetch("SELECT id FROM sessions")} == {"rls-x"}
        assert affected(await conn.execute("UPDATE sessions SET revoked_at = now()")) == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute(
                "INSERT INTO sessions (id, account_id, kind, csrf_secret, expires_at) "
                "VALUES ('rls-forged', $1, 'miniapp', 's', now() + interval '1 day')",
                world.account_y,
            )
    async with tx(world.urls.app) as conn:  # nobody signed in: nobody's sessions
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 0
    async with tx(world.urls.worker) as conn:  # the purge of expired sessions sees them all
        assert (
            await conn.fetchval("SELECT count(*) FROM sessions WHERE id IN ('rls-x', 'rls-y')") == 2
        )


# --- personal tables: each row is one account's (policy 5.1, 10.3; migration 0016) ----------

# Tables whose rows belong to one person, not to a business: the app reaches them only acting
# for that person (app.account_id), whatever business the transaction acts for.
PERSONAL = (
    "accounts",
    "consents",
    "consent_technical",
    "data_requests",
    "security_events",
    "otp_challenges",
    "sessions",
)
# the account a row belongs to, as SQL over the table
ACCOUNT_OF = {
    "accounts": "id",
    "consent_technical": "(SELECT c.account_id FROM consents c "
    "WHERE c.id = consent_technical.consent_id)",
}
# a change that changes nothing, on a column the app may write if it may write the table at all
HARMLESS = {
    "accounts": "name",
    "consents": "channel",
    "consent_technical": "ip",
    "data_requests": "status",
    "security_events": "event",
    "otp_challenges": "attempts",
    "sessions": "revoked_at",
}


async def refused(
    dsn: str, error: type[Exception], statement: str, *args: Any, account_id: int | None = None,
    match: str | None = None,
) -> None:  # fmt: skip
    """``statement`` fails with ``error`` (each refusal in a transaction of its own: the error
    aborts the one it happens in)."""
    async with tx(dsn, account_id=account_id) as conn:
        with pytest.raises(error, match=match):
            await conn.fetchval(statement, *args)


def account_of(table: str) -> str:
    return ACCOUNT_OF.get(table, "account_id")


async def owner_count_of(world: World, table: str, account_id: int) -> int:
    async with connected(world.urls.owner) as conn:
        return int(
            await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE {account_of(table)} = $1", account_id
            )
        )


async def column_privilege(world: World, role: str, table: str, column: str, action: str) -> bool:
    async with connected(world.urls.owner) as conn:
        return bool(
            await conn.fetchval(
                "SELECT has_column_privilege($1, $2, $3, $4)", role, table, column, action
            )
        )


@pytest.mark.policy("10.3")
async def test_every_personal_table_forces_row_level_security(world: World) -> None:
    async with connected(world.urls.owner) as conn:
        rows = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relname = ANY($1::text[])",
            list(PERSONAL),
        )
    flags = {r["relname"]: (r["relrowsecurity"], r["relforcerowsecurity"]) for r in rows}
    assert set(flags) == set(PERSONAL)
    assert sorted(t for t, f in flags.items() if f != (True, True)) == []


@pytest.mark.parametrize("table", PERSONAL)
async def test_arrangement_has_rows_of_both_accounts_in_every_personal_table(
    world: World, table: str
) -> None:
    """The matrix below would prove nothing on rows of one account only."""
    assert await owner_count_of(world, table, world.account_x) > 0
    assert await owner_count_of(world, table, world.account_y) > 0


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("table", PERSONAL)
async def test_without_an_account_no_personal_rows(world: World, table: str) -> None:
    """Nobody signed in: nothing, whatever business the transaction acts for."""
    assert await owner_count(world, table) > 0
    for business_id in (None, world.a.id):
        async with tx(world.urls.app, business_id=business_id) as conn:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


@pytest.mark.policy("5.1")
@pytest.mark.policy("10.3")
@pytest.mark.parametrize("table", PERSONAL)
async def test_an_account_sees_its_own_personal_rows_and_nobody_elses(
    world: World, table: str
) -> None:
    own = await owner_count_of(world, table, world.account_x)
    query = f"SELECT {account_of(table)} AS owner FROM {table}"
    # X is a client of A: acting for A as well opens none of Y's rows (Y is A's client too)
    for business_id in (None, world.a.id):
        async with tx(world.urls.app, business_id=business_id, account_id=world.account_x) as conn:
            seen = [r["owner"] for r in await conn.fetch(query)]
            assert seen == [world.account_x] * own
            explicit = f"SELECT count(*) FROM {table} WHERE {account_of(table)} = $1"
            assert await conn.fetchval(explicit, world.account_y) == 0


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("table", PERSONAL)
async def test_personal_rows_cannot_be_changed_for_another_account(
    world: World, table: str
) -> None:
    column = HARMLESS[table]
    statement = f"UPDATE {table} SET {column} = {column} WHERE {account_of(table)} = $1"
    if not await column_privilege(world, APP_ROLE, table, column, "UPDATE"):
        for account_id in (world.account_x, world.account_y, None):
            async with tx(world.urls.app, account_id=account_id) as conn:
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                    await conn.execute(statement, world.account_y)
        return
    for account_id in (world.account_x, None):
        async with tx(world.urls.app, business_id=world.a.id, account_id=account_id) as conn:
            assert affected(await conn.execute(statement, world.account_y)) == 0
    # positive control: the person's own rows (rolled back)
    expected = await owner_count_of(world, table, world.account_y)
    async with tx(world.urls.app, account_id=world.account_y) as conn:
        assert affected(await conn.execute(statement, world.account_y)) == expected > 0


@pytest.mark.policy("10.3")
@pytest.mark.parametrize("table", PERSONAL)
async def test_the_app_deletes_no_personal_rows(world: World, table: str) -> None:
    """Erasure and retention go through the owner's functions; the app role deletes nothing."""
    assert not await privilege(world, APP_ROLE, table, "DELETE")
    for account_id in (world.account_x, None):
        async with tx(world.urls.app, account_id=account_id) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await conn.execute(f"DELETE FROM {table} WHERE {account_of(table)} = $1",
                                   world.account_x)  # fmt: skip


def personal_inserts(world: World) -> dict[str, tuple[str, list[Any]]]:
    """A valid new row of account Y for every personal table the app may INSERT into."""
    return {
        "consents": (
            "INSERT INTO consents (account_id, policy_version, purposes, action, channel) "
            "VALUES ($1, 'rls-test', '{booking}', 'withdrawn', 'api')",
            [world.account_y],
        ),
        "consent_technical": (
            "INSERT INTO consent_technical (consent_id, ip) VALUES ($1, '10.9.9.9')",
            [world.consent_y],
        ),
        "data_requests": (
            "INSERT INTO data_requests (account_id, kind, channel, due_on) "
            "VALUES ($1, 'access', 'email', '2031-03-20')",
            [world.account_y],
        ),
        "security_events": (
            "INSERT INTO security_events (account_id, event) VALUES ($1, 'sign_in')",
            [world.account_y],
        ),
        "sessions": (
            "INSERT INTO sessions (id, account_id, kind, csrf_secret, expires_at) "
            "VALUES ('rls-forged', $1, 'miniapp', 's', now() + interval '1 day')",
            [world.account_y],
        ),
    }


async def test_every_insertable_personal_table_is_in_the_insert_matrix(world: World) -> None:
    insertable = {t for t in PERSONAL if await privilege(world, APP_ROLE, t, "INSERT")}
    assert insertable == set(personal_inserts(world))


@pytest.mark.policy("10.3")
@pytest.mark.parametrize(
    "table", ["consents", "consent_technical", "data_requests", "security_events", "sessions"]
)
async def test_personal_rows_cannot_be_written_for_another_account(
    world: World, table: str
) -> None:
    statement, args = personal_inserts(world)[table]
    for account_id in (world.account_x, None):
        async with tx(world.urls.app, business_id=world.a.id, account_id=account_id) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await conn.execute(statement, *args)
    async with tx(world.urls.app, account_id=world.account_y) as conn:  # positive control
        assert affected(await conn.execute(statement, *args)) == 1


# --- what the worker role may do with personal rows -------------------------------------------


async def test_worker_reads_every_addressee_for_delivery(world: World) -> None:
    total = await owner_count(world, "accounts")
    async with tx(world.urls.worker) as conn:
        rows = await conn.fetch(
            "SELECT id, phone, email, telegram_id, allows_write_to_pm, locale, deleted_at "
            "FROM accounts"
        )
    assert len(rows) == total
    assert {world.account_x, world.account_y} <= {r["id"] for r in rows}


async def test_worker_may_stop_bot_messages_but_never_start_them(world: World) -> None:
    """Telegram says the bot is blocked: the relay stops writing. Allowing it is the person's."""
    off = "UPDATE accounts SET allows_write_to_pm = false WHERE id = $1"
    on = "UPDATE accounts SET allows_write_to_pm = true WHERE id = $1"
    async with tx(world.urls.worker) as conn:
        assert affected(await conn.execute(off, world.account_x)) == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute(on, world.account_x)


async def test_worker_sees_only_codes_past_their_expiry(world: World) -> None:
    """Housekeeping deletes spent codes; a code that may still be used is out of its sight."""
    async with connected(world.urls.owner) as conn:
        spent = await conn.fetchval("SELECT count(*) FROM otp_challenges WHERE expires_at < now()")
        live = await conn.fetchval("SELECT count(*) FROM otp_challenges WHERE expires_at > now()")
    assert spent > 0 and live > 0
    async with tx(world.urls.worker) as conn:
        assert await conn.fetchval("SELECT count(*) FROM otp_challenges") == spent
        assert affected(await conn.execute("DELETE FROM otp_challenges")) == spent


# --- before anyone is signed in: SECURITY DEFINER functions that give out ids, yes/no, counts --

# what each function reachable before a sign-in returns: never a row of a personal table
SIGN_IN_DEFINERS = {
    "pz_account_by_telegram": "bigint",
    "pz_account_chosen_locale": "text",
    "pz_account_for_telegram": "TABLE(account_id bigint, created boolean)",
    "pz_account_for_contact": "TABLE(account_id bigint, created boolean)",
    "pz_contact_taken": "boolean",
    "pz_client_locale": "text",
    "pz_booking_recipients": "TABLE(account_id bigint, locale text)",
    "pz_otp_sent_to": "integer",
    "pz_otp_sent_from": "integer",
    "pz_otp_issue": "bigint",
    "pz_otp_check": "text",
}

# the expiry job cancels an unconfirmed booking through the app's own cancel path, which asks
# these two (tenant-checked) for whom to tell; the worker may read the same columns directly
WORKER_DEFINERS = {"pz_client_locale", "pz_booking_recipients"}


async def test_the_definer_functions_return_ids_yes_no_and_counts(world: World) -> None:
    async with connected(world.urls.owner) as conn:
        rows = await conn.fetch(
            "SELECT p.proname, pg_get_function_result(p.oid) AS result, p.prosecdef, "
            "p.proconfig, has_function_privilege('public', p.oid, 'EXECUTE') AS public, "
            "has_function_privilege($2, p.oid, 'EXECUTE') AS app, "
            "has_function_privilege($3, p.oid, 'EXECUTE') AS worker FROM pg_proc p "
            "WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY($1::text[])",
            list(SIGN_IN_DEFINERS), APP_ROLE, WORKER_ROLE,
        )  # fmt: skip
        every_definer = await conn.fetch(
            "SELECT proname, proconfig FROM pg_proc "
            "WHERE pronamespace = 'public'::regnamespace AND prosecdef"
        )
    found = {r["proname"]: r for r in rows}
    assert {name: r["result"] for name, r in found.items()} == SIGN_IN_DEFINERS
    for name, r in found.items():
        worker = name in WORKER_DEFINERS
        assert (r["prosecdef"], r["public"], r["app"], r["worker"]) == (True, False, True, worker)
        assert any(c.startswith("search_path=") for c in r["proconfig"] or []), name
    # and every function that runs as the owner pins its search path
    unpinned = [
        r["proname"]
        for r in every_definer
        if not any(c.startswith("search_path=") for c in r["proconfig"] or [])
    ]
    assert len(every_definer) > len(SIGN_IN_DEFINERS) and unpinned == []


async def test_an_account_is_found_by_contact_only_right_after_a_code_was_checked(
    world: World,
) -> None:
    call = "SELECT account_id FROM pz_account_for_contact($1, 'sms', '+77010000001', 'ru')"
    async with connected(world.urls.owner) as owner:
        anon = await owner.fetchval(
            "SELECT id FROM otp_challenges WHERE destination_hash = 'rls-anon'"
        )
    # no such code; a code for a change of contact; a sign-in code not used yet
    for challenge in (10**15, world.code_x, anon):
        await refused(world.urls.app, asyncpg.InsufficientPrivilegeError, call, challenge,
                      match="just checked")  # fmt: skip
    async with tx(world.urls.owner) as conn:  # positive control: right after it was used
        await conn.execute("UPDATE otp_challenges SET consumed_at = now() WHERE id = $1", anon)
        assert await conn.fetchval(call, anon) == world.account_x
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="just checked"):
            await conn.fetchval(call.replace("'sms'", "'email'"), anon)  # not by e-mail


async def test_whether_a_contact_is_taken_is_told_to_a_signed_in_account_only(
    world: World,
) -> None:
    taken = "SELECT pz_contact_taken('sms', $1)"
    await refused(world.urls.app, asyncpg.InsufficientPrivilegeError, taken, "+77010000002",
                  match="signed-in")  # fmt: skip
    await refused(world.urls.app, asyncpg.InvalidParameterValueError,
                  "SELECT pz_contact_taken('pigeon', 'x')", account_id=world.account_x)  # fmt: skip
    async with tx(world.urls.app, account_id=world.account_x) as conn:
        assert await conn.fetchval(taken, "+77010000002") is True  # Y's
        assert await conn.fetchval(taken, "+77010000001") is False  # X's own
        assert await conn.fetchval(taken, "+77019999999") is False


ISSUE = "SELECT pz_otp_issue($1, 'rls-new', 'v2$c', $2, '10.0.0.9', now(), now() + $3::interval)"


async def test_codes_are_issued_for_nobody_or_the_signed_in_account(world: World) -> None:
    five = timedelta(minutes=5)
    await refused(world.urls.app, asyncpg.InsufficientPrivilegeError, ISSUE, "sms",
                  "change_phone", five, match="signed-in")  # fmt: skip
    for channel, purpose, ttl in (
        ("email", "change_phone", five),  # the wrong channel for the purpose
        ("pigeon", "sign_in", five),
        ("sms", "sign_in", timedelta(hours=1)),  # codes live at most 10 minutes
        ("sms", "sign_in", timedelta(minutes=-1)),
    ):
        await refused(world.urls.app, asyncpg.InvalidParameterValueError, ISSUE, channel,
                      purpose, ttl, account_id=world.account_x)  # fmt: skip
    async with tx(world.urls.app, account_id=world.account_x) as conn:
        change = await conn.fetchval(ISSUE, "sms", "change_phone", five)
        sign_in = await conn.fetchval(ISSUE, "sms", "sign_in", five)
        # a change code is X's (X reads it back); a sign-in code belongs to nobody, whoever asks
        mine = await conn.fetch("SELECT id FROM otp_challenges WHERE id = ANY($1::bigint[])",
                                [change, sign_in])  # fmt: skip
        assert [r["id"] for r in mine] == [change]


CHECK = "SELECT pz_otp_check($1, $2, 'v2$x', $3, now())"
ATTEMPTS = "SELECT attempts, consumed_at IS NOT NULL AS used FROM otp_challenges WHERE id = $1"


async def test_a_code_is_checked_only_for_the_account_that_asked(world: World) -> None:
    async with tx(world.urls.app, account_id=world.account_y) as conn:
        # Y holds X's code and its address: nothing is said, counted or used up
        assert await conn.fetchval(CHECK, world.code_x, "rls-x", "change_phone") == "invalid"
        await set_context(conn, account_id=world.account_x)
        assert dict(await conn.fetchrow(ATTEMPTS, world.code_x)) == {"attempts": 0, "used": False}
    async with tx(world.urls.app) as conn:  # nor with nobody signed in
        assert await conn.fetchval(CHECK, world.code_x, "rls-x", "change_phone") == "invalid"
    async with tx(world.urls.app, account_id=world.account_x) as conn:
        assert await conn.fetchval(CHECK, world.code_x, "rls-x", "sign_in") == "invalid"
        assert await conn.fetchval(CHECK, world.code_x, "rls-y", "change_phone") == "wrong"
        assert dict(await conn.fetchrow(ATTEMPTS, world.code_x)) == {"attempts": 1, "used": False}
        # positive control: the right digests, in X's own transaction
        assert await conn.fetchval(CHECK, world.code_x, "rls-x", "change_phone") == "ok"
        assert dict(await conn.fetchrow(ATTEMPTS, world.code_x)) == {"attempts": 1, "used": True}
        assert await conn.fetchval(CHECK, world.code_x, "rls-x", "change_phone") == "invalid"


async def test_telegram_sign_in_refuses_an_id_telegram_never_gives(world: World) -> None:
    call = "SELECT account_id FROM pz_account_for_telegram($1, 'X', true, 'ru')"
    for forged in (None, 0, -5):
        await refused(world.urls.app, asyncpg.InvalidParameterValueError, call, forged)
    async with connected(world.urls.owner) as owner:
        telegram_x = await owner.fetchval(
            "SELECT telegram_id FROM accounts WHERE id = $1", world.account_x
        )
    async with tx(world.urls.app) as conn:  # positive control: the account's id, nothing else
        assert await conn.fetchval(call, telegram_x) == world.account_x
        assert await conn.fetchval("SELECT pz_account_by_telegram($1)", telegram_x) == (
            world.account_x
        )
        assert await conn.fetchval("SELECT count(*) FROM accounts") == 0  # still nobody's


async def test_the_business_learns_its_own_recipients_and_clients_language_only(
    world: World,
) -> None:
    recipients = "SELECT account_id FROM pz_booking_recipients($1, $2)"
    locale = "SELECT pz_client_locale($1)"
    async with tx(world.urls.app, business_id=world.b.id) as conn:
        assert await conn.fetch(recipients, world.a.id, world.a.staff_ids[0]) == []
        assert await conn.fetchval(locale, world.booking_x_a) is None
    async with tx(world.urls.app) as conn:
        assert await conn.fetch(recipients, world.a.id, world.a.staff_ids[0]) == []
        assert await conn.fetchval(locale, world.booking_x_a) is None
    async with tx(world.urls.app, business_id=world.a.id) as conn:  # positive control
        found = [r["account_id"] for r in await conn.fetch(recipients, world.a.id,
                                                            world.a.staff_ids[0])]  # fmt: skip
        assert world.a.owner_account_id in found
        assert await conn.fetchval(locale, world.booking_x_a) == "ru"
    async with tx(world.urls.app, account_id=world.account_x) as conn:  # the client themselves
        assert await conn.fetchval(locale, world.booking_x_a) == "ru"
        assert await conn.fetchval(locale, world.booking_y_a) is None
