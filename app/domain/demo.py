"""The demo business ``demo-salon``: what `make run` shows on a fresh machine. Idempotent."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import bookings, passwords
from app.domain.audit import SYSTEM
from app.domain.availability import find_slots
from app.domain.availability_reader import load_query, service_offers
from app.domain.errors import SlotTaken, ValidationFailed
from app.models import Account, Business, Membership, Service, Staff, StaffService, WorkingHours

SLUG = "demo-salon"
# who signs in to the demo's dashboard (pinned in DESIGN.md: the owner's pair); development
# only — `pozapisi demo` and `pozapisi run` never load the demo when POZAPISI_ENV=production
DEMO_LOGINS = (
    ("owner", "owner@demo.pozapisi.kz", "demo-salon-owner"),
    ("admin", "admin@demo.pozapisi.kz", "demo-salon-admin"),
    ("master", "master@demo.pozapisi.kz", "demo-salon-master"),
)

MASTERS = ["Айгерім Сәрсенова", "Дина Ахметова", "Ержан Қасымов", "Мария Ким"]
# name per language, category, minutes, price in tenge, buffer after, which masters (index)
SERVICES = [
    ({"ru": "Женская стрижка", "kk": "Әйелдер шаш қиюы", "en": "Women's haircut"},
     {"ru": "Волосы", "kk": "Шаш", "en": "Hair"}, 60, 8000, 10, [0, 1]),
    ({"ru": "Мужская стрижка", "kk": "Ерлер шаш қиюы", "en": "Men's haircut"},
     {"ru": "Волосы", "kk": "Шаш", "en": "Hair"}, 45, 5000, 5, [2]),
    ({"ru": "Окрашивание", "kk": "Шаш бояу", "en": "Hair colouring"},
     {"ru": "Волосы", "kk": "Шаш", "en": "Hair"}, 120, 18000, 15, [0, 1]),
    ({"ru": "Укладка", "kk": "Шаш сәндеу", "en": "Blow-dry and styling"},
     {"ru": "Волосы", "kk": "Шаш", "en": "Hair"}, 40, 6000, 0, [0, 1, 2]),
    ({"ru": "Маникюр с покрытием", "kk": "Жабындысы бар маникюр", "en": "Manicure with gel polish"},
     {"ru": "Ногти", "kk": "Тырнақ", "en": "Nails"}, 90, 9000, 10, [3]),
    ({"ru": "Педикюр", "kk": "Педикюр", "en": "Pedicure"},
     {"ru": "Ногти", "kk": "Тырнақ", "en": "Nails"}, 75, 10000, 10, [3]),
    ({"ru": "Коррекция бровей", "kk": "Қас түзету", "en": "Brow shaping"},
     {"ru": "Брови", "kk": "Қас", "en": "Brows"}, 30, 4000, 0, [1, 3]),
    ({"ru": "Борода и усы", "kk": "Сақал мен мұрт", "en": "Beard and moustache trim"},
     {"ru": "Волосы", "kk": "Шаш", "en": "Hair"}, 30, 3500, 5, [2]),
]  # fmt: skip

# the salon's regulars and passers-by (made-up names, numbers from a range no one holds)
CLIENTS = [
    ("Гүлнар Әбілқызы", "+77015550101"), ("Алия Серікова", "+77015550102"),
    ("Нұрлан Жақсыбеков", "+77015550103"), ("Сәуле Омарова", "+77015550104"),
    ("Камила Ли", "+77015550105"), ("Дәурен Исаев", "+77015550106"),
    ("Мадина Қалиева", "+77015550107"), ("Ольга Петренко", "+77015550108"),
    ("Асель Нурланова", "+77015550109"), ("Тимур Ахметов", "+77015550110"),
    ("Жанар Бекова", "+77015550111"), ("Ирина Ким", "+77015550112"),
]  # fmt: skip
HISTORY_DAYS = 28
VISITS_PER_DAY = 4


async def load_demo(session: AsyncSession, now: datetime | None = None) -> Business:
    """Create the demo salon unless it exists (run with the owner's connection)."""
    existing = (
        await session.execute(select(Business).where(Business.slug == SLUG))
    ).scalar_one_or_none()
    if existing is not None:
        await add_demo_logins(session, existing)
        return existing
    now = now or datetime.now(UTC)
    business = Business(
        slug=SLUG,
        name="Demo Salon «Ақ Бота»",
        timezone="Asia/Almaty",
        phone="+77272501234",
        address="Алматы, пр. Абая, 10",
        reminder_offsets_min=[1440, 120],
        observe_public_holidays=False,  # like many salons, open on public holidays
        setup_done_at=now,  # set up in full: the dashboard offers no wizard for it
    )
    session.add(business)
    await session.flush()
    masters = [
        Staff(business_id=business.id, name=name, sort_order=i) for i, name in enumerate(MASTERS)
    ]
    session.add_all(masters)
    await session.flush()
    for master in masters:
        for weekday in range(6):  # Monday to Saturday, lunch 14:00–15:00
            session.add(WorkingHours(business_id=business.id, staff_id=master.id, weekday=weekday,
                                     start_time=time(10), end_time=time(14)))  # fmt: skip
            session.add(WorkingHours(business_id=business.id, staff_id=master.id, weekday=weekday,
                                     start_time=time(15), end_time=time(20)))  # fmt: skip
    services = []
    for order, (name, category, minutes, tenge, buffer_after, who) in enumerate(SERVICES):
        service = Service(business_id=business.id, name=name, category=category, duration_min=minutes,
                          price_tiyn=tenge * 100, buffer_after_min=buffer_after, sort_order=order)  # fmt: skip
        session.add(service)
        services.append((service, who))
    await session.flush()
    for service, who in services:
        for index in who:
            session.add(
                StaffService(
                    business_id=business.id, staff_id=masters[index].id, service_id=service.id
                )
            )
    await session.flush()

    # a few bookings on the next working days, so the calendar is not empty
    tz = ZoneInfo(business.timezone)
    planned = [(services[0], "Гүлнар"), (services[4], "Алия"), (services[1], "Нұрлан"),
               (services[2], "Сәуле"), (services[6], "Камила")]  # fmt: skip
    for days in range(1, 8):
        if not planned:
            break
        day = (now.astimezone(tz) + timedelta(days=days)).date()
        for (service, _who), client in planned[:3]:
            offers = await service_offers(session, business.id, service.id)
            query = await load_query(session, business, offers, list(offers.offers), day, day, now)
            slots = find_slots(query)
            if not slots:
                break
            slot = slots[(len(slots) * (len(planned) + 1)) // 7]
            try:
                await bookings.create_booking_in(
                    session,
                    business,
                    bookings.BookingRequest(service_id=service.id, staff_id=slot.staff_id,
                                            start=slot.start, source="dashboard", client_name=client),
                    account=None,
                    actor=SYSTEM,
                    now=now,
                )  # fmt: skip
            except SlotTaken:
                continue
            planned.remove(((service, _who), client))
    await _history(session, business, [service for service, _who in services], now)
    await add_demo_logins(session, business)
    return business


async def _history(
    session: AsyncSession, business: Business, services: list[Service], now: datetime
) -> None:
    """Four weeks of past visits, so the analytics, client cards and bookings list show a salon
    at work: most visits completed, some missed, a few cancelled; regulars come back. The
    last working day's visits are left unmarked, as the salon finds them the next morning.
    The same every time (a fixed seed); booked through the one domain path, as walk-ins and
    phone bookings (the demo's clients have no accounts, so nobody is sent anything)."""
    chance = random.Random(2026)  # noqa: S311 — made-up visits, not secrets
    tz = ZoneInfo(business.timezone)
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=back) for back in range(HISTORY_DAYS, 0, -1)]
    worked = [day for day in days if day.weekday() < 6]
    for day in worked:
        await _day_of_visits(session, business, services, day, chance,
                             unmarked=day == worked[-1])  # fmt: skip


