"""A business's subscription: its plan, monthly or yearly period, trial, renewal, grace and
read-only mode (issue 16; policy 4.3, 7.3). Invoices and payments are
:mod:`app.domain.invoices` and :mod:`app.domain.payments`; this module asks for an invoice and
is told when one is paid (:func:`on_invoice_paid`).

The life of a subscription
--------------------------
* A new business starts a trial of the plan ``policy/plans.yml`` names (14 days of Pro), in the
  transaction that creates it (database function ``pz_start_trial``). When the trial ends
  unpaid, the business moves to the free plan — nothing it made is lost (:mod:`app.domain.plans`
  only refuses adding past a limit).
* Changing the plan or the period (:func:`change_plan`) starts a new period today. The unused
  days of the period already paid for are credited against the new one (:func:`prorate`):
  ``credit = what the old period cost × unused days ÷ the old period's days``, rounded down to
  a tiyn. When the new period costs more than the credit, an invoice for the difference is
  issued and the change takes effect when it is paid (from the day it was ordered while the
  period it was prorated against still runs, else from the day it is paid); otherwise it takes
  effect at once and what is left of the credit stays on the subscription for the next
  invoice. An order still unpaid when the trial ends stays payable; one unpaid when a paid
  period ends is what the business owes, and the grace period runs on it.
* The daily job (:func:`run_daily`, ``workers/billing.py``) issues the renewal invoice when a
  paid period ends; unpaid, the subscription is ``past_due`` with ``grace_days`` (7) of grace
  and reminders to the owner by e-mail and Telegram; past the grace the business becomes
  read-only (``businesses.read_only_since``). Paying lifts it at once.
* Read-only (:func:`refuse_if_read_only`, applied by the dashboard's guard to every unsafe
  request): the business can still read and export everything, and its clients still see and
  cancel their bookings; changes by the business are refused with the way to pay. Nothing is
  ever deleted for an unpaid bill.

Every change here is audited on the business's chain (``billing.*`` actions).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.plans import terms
from app.db.policy_versions import policy_today
from app.db.session import Database, set_context
from app.domain import audit, outbox, plans
from app.domain.audit import Actor
from app.domain.errors import DomainError, ValidationFailed
from app.domain.members import Member
from app.domain.plans import PlanInfo
from app.i18n import N_, gettext
from app.models import Business, Invoice, Plan, Subscription
from app.models.billing import BillingProfile

PERIODS = ("month", "year")
MONTHS = {"month": 1, "year": 12}
GRACE_REMINDER_DAYS = 2  # one more reminder this many days before the grace ends

log = structlog.get_logger("pozapisi.billing")


class BusinessReadOnly(DomainError):
    """A change asked of a business in read-only mode."""

    code = "read_only"
    status = 403
    message = N_(
        "Your subscription is unpaid and its grace period has ended, so your business is "
        "read-only: you can read and export everything, and nothing has been deleted. Pay the "
        "invoice on the Billing page to make changes again."
    )
    offers_upgrade = True


def refuse_if_read_only(read_only: bool, *, paying: bool) -> None:
    """The read-only rule, defined once: a read-only business changes nothing but its billing
    (``paying``: choosing a plan, its billing details, paying an invoice)."""
    if read_only and not paying:
        raise BusinessReadOnly()


# --- periods and proration (pure) -------------------------------------------------------------


def today(now: datetime | None = None) -> date:
    """Billing days are Kazakh days (UTC+5), as the invoices' dates."""
    return policy_today(now)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later; the month's last day when it has no such day (31 Jan +
    1 month = 28 or 29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_end(start: date, billing_period: str) -> date:
    """The first day after a period that starts on ``start`` (periods are [start, end))."""
    return add_months(start, MONTHS[billing_period])


@dataclass(frozen=True, slots=True)
class Proration:
    """What a change of plan costs today: the new period's price less the credit."""

    charge_tiyn: int  # the new plan for its whole new period
    credit_tiyn: int  # unused days of the old period, plus any credit already held
    unused_days: int
    period_days: int  # of the old period
    start: date
    end: date | None  # None: the free plan has no end

    @property
    def due_tiyn(self) -> int:
        return max(0, self.charge_tiyn - self.credit_tiyn)

    @property
    def left_tiyn(self) -> int:
        """Credit the change does not use up, kept for the next invoice."""
        return max(0, self.credit_tiyn - self.charge_tiyn)


