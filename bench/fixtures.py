"""The benchmark's database: a fresh, migrated database with two businesses and the bare tables.

* a *salon* (10 masters, 10:00-14:00 and 15:00-20:00 every day, a 60-minute service with a
  10-minute buffer, five bookings per master on the measured day), for the availability and
  booking-page requests — the shape of ``bench/slots.py``'s scenario for one day;
* a *wide* business (10 masters working 00:00-23:30 every day for a year, a 30-minute service
  on a 30-minute grid), so that thousands of booking requests each get their own free slot;
* a *calendar* business (10 masters, 09:00-13:00 and 14:00-21:00, eight bookings per master on
  the measured day: 80, issue 14) and a dashboard session of its owner, for the day calendar
  and its live-update poll;
* ``bench_items`` (20 rows), ``bench_slots`` (the gist exclusion constraint) and
  ``bench_insert_audited`` (that insert with an outbox row and an audit entry) for the bare
  baseline app.

Everything is written as the tables' owner, through the app's models and domain functions.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db import bootstrap
from app.db.embedded import EmbeddedServer, find_bindir
from app.db.probe import _probe
from app.db.urls import APP_ROLE, to_libpq, to_sqlalchemy, with_database, with_user

ZONE = "Asia/Almaty"
MASTERS = 10
SALON_BOOKINGS_PER_MASTER = 5
WIDE_DAYS = 360  # horizon_days is at most 366
WIDE_STEP_MIN = 30
WIDE_OPEN, WIDE_CLOSE = time(0), time(23, 30)
WIDE_SLOTS_PER_DAY = (WIDE_CLOSE.hour * 60 + WIDE_CLOSE.minute) // WIDE_STEP_MIN  # 47


@dataclass
class BenchDatabase:
    """A fresh database on some server; ``close()`` drops it (and stops an embedded server)."""

    base_url: str  # owner DSN on the maintenance database
    name: str
    kind: str  # "external" or "embedded"
    embedded: EmbeddedServer | None = None
    embedded_root: Path | None = None
    created: bool = False

    @property
    def owner(self) -> str:
        return with_database(self.base_url, self.name)

    @property
    def app(self) -> str:
        return with_user(self.owner, APP_ROLE)

    async def close(self) -> None:
        try:
            if self.created:
                conn = await asyncpg.connect(to_libpq(self.base_url), timeout=10)
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                finally:
                    await conn.close()
                self.created = False
        finally:
            if self.embedded is not None:
                await asyncio.to_thread(self.embedded.stop)
                self.embedded = None
            if self.embedded_root is not None:
                import shutil

                shutil.rmtree(self.embedded_root, ignore_errors=True)
                self.embedded_root = None


async def open_database() -> BenchDatabase:
    """TEST_DATABASE_URL, else a server answering on 127.0.0.1:5432, else (or with
    BENCH_EMBEDDED=1) an embedded server; then a fresh database on it, migrated with
    ``bootstrap.upgrade``."""
    base = None
    if not os.environ.get("BENCH_EMBEDDED"):
        base = os.environ.get("TEST_DATABASE_URL") or await _probe("127.0.0.1", 5432)
    name = f"pozapisi_bench_{uuid.uuid4().hex[:12]}"
    if base:
        db = BenchDatabase(base_url=base, name=name, kind="external")
    else:
        root = Path(tempfile.mkdtemp(prefix="pz-bench-pg-"))
        server = EmbeddedServer(root=root, bindir=find_bindir())
        db = BenchDatabase(
            base_url="", name=name, kind="embedded", embedded=server, embedded_root=root
        )
        db.base_url = await asyncio.to_thread(server.start)
    try:
        conn = await asyncpg.connect(to_libpq(db.base_url), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        db.created = True
        await bootstrap.upgrade(db.owner)
    except BaseException:
        await db.close()
        raise
    return db


@dataclass
class Salon:
    slug: str
    service_id: int
    day: date  # the measured (local) day


@dataclass
class Wide:
    slug: str
    service_id: int
    staff_ids: list[int]
    first_day: date
    slots: int = field(default=MASTERS * WIDE_DAYS * WIDE_SLOTS_PER_DAY)

    def slot(self, index: int) -> tuple[int, datetime]:
        """The ``index``-th distinct (master, start): days first, so each day fills slowly."""
        if index >= self.slots:
            raise ValueError(f"only {self.slots} distinct slots in the wide business")
        day = self.first_day + timedelta(days=index % WIDE_DAYS)
        rest = index // WIDE_DAYS
        staff = self.staff_ids[rest % len(self.staff_ids)]
        step = rest // len(self.staff_ids)
        opens = datetime.combine(day, WIDE_OPEN, tzinfo=ZoneInfo(ZONE))
        return staff, opens + timedelta(minutes=step * WIDE_STEP_MIN)


_BARE_SQL = """
CREATE TABLE bench_items (
    id bigint PRIMARY KEY, name text NOT NULL, minutes int NOT NULL, price bigint NOT NULL
);
INSERT INTO bench_items SELECT i, 'Услуга № ' || i, 30 + i, 1000 * i FROM generate_series(1, 20) i;
CREATE TABLE bench_slots (
    id bigserial PRIMARY KEY,
    resource_id bigint NOT NULL,
    period tstzrange NOT NULL,
    EXCLUDE USING gist (int8range(resource_id, resource_id, '[]') WITH =, period WITH &&)
);
-- the least a booking must also write in its transaction (issue 2, item 9): an outbox row and
-- an entry on the hash-chained audit log, through the app's own audit_append
CREATE TABLE bench_outbox (
    id bigserial PRIMARY KEY,
    slot_id bigint NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    payload jsonb NOT NULL,
    scheduled_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'pending'
);
CREATE INDEX bench_outbox_due ON bench_outbox (scheduled_at) WHERE status = 'pending';
CREATE FUNCTION bench_insert_audited(p_resource bigint, p_start timestamptz, p_end timestamptz,
                                     p_business bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO bench_slots (resource_id, period)
  VALUES (p_resource, tstzrange(p_start, p_end, '[)')) RETURNING id INTO v_id;
  INSERT INTO bench_outbox (slot_id, idempotency_key, payload, scheduled_at)
  VALUES (v_id, 'slot.create:' || v_id, jsonb_build_object('slot', v_id), now());
  PERFORM audit_append(p_business, NULL, 'system', 'bench.slot.create', 'bench_slot', v_id, NULL,
                       jsonb_build_object('resource', p_resource, 'start', p_start, 'end', p_end),
                       NULL, NULL, NULL);
  RETURN v_id;
END $$;
"""


async def create_bare_tables(owner_url: str) -> None:
    conn = await asyncpg.connect(to_libpq(owner_url), timeout=10)
    try:
        await conn.execute(_BARE_SQL)
    finally:
        await conn.close()


async def _owner_session_run(owner_url: str, work):  # type: ignore[no-untyped-def]
    engine = create_async_engine(to_sqlalchemy(owner_url), poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


@dataclass
class Calendar:
    slug: str
    business_id: int
    day: date  # the measured (local) day, with CALENDAR_BOOKINGS_PER_MASTER bookings a master
    bookings: int
    cookie: str  # "<name>=<token>" of the owner's dashboard session


@dataclass
class _Made:
    business_id: int
    service_id: int  # the main service
    short_id: int  # the 30-minute one
    staff_ids: list[int]
    owner_id: int  # the owner's account


async def _business(
    session: AsyncSession,
    *,
    slug: str,
    hours: list[tuple[time, time]],
    service: dict[str, int],
    **rules: int,
) -> _Made:
    from app.models import (
        Account,
        Business,
        Membership,
        Service,
        Staff,
        StaffService,
        WorkingHours,
    )

    # open every day of the year: the booking load walks slots day after day and must not
    # meet a public holiday (observed by default since migration 0017) as a taken slot
    business = Business(
        slug=slug, name=f"Бенчмарк {slug}", timezone=ZONE, observe_public_holidays=False, **rules
    )
    session.add(business)
    await session.flush()
    staff = [Staff(business_id=business.id, name=f"Мастер {i + 1}", sort_order=i) for i in range(MASTERS)]  # fmt: skip
    session.add_all(staff)
    await session.flush()
    for member in staff:
        for weekday in range(7):
            for opens, closes in hours:
                session.add(WorkingHours(business_id=business.id, staff_id=member.id,
                                         weekday=weekday, start_time=opens, end_time=closes))  # fmt: skip
    main = Service(business_id=business.id, name={"ru": "Стрижка", "kk": "Шаш қию", "en": "Haircut"},
                   price_tiyn=500_000, sort_order=0, **service)  # fmt: skip
    short = Service(business_id=business.id, name={"ru": "Брови", "kk": "Қас", "en": "Brows"},
                    duration_min=30, price_tiyn=200_000, sort_order=1)  # fmt: skip
    session.add_all([main, short])
    await session.flush()
    for member in staff:
        session.add(StaffService(business_id=business.id, staff_id=member.id, service_id=main.id))
        session.add(StaffService(business_id=business.id, staff_id=member.id, service_id=short.id))
    owner = Account(
        name="Владелец", telegram_id=random.randrange(10**11, 10**12), allows_write_to_pm=True
    )
    session.add(owner)
    await session.flush()
    session.add(Membership(business_id=business.id, account_id=owner.id, role="owner"))
    await session.flush()
    return _Made(business.id, main.id, short.id, [s.id for s in staff], owner.id)


async def create_salon(owner_url: str, now: datetime | None = None) -> Salon:
    from app.domain import bookings
    from app.domain.audit import SYSTEM
    from app.models import Business

    now = now or datetime.now(UTC)
    slug = f"bench-salon-{uuid.uuid4().hex[:8]}"
    day = (now.astimezone(ZoneInfo(ZONE)) + timedelta(days=2)).date()

    async def work(session: AsyncSession) -> Salon:
        made = await _business(
            session, slug=slug, hours=[(time(10), time(14)), (time(15), time(20))],
            service={"duration_min": 60, "buffer_after_min": 10},
        )  # fmt: skip
        service_id, staff_ids = made.service_id, made.staff_ids
        business = await session.get(Business, made.business_id)
        assert business is not None
        zone = ZoneInfo(ZONE)
        # a busy day with a few gaps left: two free starts per master (20 slots)
        starts = [time(10), time(12, 45), time(15), time(16, 30), time(18, 45)]
        for rank, staff_id in enumerate(staff_ids):
            shift = timedelta(minutes=(rank % 2) * 15)
            for at in starts[:SALON_BOOKINGS_PER_MASTER]:
                start = datetime.combine(day, at, tzinfo=zone) + shift
                await bookings.create_booking_in(
                    session, business,
                    bookings.BookingRequest(service_id=service_id, staff_id=staff_id, start=start,
                                            source="dashboard", client_name=f"Клиент {rank}"),
                    account=None, actor=SYSTEM, now=now,
                )  # fmt: skip
        return Salon(slug=slug, service_id=service_id, day=day)

    result: Salon = await _owner_session_run(owner_url, work)
    return result


async def create_wide(owner_url: str, now: datetime | None = None) -> Wide:
    now = now or datetime.now(UTC)
    slug = f"bench-wide-{uuid.uuid4().hex[:8]}"
    first_day = (now.astimezone(ZoneInfo(ZONE)) + timedelta(days=2)).date()

    async def work(session: AsyncSession) -> Wide:
        made = await _business(
            session, slug=slug, hours=[(WIDE_OPEN, WIDE_CLOSE)],
            service={"duration_min": WIDE_STEP_MIN}, slot_step_min=WIDE_STEP_MIN,
            min_notice_min=0, horizon_days=366,
        )  # fmt: skip
        return Wide(slug=slug, service_id=made.service_id, staff_ids=made.staff_ids,
                    first_day=first_day)  # fmt: skip

    result: Wide = await _owner_session_run(owner_url, work)
    return result


# (start, main service?) of a master's eight bookings: a full day in both halves, around the
# lunch break; every other master starts 15 minutes later so the columns differ
CALENDAR_DAY = [
    (time(9), True), (time(10, 15), False), (time(11), True), (time(12, 15), False),
    (time(14), True), (time(15, 30), False), (time(17), True), (time(19), False),
]  # fmt: skip
CALENDAR_BOOKINGS_PER_MASTER = len(CALENDAR_DAY)


async def create_calendar(owner_url: str, secret_key: str, now: datetime | None = None
                          ) -> Calendar:  # fmt: skip
    """The calendar business: 10 masters, 80 bookings by walk-in clients (each a client card
    with a name and a phone) on the measured day, and a dashboard session of its owner made
    the way sign-in makes one (``sessions.issue``, working in this business)."""
    from app.domain import bookings
    from app.domain.audit import SYSTEM
    from app.models import Business
    from app.security import sessions

    now = now or datetime.now(UTC)
    slug = f"bench-calendar-{uuid.uuid4().hex[:8]}"
    day = (now.astimezone(ZoneInfo(ZONE)) + timedelta(days=2)).date()

    async def work(session: AsyncSession) -> Calendar:
        made = await _business(
            session, slug=slug, hours=[(time(9), time(13)), (time(14), time(21))],
            service={"duration_min": 60, "buffer_after_min": 10},
        )  # fmt: skip
        business = await session.get(Business, made.business_id)
        assert business is not None
        zone = ZoneInfo(ZONE)
        count = 0
        for rank, staff_id in enumerate(made.staff_ids):
            shift = timedelta(minutes=(rank % 2) * 15)
            for at, main in CALENDAR_DAY:
                start = datetime.combine(day, at, tzinfo=zone) + shift
                await bookings.create_booking_in(
                    session, business,
                    bookings.BookingRequest(
                        service_id=made.service_id if main else made.short_id,
                        staff_id=staff_id, start=start, source="walk_in",
                        client_name=f"Клиентка {rank}-{count}",
                        client_phone=f"+7701{5550000 + count:07d}",
                    ),
                    account=None, actor=SYSTEM, now=now,
                )  # fmt: skip
                count += 1
        token, info = await sessions.issue(
            session, account_id=made.owner_id, kind="dashboard", key=secret_key,
            ip="127.0.0.1", user_agent="bench",
        )  # fmt: skip
        await sessions.choose_business(session, info.id, made.business_id)
        cookie = f"{sessions.COOKIE_NAMES['dashboard']}={token}"
        return Calendar(slug=slug, business_id=made.business_id, day=day, bookings=count,
                        cookie=cookie)  # fmt: skip

    result: Calendar = await _owner_session_run(owner_url, work)
    return result