async def _day_of_visits(
    session: AsyncSession,
    business: Business,
    services: list[Service],
    day: date,
    chance: random.Random,
    *,
    unmarked: bool,
) -> None:
    tz = ZoneInfo(business.timezone)
    booked_at = datetime.combine(day - timedelta(days=3), time(9), tz)
    for service in chance.sample(services, VISITS_PER_DAY):
        offers = await service_offers(session, business.id, service.id)
        query = await load_query(session, business, offers, list(offers.offers), day, day,
                                 booked_at)  # fmt: skip
        slots = find_slots(query)
        if not slots:
            continue
        slot = chance.choice(slots)
        name, phone = chance.choice(CLIENTS)
        try:
            booking, _ = await bookings.create_booking_in(
                session, business,
                bookings.BookingRequest(service_id=service.id, staff_id=slot.staff_id,
                                        start=slot.start, client_name=name, client_phone=phone,
                                        source=chance.choice(("dashboard", "walk_in"))),
                account=None, actor=SYSTEM, now=booked_at,
            )  # fmt: skip
        except (SlotTaken, ValidationFailed):
            continue
        if unmarked:
            continue
        roll = chance.random()
        assert booking.period.upper is not None
        if roll < 0.08:
            await bookings.cancel_booking_in(
                session, business, booking, by="business", actor=SYSTEM,
                reason="Клиент перенёс визит", now=booked_at + timedelta(days=1),
            )  # fmt: skip
        else:
            await bookings.mark_attendance_in(
                session, business, booking, attended=roll >= 0.16, actor=SYSTEM,
                now=booking.period.upper,
            )  # fmt: skip


async def add_demo_logins(session: AsyncSession, business: Business) -> None:
    """The demo's owner, admin and master (linked to the first master's column) with their
    known passwords and verified e-mails; idempotent: a missing account, membership or a
    changed password is put back (run with the owner's connection)."""
    first_master = (
        await session.execute(
            select(Staff.id).where(Staff.business_id == business.id).order_by(Staff.sort_order, Staff.id)
        )
    ).scalars().first()  # fmt: skip
    now = datetime.now(UTC)
    for role, email, password in DEMO_LOGINS:
        account = (
            await session.execute(select(Account).where(Account.email == email))
        ).scalar_one_or_none()
        if account is None:
            account = Account(name=f"Demo {role}", email=email, locale="ru")
            session.add(account)
        if not passwords.verify_password(password, account.password_hash):
            account.password_hash = passwords.hash_password(password)
        account.email_verified_at = account.email_verified_at or now
        account.deleted_at = None
        await session.flush()
        staff_id = first_master if role == "master" else None
        membership = (
            await session.execute(
                select(Membership).where(
                    Membership.business_id == business.id, Membership.account_id == account.id
                )
            )
        ).scalar_one_or_none()
        if membership is None:
            session.add(Membership(business_id=business.id, account_id=account.id, role=role,
                                   staff_id=staff_id))  # fmt: skip
        else:
            membership.role, membership.staff_id = role, staff_id
    await session.flush()


async def add_logins_if_demo(session: AsyncSession) -> bool:
    """The demo's logins when the demo business exists (a database loaded before they were
    added gets them on the next `pozapisi run`); whether it exists."""
    business = (
        await session.execute(select(Business).where(Business.slug == SLUG))
    ).scalar_one_or_none()
    if business is None:
        return False
    await add_demo_logins(session, business)
    return True
