"""The person's rights of privacy-policy section 8: a copy of their data, deletion, withdrawing
consent, and the requests they send to support (answered within 10 Kazakhstan business days).

Every function runs in the caller's transaction as the runtime role, with the signed-in account
set on it (``db.transaction(account_id=…)``); they act only on that account and refuse another.
Reading across businesses uses the ``client_own``/``client_card``/``member_own`` row-level
policies; erasing across businesses uses the one SECURITY DEFINER function
``erase_account_data``, which itself refuses any account but the signed-in one.

What the copy holds (policy 8.1: "a copy of the data we hold about you"): every personal
column (as tests/integration/test_personal_data.py classifies them) of every row that names the
person, or a stated reason in ``NOT_EXPORTED`` — tests/privacy/test_export.py reads the live
schema and fails on a personal column that is neither. That is: the account (never the
password hash), consents with their IP and user agent, bookings in every business, the
business's client card of the person *including the business's notes about them* (they are
data about the person, so the Law gives access to them), the correspondence, notifications
sent to them or to one of their addresses (what, when, how: not the message bodies, which are
rendered from these and may hold codes), sessions and security events, sign-in codes asked for
a change of contact (when, from where: never the code), data requests, business roles and
master profiles (with their photo and the absences recorded for them), invitations to or from
them, and the audit log's entries about them (``pz_account_audit``: their own actions with IP
and user agent; what others changed about them, without the other person's identity or device).
Left out: other people's data (a master's replies are included as correspondence without the
author; staff of a business are named only as the booking's master; the values of an entry
where the person, as a business's staff, changed another person's data).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import audit, data_requests
from app.domain.audit import Actor
from app.domain.consent import current_policy, record_consent
from app.domain.errors import NotFound, Unauthorized, ValidationFailed
from app.domain.otp import KeyedOutgoing, enqueue_platform
from app.i18n import N_, gettext, localized
from app.models import Consent, DataRequest

KZ_ZONE = ZoneInfo("Asia/Almaty")
REQUEST_KINDS = ("access", "correct", "delete", "withdraw", "complaint", "lawful_disclosure")
EXPORT_FORMAT = "pozapisi-export/1"

# Every table that holds rows about a person, and where the copy puts them.
EXPORT_SECTIONS: dict[str, str] = {
    "accounts": "account.json (+ avatar.webp)",
    "consents": "consents.json",
    "consent_technical": "consents.json (ip, user_agent)",
    "bookings": "bookings.json, bookings.csv",
    "clients": "client_cards.json",
    "messages": "messages.json",
    "notifications": "notifications.json (to the account or to one of its addresses)",
    "sessions": "sessions.json",
    "security_events": "security_events.json",
    "data_requests": "data_requests.json",
    "lawful_disclosures": "disclosures.json (to authorities, unless the law forbids telling you)",
    "memberships": "business_roles.json",
    "staff": "business_roles.json (master profiles; their photos in master_photos/)",
    "time_off": "master_absences.json (absences recorded for your master profiles)",
    "otp_challenges": "verification_codes.json (codes for a change of contact)",
    "account_tokens": "email_links.json (links sent by e-mail: what for, when; never the link)",
    "invitations": "team_invitations.json (invitations you sent, accepted or that wait for you)",
    "audit_log": "audit.json (entries about you)",
    "audit_details": "audit.json (ip and user agent of your actions; values changed about you)",
}

# Personal columns the copy leaves out on purpose, and why. Every other personal column of a
# row about the person is in the copy (tests/privacy/test_export.py holds it to that).
NOT_EXPORTED: dict[tuple[str, str], str] = {
    ("accounts", "password_hash"): (
        "a bcrypt digest of the password: of no use to the person, and a copy of it in a file "
        "is a way to attack them (10.2); the copy says whether there is one (has_password)"
    ),
    ("otp_challenges", "destination_hash"): (
        "a keyed digest of the phone or e-mail a code went to, which cannot be read back; the "
        "copy gives the channel and the account's own contacts"
    ),
    ("notifications", "payload"): (
        "what a message says is rendered from the booking, business and correspondence the "
        "copy holds; while it waits it may carry a live sign-in code or single-use link"
    ),
    ("notifications", "idempotency_key"): (
        "a technical key made of the event, booking, channel, address and time, each in the copy"
    ),
    ("lawful_disclosures", "withheld_reason"): (
        "set only on a disclosure the law forbids telling the person (5.4), which the copy "
        "leaves out whole"
    ),
    ("rate_limit_counters", "key"): (
        "a keyed digest of an account, Telegram user or network, counted for a short window and "
        "linked to no account: it cannot be found from the person, nor read back"
    ),
}


@dataclass(frozen=True, slots=True)
class _Query:
    file: str
    sql: str


_QUERIES = (
    _Query(
        "consents.json",
        "SELECT c.id, c.policy_version, c.purposes, c.action, c.channel, c.created_at, "
        "t.ip, t.user_agent FROM consents c LEFT JOIN consent_technical t ON t.consent_id = c.id "
        "WHERE c.account_id = :a ORDER BY c.id",
    ),
    _Query(
        "bookings.json",
        "SELECT b.id, b.public_code, b.business_id, biz.name AS business, biz.timezone, "
        "b.service_name, s.name AS master, lower(b.period) AS start, upper(b.period) AS end, "
        "lower(b.blocked_period) AS blocked_start, upper(b.blocked_period) AS blocked_end, "
        "b.duration_min, b.price_tiyn, biz.currency, b.status, b.source, b.comment, "
        "b.cancelled_by, b.cancel_reason, b.rescheduled_from_id, b.created_at, b.updated_at "
        "FROM bookings b JOIN businesses biz ON biz.id = b.business_id "
        "LEFT JOIN staff s ON s.business_id = b.business_id AND s.id = b.staff_id "
        "WHERE b.account_id = :a OR b.client_id IN (SELECT id FROM clients WHERE account_id = :a) "
        "ORDER BY lower(b.period), b.id",
    ),
    _Query(
        "client_cards.json",
        "SELECT c.id, c.business_id, biz.name AS business, c.name, c.phone, c.notes, c.tags, "
        "c.created_at FROM clients c JOIN businesses biz ON biz.id = c.business_id "
        "WHERE c.account_id = :a ORDER BY c.id",
    ),
    _Query(
        "messages.json",
        "SELECT m.id, m.business_id, biz.name AS business, m.booking_id, m.sender, m.body, "
        "m.created_at, m.read_at FROM messages m "
        "JOIN clients c ON c.business_id = m.business_id AND c.id = m.client_id "
        "JOIN businesses biz ON biz.id = m.business_id "
        "WHERE c.account_id = :a ORDER BY m.created_at, m.id",
    ),
    _Query(
        "notifications.json",
        "SELECT n.id, n.business_id, biz.name AS business, n.booking_id, n.event, n.channel, "
        "n.address, n.status, n.scheduled_at, n.sent_at, n.delivered_channel, n.created_at "
        "FROM notifications n LEFT JOIN businesses biz ON biz.id = n.business_id "
        "WHERE n.account_id = :a ORDER BY n.id",
    ),
    _Query(
        "sessions.json",
        "SELECT kind, created_at, expires_at, revoked_at, last_seen_at, ip, user_agent "
        "FROM sessions WHERE account_id = :a ORDER BY created_at",
    ),
    _Query(
        "security_events.json",
        "SELECT event, ip, user_agent, created_at FROM security_events WHERE account_id = :a "
        "ORDER BY id",
    ),
    _Query(
        "data_requests.json",
        "SELECT id, kind, status, channel, requester, details, received_at, due_on, done_at, "
        "resolution FROM data_requests WHERE account_id = :a ORDER BY id",
    ),
    _Query(  # policy 5.4; a disclosure the law forbids telling is withheld by its policy
        "disclosures.json",
        "SELECT authority, legal_basis, reference, data_given, disclosed_on "
        "FROM lawful_disclosures WHERE account_id = :a AND NOT withheld ORDER BY disclosed_on, id",
    ),
    _Query(
        "business_roles.json",
        "SELECT 'membership' AS kind, m.business_id, biz.name AS business, m.role, "
        "NULL::text AS profile_name, NULL::text AS photo, m.created_at FROM memberships m "
        "JOIN businesses biz ON biz.id = m.business_id WHERE m.account_id = :a "
        "UNION ALL SELECT 'master_profile', s.business_id, biz.name, 'master', s.name, "
        "CASE WHEN s.photo IS NOT NULL THEN 'master_photos/' || s.id || '.webp' END, "
        "s.created_at FROM staff s JOIN businesses biz ON biz.id = s.business_id "
        "WHERE s.account_id = :a ORDER BY 7",
    ),
    _Query(
        "email_links.json",
        "SELECT purpose, target, created_at, expires_at, used_at FROM pz_account_links(:a)",
    ),
    _Query(
        "team_invitations.json",
        "SELECT i.business_id, biz.name AS business, i.role, i.email, i.phone, "
        "CASE WHEN i.invited_by = :a THEN 'sent' ELSE 'accepted' END AS yours, i.created_at, "
        "i.expires_at, i.accepted_at, i.revoked_at FROM invitations i "
        "JOIN businesses biz ON biz.id = i.business_id "
        "WHERE i.invited_by = :a OR i.accepted_by = :a ORDER BY i.id",
    ),
    _Query(
        "audit.json",
        "SELECT at, business_id, business, action, entity, entity_id, by_you, actor_kind, ip, "
        "user_agent, before, after, values_withheld FROM pz_account_audit(:a)",
    ),
    _Query(
        "verification_codes.json",
        "SELECT channel, purpose, created_at, expires_at, consumed_at, attempts, ip "
        "FROM otp_challenges WHERE account_id = :a ORDER BY id",
    ),
)

_ACCOUNT = text(
    "SELECT id, name, phone, phone_verified_at, email, email_verified_at, telegram_id, "
    "allows_write_to_pm, password_hash IS NOT NULL AS has_password, locale, locale_chosen, "
    "is_operator, created_at, avatar FROM accounts WHERE id = :a AND deleted_at IS NULL"
)
_CURRENT_ACCOUNT = text("SELECT app_account_id()")
_MASTER_PHOTOS = text("SELECT id, photo FROM staff WHERE account_id = :a AND photo IS NOT NULL")
# rows naming the person beyond their account's reach (app/db/sql/functions)
_MENTIONS = text("SELECT pz_account_mentions(:a)")


async def _require_self(session: AsyncSession, account_id: int) -> None:
    """The transaction must be the signed-in account's own (RLS reads are set up for it)."""
    if await session.scalar(_CURRENT_ACCOUNT) != account_id:
        raise Unauthorized()


