"""Audit log (hash-chained, append-only) and security events.

Rows are appended only through the SECURITY DEFINER function ``audit_append``; the app role may
read its tenant's rows and call the function, never write the table. Personal details of an
entry live in ``audit_details``, which erasure and retention can clear without breaking a chain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column


class AuditChainHead(Base):
    """The tip of each chain (0 = platform chain, else a business id)."""

    __tablename__ = "audit_chain_heads"

    chain_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("chain_key", "seq", name="uq_audit_log_chain_seq"),
        # a person's entries across every chain (the copy of their data, erasure): what they
        # did, and what was done to an entity of theirs (migration 0021)
        Index(
            "ix_audit_log_actor_account_id",
            "actor_account_id",
            postgresql_where="actor_account_id IS NOT NULL",
        ),
        Index("ix_audit_log_entity", "entity", "entity_id"),
    )

    id: Mapped[int] = id_column()
    chain_key: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    business_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("businesses.id"), index=True
    )
    at: Mapped[datetime] = created_at_column()
    actor_account_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_kind: Mapped[str] = mapped_column(String(12))  # client, staff, operator, system
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    before_digest: Mapped[bytes | None] = mapped_column(LargeBinary)
    after_digest: Mapped[bytes | None] = mapped_column(LargeBinary)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditDetails(Base):
    __tablename__ = "audit_details"

    audit_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("audit_log.id"), primary_key=True)
    business_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("businesses.id"), index=True
    )
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class SecurityEvent(Base):
    __tablename__ = "security_events"

    id: Mapped[int] = id_column()
    account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("accounts.id"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = created_at_column()
