"""PoZapisi's own staff in the operator console ``/ops/`` (migration 0022), and the lawful
disclosures they record (policy 5.4, 6.3).

An operator is an account with an ``operators`` row: a role, a TOTP secret sealed with a key
derived from ``SECRET_KEY`` (the runtime role cannot even read the sealed bytes: only the
SECURITY DEFINER ``pz_operator_totp_secret`` hands them out, for the account the transaction
acts for), the last time-step a code was accepted for (a code is good once), and single-use
recovery codes kept as digests.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column

OPERATOR_ROLES = ("support", "privacy", "admin")


class Operator(Base):
    __tablename__ = "operators"
    __table_args__ = (CheckConstraint("role IN ('support', 'privacy', 'admin')", name="role"),)

    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))
    totp_secret: Mapped[bytes] = mapped_column(LargeBinary)  # sealed (app.domain.operators)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_column()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OperatorRecoveryCode(Base):
    __tablename__ = "operator_recovery_codes"

    id: Mapped[int] = id_column()
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("operators.account_id"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class LawfulDisclosure(Base):
    """What was handed to an authority about a person, on what basis (policy 5.4)."""

    __tablename__ = "lawful_disclosures"
    __table_args__ = (
        CheckConstraint("NOT withheld OR length(withheld_reason) > 0", name="withheld_has_reason"),
    )

    id: Mapped[int] = id_column()
    data_request_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("data_requests.id"), unique=True
    )
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), index=True)
    authority: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(String(300))
    reference: Mapped[str] = mapped_column(String(120))
    data_given: Mapped[str] = mapped_column(Text)
    disclosed_on: Mapped[date] = mapped_column(Date)
    # the law forbids telling the person (an investigation's secrecy): left out of their copy
    withheld: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    withheld_reason: Mapped[str | None] = mapped_column(Text)
    export_sha256: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at_column()