def _plain(value: Any) -> Any:
    """A JSON-ready value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json(data: Any) -> bytes:
    return json.dumps(_plain(data), ensure_ascii=False, indent=2, sort_keys=False).encode()


def _bookings_csv(rows: list[dict[str, Any]], locale: str) -> bytes:
    """Bookings as a spreadsheet (UTF-8 with BOM, so Excel reads Cyrillic and Kazakh)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["code", "business", "service", "master", "start", "end", "status", "price", "currency",
         "source", "booked_at"]
    )  # fmt: skip
    for row in rows:
        zone = ZoneInfo(row["timezone"])
        writer.writerow(
            [
                row["public_code"],
                row["business"],
                localized(row["service_name"], locale),
                row["master"] or "",
                row["start"].astimezone(zone).isoformat() if row["start"] else "",
                row["end"].astimezone(zone).isoformat() if row["end"] else "",
                row["status"],
                str(Decimal(row["price_tiyn"]) / 100),
                row["currency"],
                row["source"],
                row["created_at"].astimezone(zone).isoformat(),
            ]
        )
    return out.getvalue().encode("utf-8-sig")


async def export_account(
    session: AsyncSession,
    account_id: int,
    *,
    now: datetime | None = None,
    channel: str = "mini_app",
    actor: Actor | None = None,
    record_request: bool = True,
) -> bytes:
    """A ZIP of everything held about the signed-in person (policy 8.1).

    Records the request as an ``access`` data request, done at once, and audits the export —
    unless ``record_request`` is off: an operator's lawful disclosure records and audits its
    own, on an entry the person's copy does not show (a disclosure the law forbids telling them
    must not surface as an export of their data).
    """
    now = now or datetime.now(UTC)
    await _require_self(session, account_id)
    account_row = (await session.execute(_ACCOUNT, {"a": account_id})).mappings().first()
    if account_row is None:
        raise NotFound()
    if record_request:
        await record_data_request(
            session, account_id, "access", channel, {"format": "zip"}, now, status="done"
        )
    account = dict(account_row)
    avatar = account.pop("avatar")
    account["has_avatar"] = avatar is not None
    locale = account["locale"]

    files: dict[str, bytes] = {"account.json": _json(account)}
    for query in _QUERIES:
        rows = [
            dict(r) for r in (await session.execute(text(query.sql), {"a": account_id})).mappings()
        ]
        files[query.file] = _json(rows)
        if query.file == "bookings.json":
            files["bookings.csv"] = _bookings_csv(rows, locale)
    mentions = await session.scalar(_MENTIONS, {"a": account_id}) or {}
    for file, key in (("notifications.json", "notifications"),
                      ("team_invitations.json", "invitations")):  # fmt: skip
        if mentions.get(key):
            files[file] = _json([*json.loads(files[file]), *mentions[key]])
    files["master_absences.json"] = _json(mentions.get("time_off", []))
    if avatar is not None:
        files["avatar.webp"] = bytes(avatar)
    for staff_id, photo in await session.execute(_MASTER_PHOTOS, {"a": account_id}):
        files[f"master_photos/{staff_id}.webp"] = bytes(photo)
    manifest = {
        "format": EXPORT_FORMAT,
        "account_id": account_id,
        "generated_at": now,
        "files": sorted(["manifest.json", *files]),
        "tables": EXPORT_SECTIONS,
    }
    buffer = io.BytesIO()
    stamp = now.astimezone(KZ_ZONE).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in {"manifest.json": _json(manifest), **files}.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    if record_request:
        await audit.record(
            session,
            actor=actor or Actor(kind="client", account_id=account_id),
            action="account.export",
            entity="account",
            entity_id=account_id,
            business_id=None,
        )
    return buffer.getvalue()


