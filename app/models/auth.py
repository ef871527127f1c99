"""Sign-in codes, sessions (revocable server-side) and rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
)
from sqlalchemy.dialects.postgresql import INET
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column


class OtpChallenge(Base):
    __tablename__ = "otp_challenges"
    __table_args__ = (
        CheckConstraint("channel IN ('sms', 'email')", name="channel"),
        Index("ix_otp_challenges_destination", "destination_hash", "created_at"),
    )

    id: Mapped[int] = id_column()
    channel: Mapped[str] = mapped_column(String(5))
    # keyed hash of the phone/e-mail: throttling without keeping the address in clear
    destination_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(20), default="sign_in", server_default="sign_in")
    account_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(INET)
    created_at: Mapped[datetime] = created_at_column()


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (CheckConstraint("kind IN ('miniapp', 'dashboard', 'ops')", name="kind"),)

    id: Mapped[str] = mapped_column(String(43), primary_key=True)  # the JWT's jti
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    # a dashboard session's chosen business; the guard re-checks the membership every request
    chosen_business_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("businesses.id"))


class AccountToken(Base):
    """A single-use link sent by e-mail (migration 0017), kept as the SHA-256 of its secret;
    issued and spent only through the ``pz_token_*`` SECURITY DEFINER functions."""

    __tablename__ = "account_tokens"
    __table_args__ = (
        CheckConstraint(
            "purpose IN ('verify_email', 'reset_password', 'change_email')", name="purpose"
        ),
    )

    id: Mapped[int] = id_column()
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    target: Mapped[str | None] = mapped_column(String(254))  # the new address of change_email
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class RateLimitCounter(Base):
    """Requests counted against one limit for one key in one window; written only by
    ``pz_rate_limit_hit`` (migration 0015, ``app.security.limits``)."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    bucket: Mapped[str] = mapped_column(String(40), primary_key=True)  # the limit's name
    # keyed digest of the person or network counted: never the address or id in clear
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
