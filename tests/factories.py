"""Test data built through the real schema (as the owner) and the real domain functions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, Business, Membership, Service, Staff, StaffService, WorkingHours
from tests.support.telegram import make_init_data

_telegram_ids = itertools.count(int(datetime.now(UTC).timestamp() * 1000) % 10**9 * 1000)


@dataclass
class BusinessFixture:
    id: int
    slug: str
    timezone: str
    staff_ids: list[int]
    service_id: int  # 60 min, 10 min buffer after, every master
    short_service_id: int  # 30 min, no buffer, first master only
    owner_account_id: int | None = None
    extra: dict[str, int] = field(default_factory=dict)


async def create_business(
    session: AsyncSession,
    *,
    masters: int = 2,
    timezone: str = "Asia/Almaty",
    auto_confirm: bool = True,
    cancel_deadline_min: int = 120,
    max_active: int = 3,
    min_notice_min: int = 0,
    with_owner: bool = True,
) -> BusinessFixture:
    """A business open every day 09:00–13:00 and 14:00–18:00 (local), with ``masters`` masters."""
    slug = f"t-{uuid4().hex[:10]}"
    business = Business(
        slug=slug, name=f"Test {slug}", timezone=timezone, auto_confirm=auto_confirm,
        cancel_deadline_min=cancel_deadline_min, max_active_bookings_per_client=max_active,
        min_notice_min=min_notice_min, horizon_days=90,
        observe_public_holidays=False,  # open every day of the year: tests pick dates freely
    )  # fmt: skip
    session.add(business)
    await session.flush()
    staff = [
        Staff(business_id=business.id, name=f"Master {i}", sort_order=i) for i in range(masters)
    ]
    session.add_all(staff)
    await session.flush()
    for member in staff:
        for weekday in range(7):
            for start, end in ((time(9), time(13)), (time(14), time(18))):
                session.add(WorkingHours(business_id=business.id, staff_id=member.id, weekday=weekday,
                                         start_time=start, end_time=end))  # fmt: skip
    service = Service(business_id=business.id, name={"ru": "Стрижка", "kk": "Шаш қию", "en": "Haircut"},
                      duration_min=60, price_tiyn=500000, buffer_after_min=10)  # fmt: skip
    short = Service(business_id=business.id, name={"ru": "Брови", "kk": "Қас", "en": "Brows"},
                    duration_min=30, price_tiyn=200000)  # fmt: skip
    session.add_all([service, short])
    await session.flush()
    for member in staff:
        session.add(
            StaffService(business_id=business.id, staff_id=member.id, service_id=service.id)
        )
    session.add(StaffService(business_id=business.id, staff_id=staff[0].id, service_id=short.id))
    owner_id = None
    if with_owner:
        owner = Account(name="Owner", telegram_id=next(_telegram_ids), allows_write_to_pm=True)
        session.add(owner)
        await session.flush()
        session.add(Membership(business_id=business.id, account_id=owner.id, role="owner"))
        owner_id = owner.id
    await session.flush()
    return BusinessFixture(
        id=business.id, slug=slug, timezone=timezone, staff_ids=[s.id for s in staff],
        service_id=service.id, short_service_id=short.id, owner_account_id=owner_id,
    )  # fmt: skip


async def new_business(session: AsyncSession, **kwargs: Any) -> BusinessFixture:
    """``create_business``, committed so the app's own connections see it."""
    business = await create_business(session, **kwargs)
    await session.commit()
    return business


def next_telegram_id() -> int:
    return next(_telegram_ids)


def tma(bot_token: str, user_id: int | None = None, **kwargs: object) -> dict[str, str]:
    """Authorization header for a Telegram user (signed like Telegram does)."""
    return {
        "Authorization": "tma "
        + make_init_data(bot_token, user_id=user_id or next_telegram_id(), **kwargs)
    }  # type: ignore[arg-type]


def local_start(business: BusinessFixture, days_ahead: int = 2, at: time = time(10)) -> datetime:
    """A start time ``days_ahead`` days from today at ``at`` in the business's zone."""
    zone = ZoneInfo(business.timezone)
    day: date = (datetime.now(zone) + timedelta(days=days_ahead)).date()
    return datetime.combine(day, at, tzinfo=zone)


async def account_id_of(session: AsyncSession, telegram_id: int) -> int:
    return int(
        (
            await session.execute(select(Account.id).where(Account.telegram_id == telegram_id))
        ).scalar_one()
    )
