"""Append to the hash-chained audit log (through the database's ``audit_append`` function)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_APPEND = text(
    "SELECT audit_append(:business_id, :actor, :actor_kind, :action, :entity, :entity_id, "
    "CAST(:before AS jsonb), CAST(:after AS jsonb), :request_id, CAST(:ip AS inet), :user_agent)"
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, and from where (the where is technical data retention may clear)."""

    kind: str  # client, staff, operator, system
    account_id: int | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


SYSTEM = Actor(kind="system")


def inet_or_none(value: str | None) -> str | None:
    """An address PostgreSQL's ``inet`` accepts, else None: a client "host" may be a socket
    path or a test client's name, and technical data must never fail the change it records."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


USER_AGENT_MAX = 400  # the width of every user_agent column


def user_agent_or_none(value: str | None) -> str | None:
    """A user agent as the tables keep it: cut to their width, None when there is none."""
    return value[:USER_AGENT_MAX] if value else None


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int | None,
    business_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> int:
    """Append one entry to the business's chain (or the platform chain) in this transaction."""
    result = await session.execute(
        _APPEND,
        {
            "business_id": business_id,
            "actor": actor.account_id,
            "actor_kind": actor.kind,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "before": _json(before),
            "after": _json(after),
            "request_id": actor.request_id,
            "ip": inet_or_none(actor.ip),
            "user_agent": actor.user_agent,
        },
    )
    return int(result.scalar_one())