def prorate(
    *,
    old_price_tiyn: int,
    old_start: date | None,
    old_end: date | None,
    held_credit_tiyn: int,
    new_plan: PlanInfo,
    new_period: str,
    on: date,
) -> Proration:
    """The credit for the unused days of the old period (what it cost × unused ÷ its days,
    rounded down to a tiyn) against the new plan's price for a period starting ``on``."""
    if old_start is not None and old_end is not None and old_end > old_start:
        period_days = (old_end - old_start).days
        unused = min(period_days, max(0, (old_end - on).days))
    else:
        period_days, unused = 0, 0
    credit = old_price_tiyn * unused // period_days if period_days else 0
    end = None if new_plan.is_free else period_end(on, new_period)
    return Proration(
        charge_tiyn=new_plan.price(new_period),
        credit_tiyn=credit + held_credit_tiyn,
        unused_days=unused,
        period_days=period_days,
        start=on,
        end=end,
    )


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    masters: int
    max_masters: int | None


@dataclass(frozen=True, slots=True)
class BillingOverview:
    """Everything the billing page shows."""

    plan: PlanInfo
    status: str
    billing_period: str
    period_start: date | None
    period_end: date | None
    grace_until: date | None
    credit_tiyn: int
    read_only: bool
    pending_plan: PlanInfo | None
    pending_period: str | None
    open_invoice_id: int | None
    usage: Usage
    plans: list[PlanInfo]
    profile: dict[str, Any]
    invoices: list[Any] = field(default_factory=list)
    payments: list[Any] = field(default_factory=list)


def _profile_values(profile: BillingProfile | None, business: Business) -> dict[str, Any]:
    if profile is None:
        return {"legal_name": business.name, "bin_iin": "", "address": business.address or "",
                "vat_payer": False}  # fmt: skip
    return {"legal_name": profile.legal_name, "bin_iin": profile.bin_iin or "",
            "address": profile.address, "vat_payer": profile.vat_payer}  # fmt: skip


async def _documents(session: AsyncSession, business_id: int) -> tuple[list[Any], list[Any]]:
    """The business's invoices and payments, newest first (app.domain.invoices/payments; an
    installation without them shows none)."""
    try:
        from app.domain import invoices, payments
    except ImportError:  # pragma: no cover - the invoices part is not installed
        return [], []
    return (
        list(await invoices.list_for_business(session, business_id)),
        list(await payments.list_for_business(session, business_id)),
    )


async def _subscription(
    session: AsyncSession, business_id: int, *, lock: bool = False
) -> Subscription:
    """The business's subscription (every business has one from its creation:
    pz_start_trial)."""
    query = select(Subscription).where(Subscription.business_id == business_id)
    found = await session.scalar(query.with_for_update() if lock else query)
    if found is None:  # plans not synced yet: `pozapisi db upgrade` starts every trial
        raise DomainError(N_("Billing is not set up on this server yet."))
    return found


async def overview(db: Database, member: Member) -> BillingOverview:
    """The plan, its usage against the limits, the plans to choose from, the billing details,
    the invoices and payments (the owner's billing page). Writes nothing."""
    business_id = member.business_id
    async with db.transaction(business_id=business_id, account_id=member.account_id) as s:
        business = await s.get_one(Business, business_id)
        sub = await s.scalar(select(Subscription).where(Subscription.business_id == business_id))
        plan = await plans.plan_of(s, business_id)
        pending = None
        if sub is not None and sub.pending_plan_id is not None:
            pending = plans.info(await s.get_one(Plan, sub.pending_plan_id))
        profile = await s.get(BillingProfile, business_id)
        invoices, payments = await _documents(s, business_id)
        return BillingOverview(
            plan=plan,
            status=sub.status if sub else "active",
            billing_period=sub.billing_period if sub else "month",
            period_start=sub.current_period_start if sub else None,
            period_end=sub.current_period_end if sub else None,
            grace_until=sub.grace_until if sub else None,
            credit_tiyn=sub.credit_tiyn if sub else 0,
            read_only=business.read_only_since is not None,
            pending_plan=pending,
            pending_period=sub.pending_billing_period if sub else None,
            open_invoice_id=sub.open_invoice_id if sub else None,
            usage=Usage(await plans.active_masters(s, business_id), plan.max_masters),
            plans=await plans.all_plans(s),
            profile=_profile_values(profile, business),
            invoices=invoices,
            payments=payments,
        )


