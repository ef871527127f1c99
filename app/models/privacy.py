"""Consent, policy versions and data-subject requests (privacy policy sections 3, 8, 11)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    __table_args__ = (
        CheckConstraint(
            "NOT material OR effective_at >= published_at + 30", name="material_notice_30_days"
        ),
    )

    id: Mapped[int] = id_column()
    version: Mapped[str] = mapped_column(String(20), unique=True)
    digests: Mapped[dict[str, str]] = mapped_column(JSONB)  # {"en": sha256, "ru": …, "kk": …}
    purposes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    published_at: Mapped[date] = mapped_column(Date)
    effective_at: Mapped[date] = mapped_column(Date)
    material: Mapped[bool] = mapped_column(Boolean, default=False)
    # what changed, per language, as policy/versions.yml says it: the notice quotes it (0023)
    summary: Mapped[dict[str, str]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


class Consent(Base):
    """Append-only: a grant or a withdrawal, never edited."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint("action IN ('granted', 'withdrawn')", name="action"),
        # a person's latest consent in one index step (ORDER BY id DESC LIMIT 1)
        Index("ix_consents_account_latest", "account_id", "id"),
    )

    id: Mapped[int] = id_column()
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    policy_version: Mapped[str] = mapped_column(String(20), ForeignKey("policy_versions.version"))
    purposes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    action: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(20))  # mini_app, web, api, dashboard
    created_at: Mapped[datetime] = created_at_column()


class ConsentTechnical(Base):
    """IP and user agent of a consent event: technical data that retention clears (7.2)."""

    __tablename__ = "consent_technical"

    consent_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("consents.id"), primary_key=True)
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))


class DataRequest(Base):
    __tablename__ = "data_requests"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('access', 'correct', 'delete', 'withdraw', 'complaint', 'lawful_disclosure')",
            name="kind",
        ),
        CheckConstraint("status IN ('received', 'in_progress', 'done', 'rejected')", name="status"),
        Index("ix_data_requests_due_on", "due_on"),  # the operators' queue, by due date
    )

    id: Mapped[int] = id_column()
    account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="received", server_default="received")
    channel: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, object]] = mapped_column(JSONB, default=dict, server_default="{}")
    received_at: Mapped[datetime] = created_at_column()
    due_on: Mapped[date] = mapped_column(Date)  # 10 Kazakhstan business days (policy 8.6)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)  # the answer sent
    # who wrote, as they gave it, when no account is theirs (a letter, a call: migration 0022)
    requester: Mapped[str | None] = mapped_column(String(254))
    handled_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("accounts.id"))
