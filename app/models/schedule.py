"""When masters work: weekly hours (several intervals a day), single-date overrides, time off."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    SmallInteger,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSTZRANGE, Range
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, tenant_column


class WorkingHours(Base):
    __tablename__ = "working_hours"
    __table_args__ = (
        ForeignKeyConstraint(["business_id", "staff_id"], ["staff.business_id", "staff.id"]),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_time < end_time", name="interval"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    staff_id: Mapped[int] = mapped_column(BigInteger, index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class ScheduleOverride(Base):
    """One date that differs from the weekly hours: a day off, or other (extra) hours.

    Several rows with ``kind='hours'`` on one date are that day's intervals. ``staff_id`` NULL
    means the whole business (a transferred working day by government decree, say).
    """

    __tablename__ = "schedule_overrides"
    __table_args__ = (
        ForeignKeyConstraint(["business_id", "staff_id"], ["staff.business_id", "staff.id"]),
        CheckConstraint("kind IN ('day_off', 'hours')", name="kind"),
        CheckConstraint(
            "(kind = 'day_off' AND start_time IS NULL AND end_time IS NULL) OR "
            "(kind = 'hours' AND start_time < end_time)",
            name="interval",
        ),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    staff_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    on_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8))
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)
    note: Mapped[str | None] = mapped_column(String(200))


class TimeOff(Base):
    __tablename__ = "time_off"
    __table_args__ = (
        ForeignKeyConstraint(["business_id", "staff_id"], ["staff.business_id", "staff.id"]),
        CheckConstraint("NOT isempty(period)", name="period"),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    staff_id: Mapped[int] = mapped_column(BigInteger, index=True)
    period: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()


class Holiday(Base):
    """A date the whole business is closed (besides public holidays it observes)."""

    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("business_id", "on_date", name="uq_holidays_business_date"),)

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column()
    on_date: Mapped[date] = mapped_column(Date)
    name: Mapped[str | None] = mapped_column(String(200))