async def record_trial(session: AsyncSession, business_id: int, *, actor: Actor) -> None:
    """Audit the trial a business just created has started (pz_start_trial made it in the
    same transaction); the caller acts for that business."""
    sub = await session.scalar(select(Subscription).where(Subscription.business_id == business_id))
    if sub is None or sub.status != "trial":
        return
    plan = plans.info(await session.get_one(Plan, sub.plan_id))
    ends = sub.current_period_end.isoformat() if sub.current_period_end else None
    await audit.record(
        session, actor=actor, action="billing.trial_started", entity="subscription",
        entity_id=sub.id, business_id=business_id, after={"plan": plan.code, "ends_on": ends},
    )  # fmt: skip


# --- changing the plan --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What :func:`change_plan` did: applied at once, or an invoice to pay first."""

    applied: bool
    invoice_id: int | None = None
    proration: Proration | None = None


def _state(sub: Subscription, plan_code: str) -> dict[str, Any]:
    return {
        "plan": plan_code, "status": sub.status, "billing_period": sub.billing_period,
        "period_start": sub.current_period_start.isoformat() if sub.current_period_start else None,
        "period_end": sub.current_period_end.isoformat() if sub.current_period_end else None,
        "credit_tiyn": sub.credit_tiyn,
    }  # fmt: skip


def _line(plan: PlanInfo, billing_period: str, start: date, end: date) -> Any:
    from app.domain.invoices import InvoiceLine

    words = {
        "month": {"ru": "месяц", "kk": "ай", "en": "month"},
        "year": {"ru": "год", "kk": "жыл", "en": "year"},
    }[billing_period]
    span = f"{start:%d.%m.%Y}–{(end - timedelta(days=1)):%d.%m.%Y}"
    description = {
        "ru": f"Подписка PoZapisi, тариф {plan.name.get('ru', plan.code)}, 1 {words['ru']} "
        f"({span})",
        "kk": f"PoZapisi жазылымы, {plan.name.get('kk', plan.code)} тарифі, 1 {words['kk']} "
        f"({span})",
        "en": f"PoZapisi subscription, {plan.name.get('en', plan.code)} plan, 1 {words['en']} "
        f"({span})",
    }
    price = plan.price(billing_period)
    return InvoiceLine(description=description, quantity=1, unit_price_tiyn=price,
                       amount_tiyn=price)  # fmt: skip


def _credit_line(proration: Proration) -> Any:
    from app.domain.invoices import InvoiceLine

    days, of = proration.unused_days, proration.period_days
    description = {
        "ru": f"Зачёт за неиспользованные дни прежнего тарифа ({days} из {of})",
        "kk": f"Бұрынғы тарифтің пайдаланылмаған күндері үшін есепке алу ({days} / {of})",
        "en": f"Credit for the unused days of the previous plan ({days} of {of})",
    }
    if not of:
        description = {"ru": "Остаток зачёта", "kk": "Есепке алу қалдығы",
                       "en": "Credit balance"}  # fmt: skip
    return InvoiceLine(description=description, quantity=1,
                       unit_price_tiyn=-proration.credit_tiyn,
                       amount_tiyn=-proration.credit_tiyn)  # fmt: skip


async def _void_open(session: AsyncSession, sub: Subscription, actor: Actor) -> None:
    """An ordered change or a renewal still unpaid is replaced by a new change: its invoice is
    voided (it was never paid, so nothing is owed on it)."""
    if sub.open_invoice_id is None:
        return
    from app.domain import invoices

    await invoices.void_open(session, sub.open_invoice_id, actor=actor)
    sub.open_invoice_id = None
    sub.pending_plan_id = sub.pending_billing_period = sub.pending_period_start = None


def _read_period(form: Mapping[str, str]) -> tuple[str, str]:
    code = (form.get("plan") or "").strip()
    period = (form.get("period") or "month").strip()
    if period not in PERIODS:
        raise ValidationFailed(fields={"period": gettext(N_("Choose monthly or yearly."))})
    return code, period


