"""Data-subject requests (policy 8.6): when each is due, and the operators' queue of them.

One definition of the due date, :func:`due_on`, used by every path that records a request (the
person's own export, deletion and withdrawal in ``app.domain.privacy``, and a request an
operator logs from an e-mail, a call or a letter in ``app.domain.operators``): the day the
request arrived in Kazakhstan, plus ``DATA_REQUEST_DUE_DAYS`` Kazakhstan business days
(holidays, observed days and the government's transfers: ``app.domain.business_days``). The
count is a setting, default 10 (the policy's), because the Law's deadline for some requests may
be shorter than the policy's promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.domain.business_days import add_business_days
from app.settings import get_settings

KZ_ZONE = ZoneInfo("Asia/Almaty")
REMIND_BUSINESS_DAYS = 2  # the daily reminder names what falls due within this many days
KINDS = ("access", "correct", "delete", "withdraw", "complaint", "lawful_disclosure")
STATUSES = ("received", "in_progress", "done", "rejected")
OPEN_STATUSES = ("received", "in_progress")
CHANNELS = ("email", "phone", "letter", "in_person")  # how an operator may have received one


def due_days() -> int:
    """The business days a request has (``DATA_REQUEST_DUE_DAYS``; 10 unless configured)."""
    return get_settings().data_request_due_days


def received_day(received_at: datetime) -> date:
    """The day a request arrived, in Kazakhstan (a request at 23:30 in Almaty is that day's)."""
    return received_at.astimezone(KZ_ZONE).date()


def due_on(received_at: datetime | date, *, days: int | None = None) -> date:
    """The answer's deadline: ``days`` (the setting by default) Kazakhstan business days after
    the day the request arrived; that day itself is not counted."""
    day = received_at if not isinstance(received_at, datetime) else received_day(received_at)
    return add_business_days(day, due_days() if days is None else days)


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One request as the queue shows it: no personal detail (reading one needs a reason)."""

    id: int
    kind: str
    status: str
    channel: str
    account_id: int | None
    received_at: datetime
    due_on: date
    done_at: datetime | None
    handled_by: str | None
    overdue: bool
    due_soon: bool

    @classmethod
    def of(cls, row: Any, today: date, soon: date, handlers: dict[int, str]) -> QueueItem:
        open_ = row.status in OPEN_STATUSES
        return cls(
            id=row.id,
            kind=row.kind,
            status=row.status,
            channel=row.channel,
            account_id=row.account_id,
            received_at=row.received_at,
            due_on=row.due_on,
            done_at=row.done_at,
            handled_by=handlers.get(row.handled_by) if row.handled_by else None,
            overdue=open_ and row.due_on < today,
            due_soon=open_ and today <= row.due_on <= soon,
        )
