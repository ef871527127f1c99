"""The daily billing job: trials that end, renewals to invoice, reminders during the grace
period, read-only mode after it (``app.domain.subscriptions.run_daily``; issue 16).

It runs as the worker role, one transaction per business with that business as its tenant;
the owner's reminders go through the outbox, so the relay sends them by e-mail and Telegram."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import structlog

from app.domain import subscriptions
from app.i18n import fmt_date, localized, money

# the owner's messages of app.domain.subscriptions (templates/notifications/<event>.txt)
BILLING_EVENTS = ("billing.grace", "billing.read_only")

log = structlog.get_logger("pozapisi.billing")


async def billing_daily(ctx: dict[str, Any]) -> dict[str, int]:
    runtime = ctx["runtime"]
    result = await subscriptions.run_daily(runtime.engine, datetime.now(UTC))
    counts = asdict(result)
    if any(counts.values()):
        log.info("billing.daily", **counts)
        if result.reminders:
            await runtime.kick()  # the owners' reminders are due now
    return counts


def billing_fields(payload: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """A billing message's words in the reader's language: the plan, the amount, the last
    day of grace, the invoice's number."""
    plan = payload.get("plan")
    grace = payload.get("grace_until")
    amount = payload.get("amount_tiyn")
    return {
        "plan": localized(dict(plan), locale) if isinstance(plan, Mapping) else str(plan or ""),
        "amount": money(int(amount), locale=locale) if isinstance(amount, int) else "",
        "grace_until": fmt_date(date.fromisoformat(str(grace)), "long", locale) if grace else "",
        "invoice_number": str(payload.get("invoice_number") or ""),
    }