async def change_plan(
    db: Database, member: Member, form: Mapping[str, str], *, actor: Actor,
    on: date | None = None,
) -> PlanChange:  # fmt: skip
    """Move the business to another plan or period (the owner), with proration; see the
    module's docstring. An unchanged choice changes nothing."""
    code, period = _read_period(form)
    on = on or today()
    business_id = member.business_id
    async with db.transaction(business_id=business_id, account_id=member.account_id) as s:
        new = await plans.by_code(s, code)
        if new is None:
            raise ValidationFailed(fields={"plan": gettext(N_("Choose one of the plans."))})
        if new.is_free:
            period = "month"
        sub = await _subscription(s, business_id, lock=True)
        old = plans.info(await s.get_one(Plan, sub.plan_id))
        same = old.code == new.code and (new.is_free or sub.billing_period == period)
        renewal_owed = sub.open_invoice_id is not None and sub.pending_plan_id is None
        if same and sub.status == "past_due" and renewal_owed:
            return PlanChange(applied=False, invoice_id=sub.open_invoice_id)  # pay the renewal
        if same and sub.status in ("active", "past_due") and sub.pending_plan_id is None:
            return PlanChange(applied=True)
        if (sub.pending_plan_id == new.id and sub.pending_billing_period == period
                and sub.open_invoice_id is not None):  # fmt: skip
            return PlanChange(applied=False, invoice_id=sub.open_invoice_id)
        before = _state(sub, old.code)
        await _void_open(s, sub, actor)
        proration = prorate(
            old_price_tiyn=sub.period_price_tiyn, old_start=sub.current_period_start,
            old_end=sub.current_period_end if sub.status != "past_due" else None,
            held_credit_tiyn=sub.credit_tiyn, new_plan=new, new_period=period, on=on,
        )  # fmt: skip
        if proration.due_tiyn == 0:
            await _apply(s, sub, new, period, proration.start, proration.end,
                         credit_left=proration.left_tiyn)  # fmt: skip
            await audit.record(
                s, actor=actor, action="billing.plan_changed", entity="subscription",
                entity_id=sub.id, business_id=business_id, before=before,
                after={**_state(sub, new.code), "credit_applied_tiyn": proration.credit_tiyn
                       - proration.left_tiyn},
            )  # fmt: skip
            return PlanChange(applied=True, proration=proration)
        assert proration.end is not None  # a paid plan has an end
        from app.domain import invoices

        lines = [_line(new, period, proration.start, proration.end)]
        if proration.credit_tiyn:
            lines.append(_credit_line(proration))
        invoice = await invoices.issue_for_subscription(
            s, business_id=business_id, subscription_id=sub.id, lines=lines,
            period_start=proration.start, period_end=proration.end, actor=actor,
        )  # fmt: skip
        sub.open_invoice_id = invoice.id
        sub.pending_plan_id, sub.pending_billing_period = new.id, period
        sub.pending_period_start = proration.start
        sub.updated_at = datetime.now(UTC)
        await s.flush()
        await audit.record(
            s, actor=actor, action="billing.change_ordered", entity="subscription",
            entity_id=sub.id, business_id=business_id, before=before,
            after={"plan": new.code, "billing_period": period, "invoice_id": invoice.id,
                   "charge_tiyn": proration.charge_tiyn, "credit_tiyn": proration.credit_tiyn,
                   "due_tiyn": proration.due_tiyn},
        )  # fmt: skip
        return PlanChange(applied=False, invoice_id=invoice.id, proration=proration)


async def _apply(
    session: AsyncSession, sub: Subscription, plan: PlanInfo, period: str, start: date,
    end: date | None, *, credit_left: int,
) -> None:  # fmt: skip
    """The subscription is now ``plan`` for [start, end), paid; grace and read-only end."""
    sub.plan_id, sub.billing_period = plan.id, period
    sub.current_period_start, sub.current_period_end = start, end
    sub.period_price_tiyn = plan.price(period)
    sub.credit_tiyn = credit_left
    sub.status = "active"
    sub.grace_until = sub.reminded_on = None
    sub.open_invoice_id = None
    sub.pending_plan_id = sub.pending_billing_period = sub.pending_period_start = None
    sub.updated_at = datetime.now(UTC)
    await session.flush()
    await session.execute(
        update(Business).where(Business.id == sub.business_id, Business.read_only_since.is_not(None))
        .values(read_only_since=None)
    )  # fmt: skip


