"""Notices of a material policy change (policy 11.1): who was told, and how far the telling got."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column


class PolicyNotice(Base):
    """A notice queued to one person on one channel about one version: the primary key is the
    rule "once per person, version and channel", held by the database for every writer."""

    __tablename__ = "policy_notices"
    __table_args__ = (CheckConstraint("channel IN ('telegram', 'email', 'sms')", name="channel"),)

    policy_version: Mapped[str] = mapped_column(
        String(20), ForeignKey("policy_versions.version"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id"), primary_key=True, index=True
    )
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    created_at: Mapped[datetime] = created_at_column()


class PolicyAnnouncement(Base):
    """The fan-out of one material version: every account up to ``after_account_id`` has been
    considered (a keyset cursor); ``swept_at`` is when the first pass reached the last one."""

    __tablename__ = "policy_announcements"

    policy_version: Mapped[str] = mapped_column(
        String(20), ForeignKey("policy_versions.version"), primary_key=True
    )
    after_account_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    queued: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    started_at: Mapped[datetime] = created_at_column()
    swept_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
