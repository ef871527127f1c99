"""The platform-shaped data of ``make bench`` and ``make loadtest`` (issue 17): many businesses.

``create_platform(owner_url, secret_key, businesses=100)`` seeds, in a few set-based statements
run as the tables' owner:

* ``businesses`` salons, each with 10 masters (09:00-13:00 and 14:00-21:00 every day), 8
  services every master gives, 200 client cards and an owner with a dashboard session;
* a month of bookings: every master has 8 bookings on every day from 15 days back to 14 days
  ahead (the dashboard's day calendar of any of those days: 10 masters, 80 bookings), the past
  ones completed (one in twenty a no-show), the coming ones confirmed;
* no booking after that month, so ``Platform.free_slot(i)`` gives any number of distinct free
  (business, master, start) triples for booking requests, spread over every business.

Bookings are inserted directly (no audit entry, no notification): they are history for the
reads to go through, and writing them through the domain would take an hour. The measured
requests themselves go through the app.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.urls import to_libpq, to_sqlalchemy

ZONE = "Asia/Almaty"
MASTERS = 10
CLIENTS = 200
DAYS_BACK, DAYS_AHEAD = 15, 14  # the seeded month: [today - 15, today + 14]
# the free days for booking requests start after the month and end before the horizon (the
# default 60 days: the Mini App's service page shows that many days of times)
FREE_FIRST_OFFSET, FREE_DAYS = DAYS_AHEAD + 2, 40
FREE_STEP_MIN = 30  # the 30-minute service on a 30-minute grid
# (name ru, kk, en, minutes, price in tenge); the 30-minute one is first (booking requests)
SERVICES = [
    ("Брови", "Қас", "Brows", 30, 2000),
    ("Маникюр", "Маникюр", "Manicure", 45, 4000),
    ("Стрижка", "Шаш қию", "Haircut", 60, 5000),
    ("Окрашивание", "Шаш бояу", "Colouring", 60, 12000),
    ("Педикюр", "Педикюр", "Pedicure", 90, 7000),
    ("Укладка", "Шаш сәндеу", "Styling", 30, 3000),
    ("Массаж", "Массаж", "Massage", 60, 9000),
    ("Кератин", "Кератин", "Keratin", 120, 20000),
]
# a master's day: (start, service rank); odd masters start 15 minutes later
DAY_PATTERN = [
    (time(9), 2), (time(10, 15), 0), (time(11), 2), (time(12, 15), 0),
    (time(14), 2), (time(15, 30), 0), (time(17), 2), (time(19), 0),
]  # fmt: skip
PER_DAY = len(DAY_PATTERN)


def _starts() -> list[time]:
    """A master's free starts on a day after the month: 22 half hours."""
    first = [(9 * 60 + FREE_STEP_MIN * i) for i in range(8)]  # 09:00-12:30
    second = [(14 * 60 + FREE_STEP_MIN * i) for i in range(14)]  # 14:00-20:30
    return [time(m // 60, m % 60) for m in first + second]


@dataclass(frozen=True)
class Shop:
    business_id: int
    slug: str
    service_ids: list[int]  # in SERVICES order
    staff_ids: list[int]
    cookie: str  # "<name>=<token>" of the owner's dashboard session, working in this business


@dataclass
class Platform:
    shops: list[Shop]
    today: date  # the local day the month is centred on
    day: date  # a measured day inside the month (the day after tomorrow)
    bookings: int  # seeded
    per_day: int = PER_DAY * MASTERS  # bookings of one business on any day of the month

    @property
    def free_slots(self) -> int:
        return len(self.shops) * FREE_DAYS * MASTERS * len(_starts())

    def free_slot(self, index: int) -> tuple[Shop, int, int, datetime]:
        """The ``index``-th distinct free (shop, master, 30-minute service, start): businesses
        first, then days, so any run of consecutive indexes spreads over every business."""
        if not 0 <= index < self.free_slots:
            raise ValueError(f"only {self.free_slots} free slots on the platform")
        starts = _starts()
        shop = self.shops[index % len(self.shops)]
        rest = index // len(self.shops)
        day = self.today + timedelta(days=FREE_FIRST_OFFSET + rest % FREE_DAYS)
        rest //= FREE_DAYS
        staff_id = shop.staff_ids[rest % MASTERS]
        at = starts[rest // MASTERS]
        start = datetime.combine(day, at, tzinfo=ZoneInfo(ZONE))
        return shop, staff_id, shop.service_ids[0], start


_SEED = """
WITH made AS (
  INSERT INTO businesses (slug, name, timezone, observe_public_holidays, setup_done_at)
  SELECT $1 || lpad(i::text, 3, '0'), 'Салон ' || i, $2, false, now()
    FROM generate_series(1, $3) i
  RETURNING id, slug
), masters AS (
  INSERT INTO staff (business_id, name, sort_order)
  SELECT made.id, 'Мастер ' || m, m - 1 FROM made, generate_series(1, $4) m
  RETURNING id, business_id
), hours AS (
  INSERT INTO working_hours (business_id, staff_id, weekday, start_time, end_time)
  SELECT masters.business_id, masters.id, w, h.opens, h.closes
    FROM masters, generate_series(0, 6) w,
         (VALUES (time '09:00', time '13:00'), (time '14:00', time '21:00')) h(opens, closes)
  RETURNING 1
), offered AS (
  INSERT INTO services (business_id, name, duration_min, price_tiyn, sort_order)
  SELECT made.id, jsonb_build_object('ru', s.ru, 'kk', s.kk, 'en', s.en), s.minutes,
         s.tenge * 100, s.rank
    FROM made, unnest($5::text[], $6::text[], $7::text[], $8::int[], $9::int[])
         WITH ORDINALITY AS s(ru, kk, en, minutes, tenge, rank)
  RETURNING id, business_id
), given AS (
  INSERT INTO staff_services (business_id, staff_id, service_id)
  SELECT masters.business_id, masters.id, offered.id
    FROM masters JOIN offered USING (business_id)
  RETURNING 1
), cards AS (
  INSERT INTO clients (business_id, name, phone)
  SELECT made.id, 'Клиент ' || c, '+7701' || lpad((made.id % 10000 * 1000 + c)::text, 7, '0')
    FROM made, generate_series(1, $10) c
  RETURNING 1
)
SELECT made.id, made.slug, (SELECT count(*) FROM hours) + (SELECT count(*) FROM given)
       + (SELECT count(*) FROM cards) AS rows
  FROM made ORDER BY made.id
"""

# every master, every day of the month, DAY_PATTERN; a client card picked round-robin
_BOOKINGS = """
WITH shops AS (SELECT unnest($1::bigint[]) AS business_id),
masters AS (
  SELECT s.id, s.business_id, s.sort_order AS rank FROM staff s JOIN shops USING (business_id)
), offered AS (
  SELECT v.id, v.business_id, v.sort_order - 1 AS rank, v.name, v.duration_min, v.price_tiyn
    FROM services v JOIN shops USING (business_id)
), cards AS (
  SELECT c.id, c.business_id,
         row_number() OVER (PARTITION BY c.business_id ORDER BY c.id) - 1 AS n
    FROM clients c JOIN shops USING (business_id)
), pattern AS (
  SELECT * FROM unnest($2::time[], $3::int[]) WITH ORDINALITY AS p(at, rank, k)
), days AS (
  SELECT d::date AS day, (d::date - $4::date) AS offset_days
    FROM generate_series($4::date - $5::int, $4::date + $6::int, interval '1 day') d
), made AS (
  SELECT m.business_id, m.id AS staff_id, o.id AS service_id, c.id AS client_id, o.name,
         o.duration_min, o.price_tiyn, days.day,
         ((days.day + p.at) + make_interval(mins => 15 * (m.rank % 2))) AT TIME ZONE $7 AS start
    FROM masters m CROSS JOIN days CROSS JOIN pattern p
    JOIN offered o ON o.business_id = m.business_id AND o.rank = p.rank
    JOIN cards c ON c.business_id = m.business_id
                AND c.n = ((m.rank * 8 + p.k + days.offset_days * 7) % $8 + $8) % $8
)
INSERT INTO bookings (business_id, public_code, client_id, staff_id, service_id, period,
                      blocked_period, status, source, service_name, duration_min, price_tiyn)
SELECT business_id, 'BP' || lpad(to_hex(row_number() OVER ()), 14, '0'), client_id, staff_id,
       service_id, tstzrange(start, start + make_interval(mins => duration_min)),
       tstzrange(start, start + make_interval(mins => duration_min)),
       CASE WHEN day >= $4::date THEN 'confirmed'
            WHEN (client_id + staff_id) % 20 = 0 THEN 'no_show' ELSE 'completed' END,
       'dashboard', name, duration_min, price_tiyn
  FROM made
"""


async def create_platform(
    owner_url: str, secret_key: str, *, businesses: int = 100, now: datetime | None = None
) -> Platform:
    """Seed ``businesses`` salons with a month of bookings each (see the module's text)."""
    from app.models import Account, Membership
    from app.security import sessions

    now = now or datetime.now(UTC)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    prefix = f"pz-{uuid.uuid4().hex[:6]}-"
    conn = await asyncpg.connect(to_libpq(owner_url), timeout=10)
    try:
        async with conn.transaction():
            made = await conn.fetch(
                _SEED, prefix, ZONE, businesses, MASTERS,
                [s[0] for s in SERVICES], [s[1] for s in SERVICES], [s[2] for s in SERVICES],
                [s[3] for s in SERVICES], [s[4] for s in SERVICES], CLIENTS,
            )  # fmt: skip
            ids = [row["id"] for row in made]
            status = await conn.execute(
                _BOOKINGS, ids, [at for at, _ in DAY_PATTERN], [rank for _, rank in DAY_PATTERN],
                today, DAYS_BACK, DAYS_AHEAD, ZONE, CLIENTS,
            )  # fmt: skip
            seeded = int(status.split()[-1])
            staff = await conn.fetch(
                "SELECT business_id, array_agg(id ORDER BY sort_order) AS ids FROM staff "
                "WHERE business_id = ANY($1) GROUP BY business_id", ids,
            )  # fmt: skip
            offered = await conn.fetch(
                "SELECT business_id, array_agg(id ORDER BY sort_order) AS ids FROM services "
                "WHERE business_id = ANY($1) GROUP BY business_id", ids,
            )  # fmt: skip
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    masters = {row["business_id"]: list(row["ids"]) for row in staff}
    services = {row["business_id"]: list(row["ids"]) for row in offered}

    # owners and their dashboard sessions, made the way sign-in makes them
    engine = create_async_engine(to_sqlalchemy(owner_url), poolclass=NullPool)
    cookies: dict[int, str] = {}
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            for business_id in ids:
                owner = Account(name="Владелец", allows_write_to_pm=True,
                                telegram_id=random.randrange(10**11, 10**12))  # fmt: skip
                session.add(owner)
                await session.flush()
                session.add(Membership(business_id=business_id, account_id=owner.id, role="owner"))
                await session.flush()
                token, info = await sessions.issue(
                    session, account_id=owner.id, kind="dashboard", key=secret_key,
                    ip="127.0.0.1", user_agent="bench",
                )  # fmt: skip
                await sessions.choose_business(session, info.id, business_id)
                cookies[business_id] = f"{sessions.COOKIE_NAMES['dashboard']}={token}"
    finally:
        await engine.dispose()
    shops = [
        Shop(row["id"], row["slug"], services[row["id"]], masters[row["id"]], cookies[row["id"]])
        for row in made
    ]
    return Platform(shops=shops, today=today, day=today + timedelta(days=2), bookings=seeded)