async def on_invoice_paid(session: AsyncSession, invoice: Invoice) -> None:
    """Part of the payment's transaction (app.domain.payments): the ordered change takes
    effect, or the renewed period starts where the last one ended; grace and read-only end.
    An invoice this subscription no longer waits for (paid twice, voided) changes nothing."""
    sub = await session.scalar(
        select(Subscription).where(Subscription.business_id == invoice.business_id)
        .with_for_update()
    )  # fmt: skip
    if sub is None or sub.open_invoice_id != invoice.id:
        return
    old = plans.info(await session.get_one(Plan, sub.plan_id))
    before = _state(sub, old.code)
    was_read_only = await session.scalar(
        select(Business.read_only_since.is_not(None)).where(Business.id == invoice.business_id)
    )
    if sub.pending_plan_id is not None:
        plan = plans.info(await session.get_one(Plan, sub.pending_plan_id))
        period = sub.pending_billing_period or "month"
        # from the day it was ordered while the paid period it was prorated against still
        # runs; otherwise (a trial, the free plan, a period over) from the day it is paid
        paid_period_runs = (sub.status == "active" and sub.current_period_end is not None
                            and today() < sub.current_period_end)  # fmt: skip
        start = (
            sub.pending_period_start if paid_period_runs and sub.pending_period_start else today()
        )
        action = "billing.plan_changed"
    else:
        plan, period = old, sub.billing_period
        start = sub.current_period_end or today()
        action = "billing.renewed"
    await _apply(session, sub, plan, period, start, period_end(start, period), credit_left=0)
    await audit.record(
        session, actor=audit.SYSTEM, action=action, entity="subscription", entity_id=sub.id,
        business_id=sub.business_id, before=before,
        after={**_state(sub, plan.code), "invoice_id": invoice.id},
    )  # fmt: skip
    if was_read_only:
        await audit.record(
            session, actor=audit.SYSTEM, action="billing.reactivated", entity="subscription",
            entity_id=sub.id, business_id=sub.business_id, after={"invoice_id": invoice.id},
        )  # fmt: skip


async def on_invoice_refunded(session: AsyncSession, invoice: Invoice) -> None:
    """A paid invoice refunded in full: recorded; the plan stays as it is until its period
    ends (an operator decides anything more)."""
    await audit.record(
        session, actor=audit.SYSTEM, action="billing.refund_noted", entity="invoice",
        entity_id=invoice.id, business_id=invoice.business_id,
    )  # fmt: skip


# --- billing details ----------------------------------------------------------------------------

LEGAL_NAME_MAX, ADDRESS_MAX = 200, 300


def read_details(form: Mapping[str, str]) -> dict[str, Any]:
    """The billing details a form sends, checked; ``ValidationFailed`` names each wrong field."""
    from app.domain.invoices import validate_bin_iin

    errors: dict[str, str] = {}
    legal_name = " ".join((form.get("legal_name") or "").split())
    bin_iin = "".join((form.get("bin_iin") or "").split())
    address = " ".join((form.get("address") or "").split())
    if not 2 <= len(legal_name) <= LEGAL_NAME_MAX:
        errors["legal_name"] = gettext(N_("Enter the legal name, 2 to 200 characters."))
    if bin_iin and not (len(bin_iin) == 12 and bin_iin.isdigit() and validate_bin_iin(bin_iin)):
        errors["bin_iin"] = gettext(
            N_("A BIN or IIN is 12 digits with a valid check digit; please check it.")
        )
    if len(address) > ADDRESS_MAX:
        errors["address"] = gettext(N_("At most 300 characters."))
    if errors:
        raise ValidationFailed(fields=errors)
    return {"legal_name": legal_name, "bin_iin": bin_iin or None, "address": address,
            "vat_payer": form.get("vat_payer") in ("1", "on", "true")}  # fmt: skip


