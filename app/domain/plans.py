"""What a business's plan allows, and the one place each limit is enforced.

The plans come from ``policy/plans.yml`` (``app.db.plans``; the landing prints the same file).
A limit refuses only what would go past it — adding a master, writing notes and tags — and
says so in the user's language with the way to a bigger plan (:class:`PlanLimitReached`, shown
with a link to ``/dashboard/billing``). What a business already has is never taken away: a
business that moves down to a smaller plan keeps all its masters, notes and tags; it cannot
add more until it fits the plan again or moves back up.

SMS is the third limit; the outbox relay applies it, through the database function
``pz_plan_allows`` (a Free business's messages go by Telegram or e-mail, never by SMS).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import DomainError
from app.i18n import N_, gettext, localized, ngettext
from app.models import Plan, Staff, Subscription

FREE = "free"


class PlanLimitReached(DomainError):
    """The plan does not include this; the page offers the plans (``offers_upgrade``)."""

    code = "plan_limit"
    status = 403
    message = N_("Your plan does not include this. Choose a bigger plan to use it.")
    offers_upgrade = True


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """A plan as the app bills and limits by it."""

    id: int
    code: str
    name: dict[str, str]
    price_month_tiyn: int
    price_year_tiyn: int
    max_masters: int | None
    features: tuple[str, ...]
    trial_days: int

    @property
    def label(self) -> str:
        return localized(self.name)

    def price(self, billing_period: str) -> int:
        return self.price_year_tiyn if billing_period == "year" else self.price_month_tiyn

    def allows(self, feature: str) -> bool:
        return feature in self.features

    @property
    def is_free(self) -> bool:
        return self.price_month_tiyn == 0


def info(plan: Plan) -> PlanInfo:
    return PlanInfo(
        id=plan.id, code=plan.code, name=dict(plan.name), price_month_tiyn=plan.price_tiyn,
        price_year_tiyn=plan.price_year_tiyn, max_masters=plan.max_staff,
        features=tuple(plan.features or ()), trial_days=plan.trial_days,
    )  # fmt: skip


async def all_plans(session: AsyncSession) -> list[PlanInfo]:
    """Every plan, in the file's order (free first)."""
    rows = await session.scalars(select(Plan).order_by(Plan.sort_order, Plan.id))
    return [info(p) for p in rows]


async def by_code(session: AsyncSession, code: str) -> PlanInfo | None:
    found = await session.scalar(select(Plan).where(Plan.code == code))
    return info(found) if found else None


async def plan_of(session: AsyncSession, business_id: int) -> PlanInfo:
    """The plan the business is on now (a trial is its plan's features); without a
    subscription, the free plan."""
    found = await session.scalar(
        select(Plan).join(Subscription, Subscription.plan_id == Plan.id)
        .where(Subscription.business_id == business_id)
    )  # fmt: skip
    if found is None:
        found = await session.scalar(select(Plan).order_by(Plan.sort_order, Plan.id).limit(1))
    if found is None:  # no plans synced (a database upgraded without the plans file)
        return PlanInfo(0, FREE, {"en": "Free"}, 0, 0, None, ("sms", "client_notes"), 0)
    return info(found)


async def active_masters(session: AsyncSession, business_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Staff)
            .where(Staff.business_id == business_id, Staff.archived_at.is_(None))
        ) or 0
    )  # fmt: skip


# --- the limits -----------------------------------------------------------------------------


async def require_room_for_master(session: AsyncSession, business_id: int) -> None:
    """Before a master is added or restored: the plan's number of active masters not reached.
    Locks the business's subscription row, so two masters added at once cannot both take
    the last place."""
    await session.execute(
        select(Subscription.id).where(Subscription.business_id == business_id).with_for_update()
    )
    plan = await plan_of(session, business_id)
    if plan.max_masters is None:
        return
    if await active_masters(session, business_id) >= plan.max_masters:
        raise PlanLimitReached(
            ngettext(
                "The %(plan)s plan includes %(count)d active master. Every master you have "
                "stays; to add another, choose a bigger plan or archive a master first.",
                "The %(plan)s plan includes up to %(count)d active masters. Every master you "
                "have stays; to add another, choose a bigger plan or archive a master first.",
                plan.max_masters,
            )
            % {"plan": plan.label, "count": plan.max_masters}
        )


async def require_client_notes(session: AsyncSession, business_id: int) -> None:
    """Before notes or tags on a client are written: a plan with client notes."""
    plan = await plan_of(session, business_id)
    if not plan.allows("client_notes"):
        raise PlanLimitReached(
            gettext(
                N_(
                    "Client notes and tags are part of the Pro and Business plans. What is "
                    "already written stays and can be read; to change it, choose one of them."
                )
            )
        )