_OWNED_BUSINESSES = text(
    "SELECT biz.name FROM memberships m JOIN businesses biz ON biz.id = m.business_id "
    "WHERE m.account_id = :a AND m.role = 'owner' ORDER BY biz.name"
)
_CONTACTS = text(
    "SELECT phone, email, telegram_id, allows_write_to_pm, locale FROM accounts "
    "WHERE id = :a AND deleted_at IS NULL FOR UPDATE"
)
_ERASE = text("SELECT erase_account_data(:a, :now)")


async def erase_account(
    session: AsyncSession,
    account_id: int,
    *,
    now: datetime | None = None,
    channel: str = "mini_app",
    actor: Actor | None = None,
) -> None:
    """Delete the signed-in person's account (policy 8.3), in the caller's transaction.

    Sessions are revoked; the account keeps no name, phone, e-mail, Telegram id, avatar or
    password; the person's client cards in every business lose name, phone, notes and their
    correspondence; future bookings are cancelled (each business is told); pending messages to
    them are withdrawn. Financial documents and the audit chains stay (7.3, 10.4); technical data
    (IP, user agent) is left to retention, which removes it within 30 days (7.2).
    A confirmation goes to each address the account had: captured before erasing it, it waits in
    the outbox until delivered. A later sign-in with the same Telegram id or phone starts a new,
    empty account.
    """
    now = now or datetime.now(UTC)
    await _require_self(session, account_id)
    contacts = (await session.execute(_CONTACTS, {"a": account_id})).first()
    if contacts is None:
        raise NotFound()
    owned = (await session.execute(_OWNED_BUSINESSES, {"a": account_id})).scalars().all()
    if owned:
        raise ValidationFailed(
            gettext(
                N_("You own a business on PoZapisi (%(names)s). Hand it over to another owner "
                   "before deleting your account.")
            ) % {"names": ", ".join(owned)}
        )  # fmt: skip

    summary = await session.scalar(_ERASE, {"a": account_id, "now": now})
    await record_data_request(
        session, account_id, "delete", channel, summary or {}, now, status="done"
    )
    await audit.record(
        session,
        actor=actor or Actor(kind="client", account_id=account_id),
        action="account.erase",
        entity="account",
        entity_id=account_id,
        business_id=None,
        after=summary,
    )
    confirmations = []
    if contacts.telegram_id is not None and contacts.allows_write_to_pm:
        confirmations.append(("telegram", str(contacts.telegram_id)))
    if contacts.phone:
        confirmations.append(("sms", contacts.phone))
    if contacts.email:
        confirmations.append(("email", contacts.email))
    await enqueue_platform(
        session,
        [
            KeyedOutgoing(
                event="account.deleted",
                scheduled_at=now,
                address=address,
                channel=via,
                locale=contacts.locale,
                key=f"account.deleted:{account_id}:{via}",
            )
            for via, address in confirmations
        ],
    )


