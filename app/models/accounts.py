"""People who sign in: clients and business staff alike (one account, many businesses)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        Index("uq_accounts_phone", "phone", unique=True, postgresql_where="phone IS NOT NULL"),
        Index("uq_accounts_email", text("lower(email)"), unique=True),
        CheckConstraint("phone IS NULL OR phone ~ '^\\+[1-9][0-9]{6,14}$'", name="phone_e164"),
        CheckConstraint("locale IN ('ru', 'kk', 'en')", name="locale"),
    )

    id: Mapped[int] = id_column()
    name: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(16))
    phone_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email: Mapped[str | None] = mapped_column(String(254))
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    allows_write_to_pm: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    password_hash: Mapped[str | None] = mapped_column(String(80))
    locale: Mapped[str] = mapped_column(String(2), default="ru", server_default="ru")
    locale_chosen: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    avatar: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = created_at_column()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