async def save_details(
    db: Database, member: Member, form: Mapping[str, str], *, actor: Actor
) -> bool:
    """Save the business's billing details (the owner); False when nothing changed. Issued
    invoices keep the details they were issued with."""
    wanted = read_details(form)
    business_id = member.business_id
    async with db.transaction(business_id=business_id, account_id=member.account_id) as s:
        profile = await s.get(BillingProfile, business_id, with_for_update=True)
        before = None
        if profile is None:
            profile = BillingProfile(business_id=business_id)
            s.add(profile)
        else:
            before = {k: getattr(profile, k) for k in wanted}
            if before == wanted:
                return False
        for key, value in wanted.items():
            setattr(profile, key, value)
        profile.updated_at = datetime.now(UTC)
        await s.flush()
        await audit.record(
            s, actor=actor, action="billing.details_changed", entity="billing_profile",
            entity_id=business_id, business_id=business_id, before=before, after=wanted,
        )  # fmt: skip
        return True


# --- the daily job ------------------------------------------------------------------------------


@dataclass
class DailyResult:
    trials_ended: int = 0
    renewals_invoiced: int = 0
    reminders: int = 0
    read_only: int = 0
    failed: int = 0


_DUE = text(
    "SELECT s.business_id FROM subscriptions s JOIN businesses b ON b.id = s.business_id "
    "CROSS JOIN LATERAL (SELECT CAST(:today AS date) AS day, "
    "s.grace_until - CAST(:remind AS integer) AS remind_on) t "
    "WHERE b.archived_at IS NULL AND ("
    " (s.status IN ('trial', 'active') AND s.current_period_end <= t.day)"
    " OR (s.status = 'past_due' AND (s.grace_until <= t.day AND b.read_only_since IS NULL"
    "     OR t.remind_on <= t.day AND s.reminded_on < t.remind_on)))"
    " ORDER BY s.business_id"
)
_OWNERS = text(
    "SELECT m.account_id, a.locale FROM memberships m JOIN accounts a ON a.id = m.account_id "
    "WHERE m.business_id = :b AND m.role = 'owner' AND a.deleted_at IS NULL"
)


async def _tell_owner(session: AsyncSession, business_id: int, event: str,
                      payload: dict[str, Any], now: datetime) -> int:  # fmt: skip
    """A billing message to the business's owner on each of their channels (e-mail and
    Telegram), through the outbox, once per event and day (the row's own key)."""
    messages: list[outbox.Outgoing] = []
    for account_id, locale in await session.execute(_OWNERS, {"b": business_id}):
        wanted = outbox.Outgoing(event=event, scheduled_at=now, account_id=account_id,
                                 business_id=business_id, locale=locale or "ru",
                                 payload=payload)  # fmt: skip
        messages += await outbox.on_every_channel(session, wanted)
    return await outbox.enqueue(session, messages)