_WITHDRAWAL = text("SELECT pz_consent_withdrawal(:a, :now)")


async def withdraw_consent(
    session: AsyncSession,
    account_id: int,
    channel: str,
    ip: str | None,
    user_agent: str | None,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Consent:
    """Withdraw consent (policy 8.4), effective at once, in the caller's transaction.

    No booking until consent is given again; the person's future bookings are cancelled (each
    business keeps them, cancelled, with the reason ``consent withdrawn``, and is told); every
    message not yet sent to them is cancelled, and the outbox's gate (``pz_consent_gate``)
    cancels any queued later, except what they ask for themselves to exercise their rights
    (sign-in codes, e-mail links, the confirmation of deletion). A message a worker had already
    handed to a provider when this commits still arrives: that cannot be called back.
    Recorded as a ``withdraw`` data request (8.6), done at once, and audited.
    """
    now = now or datetime.now(UTC)
    await _require_self(session, account_id)
    policy = await current_policy(session)
    consent = await record_consent(
        session, account_id, policy_version=policy.version, purposes=[], action="withdrawn",
        channel=channel, ip=ip, user_agent=user_agent,
    )  # fmt: skip
    stopped = await session.scalar(_WITHDRAWAL, {"a": account_id, "now": now}) or {}
    await record_data_request(
        session, account_id, "withdraw", channel, {"consent_id": consent.id, **stopped}, now,
        status="done",
    )  # fmt: skip
    await audit.record(
        session,
        actor=actor or Actor(kind="client", account_id=account_id, ip=ip, user_agent=user_agent),
        action="consent.withdraw",
        entity="consent",
        entity_id=consent.id,
        business_id=None,
        after=stopped,
    )
    return consent


def reply_due(received_at: datetime) -> date:
    """The answer's deadline (8.6): the one rule, ``app.domain.data_requests.due_on``."""
    return data_requests.due_on(received_at)


async def record_data_request(
    session: AsyncSession,
    account_id: int | None,
    kind: str,
    channel: str,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
    *,
    status: str = "received",
) -> DataRequest:
    """Track a data-subject request, due as :func:`reply_due` says."""
    now = now or datetime.now(UTC)
    if kind not in REQUEST_KINDS:
        raise ValidationFailed(fields={"kind": gettext(N_("Unknown kind of request."))})
    request = DataRequest(
        account_id=account_id,
        kind=kind,
        status=status,
        channel=channel[:20],
        details=_plain(details or {}),
        received_at=now,
        due_on=reply_due(now),
        done_at=now if status == "done" else None,
    )
    session.add(request)
    await session.flush()
    return request
