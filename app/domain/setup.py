"""The onboarding wizard's state: which of a new business's set-up steps are done, read from the
business's own data every time, never stored as "the step the owner is on".

So the wizard resumes wherever the owner left it (on another device, after a week, after filling
some of it in on the pages themselves), and a step is done however it was done. The steps are
the dashboard's own pages (profile, services, masters, hours, days off); the wizard only shows the
way through them. Finishing records ``businesses.setup_done_at``, after which the dashboard stops
offering to continue set-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.domain import audit
from app.domain.audit import Actor
from app.domain.errors import NotFound
from app.domain.members import Member
from app.i18n import N_
from app.models import Business, Holiday, Service, Staff, WorkingHours

STEPS = ("profile", "services", "masters", "hours", "days_off", "done")
# what a business needs before a client can book; days off are optional (a business may have none)
REQUIRED = ("profile", "services", "masters", "hours")
STEP_LABELS = {
    "profile": N_("Profile"),
    "services": N_("Services"),
    "masters": N_("Masters"),
    "hours": N_("Hours"),
    "days_off": N_("Days off"),
    "done": N_("Done"),
}


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a business's set-up stands."""

    business_id: int
    slug: str
    name: str
    done: frozenset[str]  # steps whose data is there
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def ready(self) -> bool:
        """Every required step is done: clients can book."""
        return all(step in self.done for step in REQUIRED)

    @property
    def next_step(self) -> str:
        """The first required step still to do, else the last page (links and QR code)."""
        return next((step for step in REQUIRED if step not in self.done), "done")

    @property
    def remaining(self) -> tuple[str, ...]:
        return tuple(step for step in REQUIRED if step not in self.done)


async def _read(session: AsyncSession, business_id: int) -> Progress:
    """Each step's data, in one query: a step is done when what it sets up is there."""
    active_staff = (Staff.business_id == business_id) & Staff.archived_at.is_(None)
    profile_filled = (
        (func.length(func.btrim(Business.name)) > 0)
        & (func.length(func.btrim(func.coalesce(Business.address, ""))) > 0)
        & (func.length(func.coalesce(Business.phone, "")) > 0)
    )
    query = select(
        Business.id,
        Business.slug,
        Business.name,
        Business.setup_done_at,
        profile_filled.label("profile"),
        exists()
        .where(Service.business_id == business_id, Service.archived_at.is_(None))
        .label("services"),
        exists().where(active_staff).label("masters"),
        exists()
        .where(
            WorkingHours.business_id == business_id,
            exists().where(active_staff, Staff.id == WorkingHours.staff_id),
        )
        .label("hours"),
        exists().where(Holiday.business_id == business_id).label("days_off"),
    ).where(Business.id == business_id)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound()
    done = frozenset(step for step in STEPS[:-1] if getattr(row, step))
    return Progress(row.id, row.slug, row.name, done, row.setup_done_at)


async def progress(db: Database, member: Member) -> Progress:
    """What of the member's business's set-up is done (one read, nothing written)."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        return await _read(s, member.business_id)


async def finish(db: Database, member: Member, actor: Actor) -> Progress:
    """The owner has seen the last page: set-up is done (kept the first time; audited once).

    Finishing does not require every step: an owner may skip ahead and set the rest up later,
    and the dashboard's home still says what clients cannot book yet."""
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        finished_at = (
            await s.execute(
                update(Business)
                .where(Business.id == member.business_id, Business.setup_done_at.is_(None))
                .values(setup_done_at=func.now())
                .returning(Business.setup_done_at)
            )
        ).scalar_one_or_none()
        if finished_at is not None:
            await audit.record(
                s, actor=actor, action="business.setup_done", entity="business",
                entity_id=member.business_id, business_id=member.business_id,
                before={"setup_done_at": None}, after={"setup_done_at": finished_at.isoformat()},
            )  # fmt: skip
        return await _read(s, member.business_id)
