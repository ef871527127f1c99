"""Append to the hash-chained audit log (through the database's ``audit_append`` function).

``ACTIONS`` is the one list of what the log may say was done, each with the label people read
(the owner's audit view, a booking's history): :func:`record` refuses an action that is not in
it, and a test holds the database functions' own actions to it too."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.i18n import N_, gettext

_APPEND = text(
    "SELECT audit_append(:business_id, :actor, :actor_kind, :action, :entity, :entity_id, "
    "CAST(:before AS jsonb), CAST(:after AS jsonb), :request_id, CAST(:ip AS inet), :user_agent)"
)


# every action the application writes to the audit log, and what it means to a person reading
# the log; a new action needs its line here (and its ru/kk translation) before it can be written
ACTIONS: dict[str, str] = {
    # bookings (booking.create and a client's erasure's booking.cancelled: database functions)
    "booking.create": N_("Booking made"),
    "booking.confirmed": N_("Booking confirmed"),
    "booking.cancelled": N_("Booking cancelled"),
    "booking.completed": N_("Visit marked as completed"),
    "booking.no_show": N_("Visit marked as missed"),
    "booking.reschedule": N_("Booking moved to another time"),
    "bookings.export": N_("Bookings exported to CSV"),
    "calendar_feed.create": N_("Calendar feed created"),
    "calendar_feed.revoke": N_("Calendar feed revoked"),
    # clients
    "client.note": N_("Note added from a booking"),
    "client.notes": N_("Client's notes and tags changed"),
    "client.erase": N_("Client's data erased at their request"),
    # services and masters
    "service.create": N_("Service added"),
    "service.update": N_("Service changed"),
    "service.move": N_("Service moved in the list"),
    "service.archive": N_("Service archived"),
    "service.restore": N_("Service restored"),
    "staff.create": N_("Master added"),
    "staff.update": N_("Master's details changed"),
    "staff.photo_remove": N_("Master's photo removed"),
    "staff.move": N_("Master moved in the list"),
    "staff.archive": N_("Master archived"),
    "staff.restore": N_("Master restored"),
    # schedules
    "schedule.week_set": N_("Weekly hours changed"),
    "schedule.date_set": N_("Hours for a date set"),
    "schedule.date_removed": N_("Hours for a date removed"),
    "schedule.time_off_added": N_("Time off added"),
    "schedule.time_off_removed": N_("Time off removed"),
    "schedule.closed_day_added": N_("Closed day added"),
    "schedule.closed_day_removed": N_("Closed day removed"),
    # the business
    "business.create": N_("Business created"),
    "business.setup_done": N_("Set-up finished"),
    "business.settings": N_("Booking settings changed"),
    "business.profile": N_("Business profile changed"),
    "business.public_holidays_set": N_("Public holidays setting changed"),
    # invoices and payments (app.domain.invoices, app.domain.payments; policy 4.3, 7.3)
    "invoice.issued": N_("Invoice issued"),
    "invoice.credit_note": N_("Credit note issued"),
    "payment.started": N_("Payment started"),
    "payment.completed": N_("Payment received"),
    "payment.declined": N_("Payment declined"),
    "payment.refunded": N_("Payment refunded"),
    "payment.flagged": N_("Payment held for review"),
    # the team
    "team.invitation.created": N_("Invitation sent"),
    "team.invitation.resent": N_("Invitation sent again"),
    "team.invitation.revoked": N_("Invitation revoked"),
    "team.invitation.accepted": N_("Invitation accepted"),
    "team.member.role_changed": N_("Team member's role changed"),
    "team.member.staff_linked": N_("Team member linked to a master"),
    "team.member.removed": N_("Team member removed"),
    "team.ownership.transferred": N_("Ownership transferred"),
    # a person's own account
    "account.contact_change": N_("Contact details changed"),
    "account.avatar_set": N_("Profile photo set"),
    "account.avatar_remove": N_("Profile photo removed"),
    "account.export": N_("Personal data exported"),
    "account.erase": N_("Account erased"),
    "consent.withdraw": N_("Consent withdrawn"),
    # billing: the business's plan and subscription (app.domain.subscriptions)
    "billing.trial_started": N_("Trial started"),
    "billing.trial_ended": N_("Trial ended: moved to the free plan"),
    "billing.change_ordered": N_("Plan change ordered, waiting for payment"),
    "billing.plan_changed": N_("Plan changed"),
    "billing.renewed": N_("Subscription renewed"),
    "billing.grace_started": N_("Renewal unpaid: grace period started"),
    "billing.read_only": N_("Grace period over: business is read-only"),
    "billing.reactivated": N_("Paid: read-only mode lifted"),
    "billing.details_changed": N_("Billing details changed"),
    "billing.refund_noted": N_("Paid invoice refunded"),
    # the operator console (policy 5.4, 6.3, 8.6): on the platform chain, each read with its reason
    "ops.operator_enrolled": N_("Operator enrolled"),
    "ops.operator_disabled": N_("Operator's access taken away"),
    "ops.sign_in": N_("Operator signed in"),
    "ops.person_read": N_("Operator read a person's data"),
    "ops.request_read": N_("Operator read a data request"),
    "ops.request_logged": N_("Data request logged by an operator"),
    "ops.request_answered": N_("Data request answered"),
    "ops.lawful_disclosure": N_("Data disclosed to an authority"),
}


def action_label(action: str) -> str:
    """What an action means, in the active language; an action no longer written (an old entry)
    shows as its code."""
    label = ACTIONS.get(action)
    return gettext(label) if label else action


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
    if action not in ACTIONS:  # a programming error: the log must say what people can read
        raise ValueError(f"audit action {action!r} has no label in app.domain.audit.ACTIONS")
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
