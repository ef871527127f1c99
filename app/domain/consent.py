"""Consent to the privacy policy (clause 3.1): append-only, tied to a policy version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.policy_versions import policy_today
from app.db.session import Database
from app.domain.accounts import Client, act_as_client
from app.domain.audit import Actor, inet_or_none, user_agent_or_none
from app.domain.errors import ConsentRequired, NotFound, ValidationFailed
from app.i18n import N_, gettext
from app.models import Consent, PolicyVersion

REQUIRED_PURPOSES = frozenset({"booking", "notifications"})


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    version: str
    purposes: list[str]
    material: bool


async def current_policy(session: AsyncSession, today: date | None = None) -> PolicyInfo:
    """The version in force on ``today``, a Kazakh day (``policy_today``), as on the landing."""
    today = today or policy_today()
    row = (
        await session.execute(
            select(PolicyVersion)
            .where(PolicyVersion.effective_at <= today)
            .order_by(PolicyVersion.effective_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(gettext(N_("No privacy policy is published yet.")))
    return PolicyInfo(version=row.version, purposes=list(row.purposes), material=row.material)


# the one definition of a valid consent is the database's (app/db/sql/functions/pz_consent_ok.sql),
# which the booking's own statement also calls
_CONSENT_OK = text("SELECT pz_consent_ok(:a, :today, :required)")


async def has_valid_consent(
    session: AsyncSession, account_id: int, today: date | None = None
) -> bool:
    """Granted, not withdrawn since, and no material policy change has taken effect since."""
    today = today or policy_today()
    required = sorted(REQUIRED_PURPOSES)
    return bool(
        await session.scalar(_CONSENT_OK, {"a": account_id, "today": today, "required": required})
    )


async def require_consent(session: AsyncSession, account_id: int) -> None:
    if not await has_valid_consent(session, account_id):
        raise ConsentRequired()


async def record_consent(
    session: AsyncSession,
    account_id: int,
    *,
    policy_version: str,
    purposes: list[str],
    action: str,
    channel: str,
    ip: str | None,
    user_agent: str | None,
) -> Consent:
    policy = await current_policy(session)
    if action == "granted":
        if policy_version != policy.version:
            raise ValidationFailed(
                fields={
                    "policy_version": gettext(
                        N_("The privacy policy has changed: please read the current version.")
                    )
                }
            )
        unknown = set(purposes) - set(policy.purposes)
        if unknown:
            raise ValidationFailed(fields={"purposes": gettext(N_("Unknown purpose."))})
        if not set(purposes) >= REQUIRED_PURPOSES:
            raise ValidationFailed(
                fields={
                    "purposes": gettext(
                        N_("Bookings cannot work without the booking and notification purposes.")
                    )
                }
            )
    ip = inet_or_none(ip)
    consent = Consent(
        account_id=account_id,
        policy_version=policy_version,
        purposes=sorted(set(purposes)),
        action=action,
        channel=channel,
    )
    session.add(consent)
    await session.flush()
    if ip or user_agent:
        await session.execute(
            text(
                "INSERT INTO consent_technical (consent_id, ip, user_agent) "
                "VALUES (:c, CAST(:ip AS inet), :ua)"
            ),
            {"c": consent.id, "ip": ip, "ua": user_agent_or_none(user_agent)},
        )
    return consent


# --- entry points: each owns its transaction ---------------------------------------------------


async def policy_in_force(db: Database) -> PolicyInfo:
    async with db.transaction() as session:
        return await current_policy(session)


@dataclass(frozen=True, slots=True)
class ConsentStatus:
    policy: PolicyInfo
    valid: bool  # the person's consent covers the policy in force


async def consent_status(db: Database, account_id: int) -> ConsentStatus:
    async with db.transaction(account_id=account_id) as session:
        return ConsentStatus(
            await current_policy(session), await has_valid_consent(session, account_id)
        )


async def grant_consent(
    db: Database,
    by: Client,
    *,
    policy_version: str,
    purposes: list[str],
    channel: str,
    actor: Actor,
) -> Consent:
    """The person consents to the policy in force for ``purposes`` (policy 3.1); their
    address and browser go to the technical table retention clears."""
    async with db.transaction() as session:
        account_id = await act_as_client(session, by)
        return await record_consent(
            session, account_id, policy_version=policy_version, purposes=purposes,
            action="granted", channel=channel, ip=actor.ip, user_agent=actor.user_agent,
        )  # fmt: skip
