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
    "time_off",
    "clients",
    "bookings",
    "messages",
    "notifications",
    "audit_log",
    "audit_details",
    "subscriptions",
    "invoices",
    "payments",
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
        plan_id = await conn.fetchval(
            'INSERT INTO plans (code, name, price_tiyn) VALUES ($1, \'{"ru": "Старт"}\', 500000) '
            "RETURNING id",
            f"p{next_telegram_id() % 10**8}",
        )
        for business in (a, b):
            subscription_id = await conn.fetchval(
                "INSERT INTO subscriptions (business_id, plan_id, status, current_period_end) "
                "VALUES ($1, $2, 'active', '2031-04-01') RETURNING id",
                business.id,
                plan_id,
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
    return World(
        urls=urls, a=a, b=b, account_x=account_x, account_y=account_y,
        client_x_a=client_x_a, client_x_b=client_x_b, client_y_a=client_y_a,
        booking_x_a=booking_x_a, booking_y_a=booking_y_a, booking_x_b=booking_x_b,
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
)


def insert_statements(world: World) -> dict[str, tuple[str, list[Any]]]:
    """A valid new row of business ``$1`` for every tenant table the app may INSERT into."""
    a = world.a
    return {
        "memberships": (
            "INSERT INTO memberships (business_id, account_id, role) VALUES ($1, $2, 'admin')",
            [world.account_y],
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
    async with connected(world.urls.owner) as owner:
        for account, sid in ((world.account_x, "rls-x"), (world.account_y, "rls-y")):
            await owner.execute(
                "INSERT INTO sessions (id, account_id, kind, csrf_secret, expires_at, ip) "
                "VALUES ($1, $2, 'miniapp', 'secret', now() + interval '1 day', '10.1.2.3') "
                "ON CONFLICT (id) DO NOTHING",
                sid, account,
            )  # fmt: skip
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
