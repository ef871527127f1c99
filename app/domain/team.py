"""A business's team: who works there with which role, invitations to join, and ownership.

Only the owner manages the team (the routes ask ``role("owner")``; the functions below check it
again, since the domain owns its rules). A business has exactly one owner at all times: the
owner's role changes only by handing ownership to another member, who becomes the owner as the
old one becomes an administrator, in one transaction that holds every membership row of the
business (``FOR UPDATE``) so two team changes never interleave.

An invitation is a single-use link, valid for :data:`INVITATION_TTL`, sent by e-mail or SMS
through the outbox as a message of the business. Its secret (32 random bytes, URL-safe) exists
only in that message: the table keeps its SHA-256, and the owner never sees the link (they
could otherwise follow it themselves and, for an e-mail invitation, make an account whose
address counts as verified). Accepting happens before the person acts for the business, in
``pz_invitation_accept`` (SECURITY DEFINER): it checks the digest, expiry and use under a row
lock, makes the account when there is none, and links a master's staff record both ways
(``memberships.staff_id`` and ``staff.account_id``, which ``pz_booking_recipients`` reads).

Every change is audited with the acting person as a ``staff`` actor.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain import audit, outbox, passwords
from app.domain.audit import Actor
from app.domain.bookings import sqlstate_of
from app.domain.errors import DomainError, NotFound, ValidationFailed
from app.domain.members import ROLE_LABELS, Member
from app.domain.otp import channel_of, normalize_email, normalize_phone
from app.i18n import N_, gettext
from app.models import Business, Invitation, Membership, Staff

INVITATION_TTL = timedelta(days=7)
INVITABLE_ROLES = ("admin", "master")  # the owner is made by a transfer, never invited
EVENT = "team.invitation"
NAME_MAX = 120
TOKEN_MAX = 100  # a link's secret is 43 characters; anything far longer is no link of ours

# pz_invitation_accept's refusals (app/db/sql/functions/pz_invitation_accept.sql)
UNKNOWN_SQLSTATE = "PZ101"
GONE_SQLSTATE = "PZ102"
HAS_ACCOUNT_SQLSTATE = "PZ103"
ALREADY_MEMBER_SQLSTATE = "PZ104"


class InvitationGone(DomainError):
    """The link was real but can no longer be used: accepted, revoked or expired."""

    code = "gone"
    status = 410
    message = N_(
        "This invitation can no longer be used: it has expired, was withdrawn or was already "
        "accepted. Ask the business for a new one."
    )


class TeamConflict(DomainError):
    """A team change the current state does not allow (someone else changed it meanwhile)."""

    code = "conflict"
    status = 409
    message = N_("The team has changed meanwhile. Reload the page and try again.")


# --- what the team page shows ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamMember:
    membership_id: int
    account_id: int
    name: str | None
    email: str | None
    phone: str | None
    role: str
    staff_id: int | None
    staff_name: str | None
    is_me: bool

    @property
    def role_label(self) -> str:
        return gettext(ROLE_LABELS[self.role])


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    id: int
    role: str
    email: str | None
    phone: str | None
    staff_name: str | None
    expires_at: datetime
    created_at: datetime
    expired: bool
    undelivered: str | None = None  # why its latest message could not be sent, translated

    @property
    def contact(self) -> str:
        return self.email or self.phone or ""

    @property
    def role_label(self) -> str:
        return gettext(ROLE_LABELS[self.role])


@dataclass(frozen=True, slots=True)
class MasterChoice:
    """A staff record an owner may link a member to (or name in a master's invitation)."""

    staff_id: int
    name: str
    linked_to: int | None  # the membership already linked to it


@dataclass(frozen=True, slots=True)
class Team:
    members: list[TeamMember]
    invitations: list[PendingInvitation]
    masters: list[MasterChoice]


_MEMBERS = text("SELECT account_id, name, email, phone FROM pz_team_members(:b)")


def _require_owner(member: Member) -> None:
    if member.role != "owner":
        raise NotFound()  # the routes answer 403 first; a domain caller learns nothing more


async def _masters(session: AsyncSession, business_id: int) -> list[MasterChoice]:
    staff = (
        await session.execute(
            select(Staff.id, Staff.name)
            .where(Staff.business_id == business_id, Staff.archived_at.is_(None))
            .order_by(Staff.sort_order, Staff.id)
        )
    ).all()
    links = dict(
        (
            await session.execute(
                select(Membership.staff_id, Membership.id).where(
                    Membership.business_id == business_id, Membership.staff_id.is_not(None)
                )
            )
        ).all()
    )
    return [MasterChoice(row.id, row.name, links.get(row.id)) for row in staff]


async def team_of(db: Database, member: Member) -> Team:
    """The business's members (owner first), its pending invitations and its masters."""
    _require_owner(member)
    now = datetime.now(UTC)
    async with db.transaction(
        business_id=member.business_id, account_id=member.account_id
    ) as session:
        contacts = {row.account_id: row for row in await session.execute(
            _MEMBERS, {"b": member.business_id})}  # fmt: skip
        masters = await _masters(session, member.business_id)
        staff_names = {m.staff_id: m.name for m in masters}
        memberships = (
            await session.execute(
                select(Membership)
                .where(Membership.business_id == member.business_id)
                .order_by(Membership.created_at, Membership.id)
            )
        ).scalars()
        members = []
        for m in memberships:
            contact = contacts.get(m.account_id)
            members.append(
                TeamMember(
                    membership_id=m.id, account_id=m.account_id,
                    name=contact.name if contact else None,
                    email=contact.email if contact else None,
                    phone=contact.phone if contact else None,
                    role=m.role, staff_id=m.staff_id,
                    staff_name=staff_names.get(m.staff_id) if m.staff_id else None,
                    is_me=m.account_id == member.account_id,
                )
            )  # fmt: skip
        rank = {"owner": 0, "admin": 1, "master": 2}
        members.sort(key=lambda t: rank[t.role])
        pending = (
            (
                await session.execute(
                    select(Invitation)
                    .where(
                        Invitation.business_id == member.business_id,
                        Invitation.accepted_at.is_(None),
                        Invitation.revoked_at.is_(None),
                    )
                    .order_by(Invitation.created_at.desc(), Invitation.id.desc())
                )
            )
            .scalars()
            .all()
        )
        failed = await _undelivered(session, member.business_id, [i.id for i in pending])
        invitations = []
        for i in pending:
            invitations.append(
                PendingInvitation(
                    id=i.id, role=i.role, email=i.email, phone=i.phone,
                    staff_name=staff_names.get(i.staff_id) if i.staff_id else None,
                    expires_at=i.expires_at, created_at=i.created_at,
                    expired=i.expires_at <= now, undelivered=failed.get(i.id),
                )
            )  # fmt: skip
    return Team(members=members, invitations=invitations, masters=masters)


# the latest message of each invitation, when it failed (a channel the business switched off,
# an address that does not exist): the owner sees why and can send it another way
_LATEST_MESSAGES = text(
    "SELECT DISTINCT ON (payload ->> 'invitation_id') (payload ->> 'invitation_id')::bigint "
    "AS invitation_id, status, last_error FROM notifications WHERE business_id = :b "
    "AND event = :event AND payload ->> 'invitation_id' = ANY(:ids) "
    "ORDER BY payload ->> 'invitation_id', id DESC"
)


async def _undelivered(
    session: AsyncSession, business_id: int, invitation_ids: list[int]
) -> dict[int, str]:
    if not invitation_ids:
        return {}
    rows = await session.execute(
        _LATEST_MESSAGES,
        {"b": business_id, "event": EVENT, "ids": [str(i) for i in invitation_ids]},
    )
    return {
        row.invitation_id: gettext(
            outbox.FAILURE_EXPLANATIONS.get(
                outbox.failure_reason(row.last_error), outbox.FAILURE_EXPLANATIONS["gave_up"]
            )
        )
        for row in rows
        if row.status == "failed"
    }


# --- invitations ----------------------------------------------------------------------------


def new_secret() -> tuple[str, str]:
    """A link's secret (32 random bytes, URL-safe) and the SHA-256 hex digest the table keeps."""
    token = secrets.token_urlsafe(32)
    return token, digest_of(token)


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_contact(raw: str) -> tuple[str, str]:
    """("email" | "sms", the address normalised) of what the owner typed; ValidationFailed on
    the field ``contact``."""
    value = (raw or "").strip()
    if not value:
        raise ValidationFailed(
            fields={"contact": gettext(N_("Enter an e-mail address or a mobile number."))}
        )
    channel = channel_of(value)
    if channel == "email":
        return channel, normalize_email(value, field="contact")
    return channel, normalize_phone(value, field="contact")


def _staff_choice(raw: str | int | None) -> int | None:
    if raw is None or raw == "":
        return None
    value = str(raw)
    if not value.isdigit() or len(value) > 18:
        raise ValidationFailed(fields={"staff_id": gettext(N_("Choose a master from the list."))})
    return int(value)


async def _live_staff(session: AsyncSession, business_id: int, staff_id: int) -> Staff:
    staff = (
        await session.execute(
            select(Staff).where(
                Staff.business_id == business_id, Staff.id == staff_id, Staff.archived_at.is_(None)
            )
        )
    ).scalar_one_or_none()
    if staff is None:
        raise ValidationFailed(fields={"staff_id": gettext(N_("Choose a master from the list."))})
    return staff


@dataclass(frozen=True, slots=True)
class _InvitationMessage(outbox.Outgoing):
    """An invitation's message keyed by its link: resent within the same second, or sent to
    the same address by two businesses at once, each is still queued (the default key names
    the event, address and second only)."""

    link_digest: str = ""

    @property
    def own_key(self) -> str | None:
        return f"{EVENT}:{self.link_digest}"


def _message(
    business: Business, invitation: Invitation, token: str, link_for: Callable[[str], str]
) -> outbox.Outgoing:
    return _InvitationMessage(
        event=EVENT,
        scheduled_at=datetime.now(UTC),
        address=invitation.email or invitation.phone,
        business_id=business.id,
        channel="email" if invitation.email else "sms",
        locale=business.default_locale,
        payload={"link": link_for(token), "role": invitation.role, "invitation_id": invitation.id},
        link_digest=invitation.token_hash,
    )


_WITHDRAW_MESSAGES = text(
    "UPDATE notifications SET status = 'cancelled', last_error = :why "
    "WHERE business_id = :b AND event = :event AND status = 'pending' "
    "AND payload ->> 'invitation_id' = :invitation_id"
)


async def _withdraw_messages(
    session: AsyncSession, business_id: int, invitation_id: int, why: str
) -> None:
    """Messages of an invitation not yet sent: their link no longer works."""
    await session.execute(
        _WITHDRAW_MESSAGES,
        {"b": business_id, "event": EVENT, "invitation_id": str(invitation_id), "why": why},
    )


async def invite(
    db: Database,
    member: Member,
    actor: Actor,
    *,
    contact: str,
    role: str,
    staff_id: str | int | None,
    link_for: Callable[[str], str],
) -> int:
    """Invite a person by e-mail or phone to ``role`` (a master optionally as one of the
    business's staff records); the link goes out through the outbox. Returns the id."""
    _require_owner(member)
    errors: dict[str, str] = {}
    channel = address = None
    try:
        channel, address = parse_contact(contact)
    except ValidationFailed as error:
        errors.update(error.fields)
    if role not in INVITABLE_ROLES:
        errors["role"] = gettext(N_("Choose a role: administrator or master."))
    chosen: int | None = None
    try:
        chosen = _staff_choice(staff_id)
    except ValidationFailed as error:
        errors.update(error.fields)
    if role != "master":
        chosen = None  # only a master is someone's staff record
    if errors:
        raise ValidationFailed(fields=errors)
    assert address is not None
    email = address if channel == "email" else None
    phone = address if channel == "sms" else None
    async with db.transaction(
        business_id=member.business_id, account_id=member.account_id
    ) as session:
        business = await session.get_one(Business, member.business_id)
        if chosen is not None:
            await _live_staff(session, member.business_id, chosen)
            if await _linked_membership(session, member.business_id, chosen) is not None:
                raise ValidationFailed(
                    fields={"staff_id": gettext(N_("This master is already linked to a member."))}
                )
        contacts = await session.execute(_MEMBERS, {"b": member.business_id})
        for row in contacts:
            if (email and (row.email or "").lower() == email) or (phone and row.phone == phone):
                raise ValidationFailed(
                    fields={"contact": gettext(N_("This person is already on the team."))}
                )
        pending = await session.execute(
            select(Invitation.id).where(
                Invitation.business_id == member.business_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > datetime.now(UTC),
                (Invitation.email == email) if email else (Invitation.phone == phone),
            )
        )
        if pending.first() is not None:
            raise ValidationFailed(
                fields={
                    "contact": gettext(
                        N_("This person already has an invitation waiting: resend it below.")
                    )
                }
            )
        token, digest = new_secret()
        invitation = Invitation(
            business_id=member.business_id, role=role, staff_id=chosen, email=email, phone=phone,
            token_hash=digest, invited_by=member.account_id,
            expires_at=datetime.now(UTC) + INVITATION_TTL,
        )  # fmt: skip
        session.add(invitation)
        await session.flush()
        await outbox.enqueue(session, [_message(business, invitation, token, link_for)])
        await audit.record(
            session, actor=actor, action="team.invitation.created", entity="invitation",
            entity_id=invitation.id, business_id=member.business_id,
            after={"role": role, "channel": channel, "staff_id": chosen},
        )  # fmt: skip
        return invitation.id


async def _pending_invitation(
    session: AsyncSession, business_id: int, invitation_id: int
) -> Invitation:
    invitation = (
        await session.execute(
            select(Invitation)
            .where(Invitation.business_id == business_id, Invitation.id == invitation_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if invitation is None:
        raise NotFound()
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise InvitationGone()
    return invitation


async def resend_invitation(
    db: Database,
    member: Member,
    actor: Actor,
    invitation_id: int,
    *,
    link_for: Callable[[str], str],
) -> None:
    """Send a pending invitation again with a new link, valid for another seven days; the link
    sent before stops working."""
    _require_owner(member)
    async with db.transaction(
        business_id=member.business_id, account_id=member.account_id
    ) as session:
        invitation = await _pending_invitation(session, member.business_id, invitation_id)
        business = await session.get_one(Business, member.business_id)
        await _withdraw_messages(session, member.business_id, invitation.id, "resent")
        token, invitation.token_hash = new_secret()
        invitation.expires_at = datetime.now(UTC) + INVITATION_TTL
        await session.flush()
        await outbox.enqueue(session, [_message(business, invitation, token, link_for)])
        await audit.record(
            session, actor=actor, action="team.invitation.resent", entity="invitation",
            entity_id=invitation.id, business_id=member.business_id,
        )  # fmt: skip


async def revoke_invitation(db: Database, member: Member, actor: Actor, invitation_id: int) -> None:
    """Withdraw a pending invitation: its link stops working at once."""
    _require_owner(member)
    async with db.transaction(
        business_id=member.business_id, account_id=member.account_id
    ) as session:
        invitation = await _pending_invitation(session, member.business_id, invitation_id)
        invitation.revoked_at = datetime.now(UTC)
        await _withdraw_messages(session, member.business_id, invitation.id, "revoked")
        await audit.record(
            session, actor=actor, action="team.invitation.revoked", entity="invitation",
            entity_id=invitation.id, business_id=member.business_id,
        )  # fmt: skip


# --- accepting (before the person acts for the business) ----------------------------------------


@dataclass(frozen=True, slots=True)
class InvitationPreview:
    business_id: int
    business_name: str
    role: str
    email: str | None
    phone: str | None
    staff_name: str | None

    @property
    def role_label(self) -> str:
        return gettext(ROLE_LABELS[self.role])

    @property
    def by_email(self) -> bool:
        return self.email is not None


_PREVIEW = text(
    "SELECT invitation_id, business_id, business_name, role, email, phone, staff_name, state "
    "FROM pz_invitation_preview(:digest)"
)
_ACCEPT = text(
    "SELECT account_id, business_id, invitation_id, role, staff_id, created "
    "FROM pz_invitation_accept(:digest, :account_id, :name, :password_hash, :locale)"
)


def _digest_or_none(token: str) -> str | None:
    if not token or len(token) > TOKEN_MAX:
        return None
    return digest_of(token)


async def invitation_preview(db: Database, token: str) -> InvitationPreview:
    """What the link invites to; ``NotFound`` for no such link, ``InvitationGone`` for one that
    was used, withdrawn or has expired. Writes nothing."""
    digest = _digest_or_none(token)
    if digest is None:
        raise NotFound()
    async with db.transaction() as session:
        row = (await session.execute(_PREVIEW, {"digest": digest})).first()
    if row is None:
        raise NotFound()
    if row.state != "open":
        raise InvitationGone()
    return InvitationPreview(
        business_id=row.business_id, business_name=row.business_name, role=row.role,
        email=row.email, phone=row.phone, staff_name=row.staff_name,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Joined:
    account_id: int
    business_id: int
    created: bool  # a new account was made


async def accept_invitation(
    db: Database,
    token: str,
    actor: Actor,
    *,
    account_id: int | None = None,
    name: str = "",
    password: str = "",
    locale: str = "ru",
) -> Joined:
    """Join the business the link invites to: as the signed-in person (``account_id``), or as
    a new account (``name``, and for an e-mail invitation a ``password``). Single use; nothing
    is written when refused."""
    digest = _digest_or_none(token)
    if digest is None:
        raise NotFound()
    password_hash: str | None = None
    if account_id is None:
        preview = await invitation_preview(db, token)
        errors: dict[str, str] = {}
        name = (name or "").strip()
        if not name:
            errors["name"] = gettext(N_("Enter your name."))
        elif len(name) > NAME_MAX:
            errors["name"] = gettext(N_("The name is too long: at most 120 characters."))
        if preview.by_email:
            try:
                passwords.check_new_password(password or "", email=preview.email)
            except ValidationFailed as error:
                errors.update(error.fields)
        if errors:
            raise ValidationFailed(fields=errors)
        if preview.by_email:
            password_hash = await asyncio.to_thread(passwords.hash_password, password)
    params: dict[str, Any] = {
        "digest": digest, "account_id": account_id, "name": name or None,
        "password_hash": password_hash, "locale": locale,
    }  # fmt: skip
    try:
        async with db.transaction(account_id=account_id) as session:
            row = (await session.execute(_ACCEPT, params)).one()
            await set_context(session, business_id=row.business_id, account_id=row.account_id)
            joined_as = Actor(
                kind="staff", account_id=row.account_id, ip=actor.ip,
                user_agent=actor.user_agent, request_id=actor.request_id,
            )  # fmt: skip
            await audit.record(
                session, actor=joined_as, action="team.invitation.accepted", entity="invitation",
                entity_id=row.invitation_id, business_id=row.business_id,
                after={"role": row.role, "staff_id": row.staff_id, "new_account": row.created},
            )  # fmt: skip
    except DBAPIError as error:
        raise _refusal(error) from error
    return Joined(account_id=row.account_id, business_id=row.business_id, created=row.created)


def _refusal(error: DBAPIError) -> Exception:
    state = sqlstate_of(error)
    if state == UNKNOWN_SQLSTATE:
        return NotFound()
    if state == GONE_SQLSTATE:
        return InvitationGone()
    if state == HAS_ACCOUNT_SQLSTATE:
        return ValidationFailed(
            N_("You already have an account: sign in, then accept the invitation.")
        )
    if state == ALREADY_MEMBER_SQLSTATE:
        return TeamConflict(N_("You are already a member of this business."))
    return error


# --- members: role, master link, removal, ownership -----------------------------------------


async def _locked_team(session: AsyncSession, member: Member) -> dict[int, Membership]:
    """Every membership of the business, locked for this transaction, by id; and the acting
    person still its owner (a transfer a moment ago would have made them an admin)."""
    rows = (
        await session.execute(
            select(Membership)
            .where(Membership.business_id == member.business_id)
            .order_by(Membership.id)
            .with_for_update()
        )
    ).scalars()
    team = {m.id: m for m in rows}
    if not any(m.account_id == member.account_id and m.role == "owner" for m in team.values()):
        raise TeamConflict()
    return team


def _target(team: dict[int, Membership], membership_id: int) -> Membership:
    target = team.get(membership_id)
    if target is None:
        raise NotFound()
    return target


def _snapshot(m: Membership) -> dict[str, Any]:
    return {"account_id": m.account_id, "role": m.role, "staff_id": m.staff_id}


_UNLINK_STAFF = text(
    "UPDATE staff SET account_id = NULL WHERE business_id = :b AND account_id = :a "
    "AND (CAST(:keep AS bigint) IS NULL OR id <> :keep)"
)
_LINK_STAFF = text("UPDATE staff SET account_id = :a WHERE business_id = :b AND id = :s")


async def change_role(
    db: Database, member: Member, actor: Actor, membership_id: int, role: str
) -> None:
    """Make a member an administrator or a master. The owner's own role changes only by
    handing ownership over (:func:`transfer_ownership`)."""
    _require_owner(member)
    if role not in INVITABLE_ROLES:
        raise ValidationFailed(
            fields={"role": gettext(N_("Choose a role: administrator or master."))}
        )
    async with db.transaction(
        business_id=member.business_id, account_id=member.account_id
    ) as session:
        target = _target(await _locked_team(session, member), membership_id)
        if target.role == "owner":
            raise ValidationFailed(
                N_("The owner's role changes only by handing ownership to someone else.")
            )
        if target.role == role:
            return
        before = _snapshot(target)
        target.role = role
        await session.flush()
        await audit.record(
            session, actor=actor, action="team.member.role_changed", entity="membership",
            entity_id=target.id, business_id=member.business_id, before=before,
            after=_snapshot(target),
        )  # fmt: skip


async def link_staff(
    db: Database, member: Member, actor: Actor, membership_id: int, staff_id: str | int | None
) -> None:
    """Link a member to one of the business's staff records (they then hear of its bookings and
    see its calendar), or unlink them (``staff_id`` empty)."""
    _require_owner(member)
    chosen = _staff_choice(staff_id)
    async with db.transaction(
        business_id=member.business_id, account_id=member.account_id
    ) as session:
        team = await _locked_team(session, member)
        target = _target(team, membership_id)
        if chosen is not None:
            await _live_staff(session, member.business_id, chosen)
            if any(m.staff_id == chosen and m.id != target.id for m in team.values()):
                raise ValidationFailed(
                    fields={"staff_id": gettext(N_("This master is already linked to a member."))}
                )
        if target.staff_id == chosen:
            return
        before = _snapshot(target)
        target.staff_id = chosen
        await session.flush()
        b = member.business_id
        await session.execute(_UNLINK_STAFF, {"b": b, "a": target.account_id, "keep": chosen})
        if chosen is not None:
            await session.execute(_LINK_STAFF, {"b": b, "a": target.account_id, "s": chosen})
        await audit.record(
            session, actor=actor, action="team.member.staff_linked", entity="membership",
            entity_id=target.id, business_id=b, before=before, after=_snapshot(target),
        )  # fmt: skip


async def remove_member(db: Database, member: Member, actor: Actor, membership_id: int) -> None:
    """Take a member off the team: their dashboard stops working for this business on their
    next request (the guard checks the membership every time). The owner cannot be removed:
    they hand ownership over first."""
    _require_owner(member)
    async with db.transaction(
        business_id=member.business_id, account_id=member.account_id
    ) as session:
        target = _target(await _locked_team(session, member), membership_id)
        if target.role == "owner":
            raise ValidationFailed(
                N_("The owner cannot leave the team: hand ownership to someone first.")
            )
        before = _snapshot(target)
        await session.execute(
            _UNLINK_STAFF, {"b": member.business_id, "a": target.account_id, "keep": None}
        )
        await session.delete(target)
        await session.flush()
        await audit.record(
            session, actor=actor, action="team.member.removed", entity="membership",
            entity_id=target.id, business_id=member.business_id, before=before,
        )  # fmt: skip


async def transfer_ownership(
    db: Database, member: Member, actor: Actor, membership_id: int
) -> None:
    """Hand the business to another member: they become the owner, the present owner an
    administrator, at once (there is one owner at every moment)."""
    _require_owner(member)
    async with db.transaction(
        business_id=member.business_id, account_id=member.account_id
    ) as session:
        team = await _locked_team(session, member)
        target = _target(team, membership_id)
        owner = next(m for m in team.values() if m.account_id == member.account_id)
        if target.id == owner.id:
            raise ValidationFailed(N_("You are the owner already."))
        before = {"owner": _snapshot(owner), "new_owner": _snapshot(target)}
        owner.role = "admin"
        await session.flush()  # the old owner steps down first: never two owners at once
        target.role = "owner"
        await session.flush()
        await audit.record(
            session, actor=actor, action="team.ownership.transferred", entity="membership",
            entity_id=target.id, business_id=member.business_id, before=before,
            after={"owner": _snapshot(target), "old_owner": _snapshot(owner)},
        )  # fmt: skip


async def _linked_membership(session: AsyncSession, business_id: int, staff_id: int) -> int | None:
    return (
        await session.execute(
            select(Membership.id).where(
                Membership.business_id == business_id, Membership.staff_id == staff_id
            )
        )
    ).scalar_one_or_none()
