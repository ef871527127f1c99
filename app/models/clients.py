"""A business's card of a person. It never holds the person's e-mail or Telegram id (policy 5.1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, tenant_column


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (
        UniqueConstraint("business_id", "id", name="uq_clients_business_id"),
        Index(
            "uq_clients_business_account",
            "business_id",
            "account_id",
            unique=True,
            postgresql_where="account_id IS NOT NULL",
        ),
        # a walk-in or phone booking joins the card with its number (pz_booking_insert)
        Index(
            "ix_clients_business_phone",
            "business_id",
            "phone",
            postgresql_where="phone IS NOT NULL",
        ),
    )

    id: Mapped[int] = id_column()
    business_id: Mapped[int] = tenant_column(index=False)  # uq_clients_business_id leads with it
    account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list, server_default="{}")
    created_at: Mapped[datetime] = created_at_column()