async def _daily_one(
    session: AsyncSession, business_id: int, on: date, now: datetime, result: DailyResult
) -> None:
    """One business's due step, in its own transaction (worker role, tenant set)."""
    sub = await session.scalar(
        select(Subscription).where(Subscription.business_id == business_id).with_for_update()
    )
    if sub is None:
        return
    plan = plans.info(await session.get_one(Plan, sub.plan_id))
    before = _state(sub, plan.code)
    grace_days = terms().grace_days
    if (
        sub.status in ("trial", "active")
        and sub.current_period_end
        and sub.current_period_end <= on
    ):
        # a change ordered and not paid yet stays ordered: paying its invoice still applies it
        ordered = (sub.open_invoice_id, sub.pending_plan_id, sub.pending_billing_period,
                   sub.pending_period_start)  # fmt: skip
        if sub.status == "trial" or plan.is_free:
            free = (await plans.all_plans(session))[0]
            await _apply(session, sub, free, "month", on, None, credit_left=sub.credit_tiyn)
            (sub.open_invoice_id, sub.pending_plan_id, sub.pending_billing_period,
             sub.pending_period_start) = ordered  # fmt: skip
            await session.flush()
            await audit.record(
                session, actor=audit.SYSTEM, action="billing.trial_ended", entity="subscription",
                entity_id=sub.id, business_id=business_id, before=before,
                after=_state(sub, free.code),
            )  # fmt: skip
            result.trials_ended += 1
            return
        if sub.open_invoice_id is not None:  # the ordered change's invoice is what is owed now
            sub.status = "past_due"
            sub.grace_until = sub.current_period_end + timedelta(days=grace_days)
            sub.reminded_on = on
            sub.updated_at = now
            await session.flush()
            await audit.record(
                session, actor=audit.SYSTEM, action="billing.grace_started", entity="subscription",
                entity_id=sub.id, business_id=business_id, before=before,
                after={**_state(sub, plan.code), "grace_until": sub.grace_until.isoformat(),
                       "invoice_id": sub.open_invoice_id},
            )  # fmt: skip
            result.reminders += await _tell_owner(session, business_id, "billing.grace", {
                "grace_until": sub.grace_until.isoformat(), "plan": plan.name,
                "invoice_number": "",
            }, now)  # fmt: skip
            return
        start = sub.current_period_end
        end = period_end(start, sub.billing_period)
        proration = Proration(plan.price(sub.billing_period), sub.credit_tiyn, 0, 0, start, end)
        if proration.due_tiyn == 0:  # the credit pays the whole period
            await _apply(session, sub, plan, sub.billing_period, start, end,
                         credit_left=proration.left_tiyn)  # fmt: skip
            await audit.record(
                session, actor=audit.SYSTEM, action="billing.renewed", entity="subscription",
                entity_id=sub.id, business_id=business_id, before=before,
                after=_state(sub, plan.code),
            )  # fmt: skip
            return
        from app.domain import invoices

        lines = [_line(plan, sub.billing_period, start, end)]
        if proration.credit_tiyn:
            lines.append(_credit_line(proration))
        invoice = await invoices.issue_for_subscription(
            session, business_id=business_id, subscription_id=sub.id, lines=lines,
            period_start=start, period_end=end, actor=audit.SYSTEM,
        )  # fmt: skip
        sub.open_invoice_id = invoice.id
        sub.credit_tiyn = 0
        sub.status = "past_due"
        sub.grace_until = start + timedelta(days=grace_days)
        sub.reminded_on = on
        sub.updated_at = now
        await session.flush()
        await audit.record(
            session, actor=audit.SYSTEM, action="billing.grace_started", entity="subscription",
            entity_id=sub.id, business_id=business_id, before=before,
            after={**_state(sub, plan.code), "grace_until": sub.grace_until.isoformat(),
                   "invoice_id": invoice.id},
        )  # fmt: skip
        result.renewals_invoiced += 1
        result.reminders += await _tell_owner(session, business_id, "billing.grace", {
            "invoice_number": invoice.number, "amount_tiyn": invoice.amount_tiyn,
            "grace_until": sub.grace_until.isoformat(), "plan": plan.name,
        }, now)  # fmt: skip
        return
    if sub.status != "past_due" or sub.grace_until is None:
        return
    if sub.grace_until <= on:
        await session.execute(
            update(Business).where(Business.id == business_id, Business.read_only_since.is_(None))
            .values(read_only_since=now)
        )  # fmt: skip
        await audit.record(
            session, actor=audit.SYSTEM, action="billing.read_only", entity="subscription",
            entity_id=sub.id, business_id=business_id, before=before,
            after={"read_only_since": now.isoformat()},
        )  # fmt: skip
        result.read_only += 1
        result.reminders += await _tell_owner(session, business_id, "billing.read_only",
                                              {"plan": plan.name}, now)  # fmt: skip
        return
    sub.reminded_on = on
    await session.flush()
    # the invoice itself is the invoices part's (the worker does not read it): the reminder
    # names the plan and the day; the first one named the invoice and its amount
    result.reminders += await _tell_owner(session, business_id, "billing.grace", {
        "grace_until": sub.grace_until.isoformat(), "plan": plan.name, "invoice_number": "",
    }, now)  # fmt: skip


async def run_daily(engine: AsyncEngine, now: datetime | None = None) -> DailyResult:
    """The daily billing step for every business due one: trials that end, periods to renew
    (an invoice and the grace period), reminders during the grace, read-only after it. One
    transaction per business (as the worker role, the business as its tenant), so one failure
    stops only its business; running twice on a day does nothing more."""
    now = now or datetime.now(UTC)
    on = today(now)
    result = DailyResult()
    async with engine.connect() as conn:
        due = [row.business_id for row in await conn.execute(
            _DUE, {"today": on, "remind": GRACE_REMINDER_DAYS})]  # fmt: skip
        await conn.rollback()
    for business_id in due:
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                await set_context(session, business_id=business_id, account_id=None)
                await _daily_one(session, business_id, on, now, result)
        except Exception:  # one business's trouble must not hold up the others'
            log.exception("billing.daily_failed", business_id=business_id)
            result.failed += 1
    return result
