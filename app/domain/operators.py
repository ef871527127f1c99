"""PoZapisi's staff at work in the operator console ``/ops/`` (policy 5.4, 6.3, 8.6).

Who: an account with an ``operators`` row (migration 0022), of one role — ``support`` (the
queue of data-subject requests, logging one that came by e-mail, call or letter, answering it,
reading a person's data with a reason), ``privacy`` (also closing requests and recording lawful
disclosures) or ``admin`` (everything; operators are added with ``pozapisi ops add-operator``).

Sign-in is two steps: the account's password (:func:`check_password`, which returns a short-lived
signed ticket naming the account, never a session), then a second factor
(:func:`check_second_factor`): a TOTP code from the operator's authenticator app, good once (the
time-step it matched is spent in ``pz_operator_totp_use``, so the same code, or an older one
still inside the drift window, is refused), or one of their single-use recovery codes. The
TOTP secret is sealed with AES-GCM under a key derived from ``SECRET_KEY`` and reaches this
module only through ``pz_operator_totp_secret``; nothing here ever shows it again after the
provisioning URI the command prints once.

Every read of a person's data states a reason first: :func:`read_person` and
:func:`read_request` refuse an empty one before they touch anything, and write an audit entry
(who, whom, what, why) in the same transaction as the read, on the platform chain. What they
return never holds a password hash, a code, a token or a secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain import audit, data_requests, passwords, privacy
from app.domain.audit import Actor
from app.domain.business_days import add_business_days
from app.domain.errors import DomainError, NotFound, ValidationFailed
from app.domain.otp import KeyedOutgoing, enqueue_platform, normalize_phone
from app.i18n import N_, gettext
from app.models.operators import OPERATOR_ROLES

ROLE_RANK = {role: rank for rank, role in enumerate(OPERATOR_ROLES)}  # support < privacy < admin
ISSUER = "PoZapisi ops"
TICKET_TTL_S = 300  # from the password to the second factor
TOTP_DRIFT_STEPS = 1  # a code of the previous or next 30 s is accepted (RFC 6238 5.2)
RECOVERY_CODES = 10
REASON_MIN = 10  # "checking" is no reason; "answering request #12 (access)" is
_SEAL_INFO = b"pozapisi:ops-totp-secret"


class SecondFactorRequired(DomainError):
    """The password alone does not sign an operator in, nor a wrong, reused or expired code."""

    code = "unauthorized"
    status = 401
    message = N_("The code is not valid. Enter the current code from your app, or a recovery code.")


class SignInFailed(DomainError):
    code = "unauthorized"
    status = 401
    message = N_("Wrong e-mail or password.")


class OperatorRoleRequired(DomainError):
    code = "forbidden"
    status = 403
    message = N_("Your operator role does not allow this.")


@dataclass(frozen=True, slots=True)
class Operator:
    """The signed-in operator, as the console's guard found them."""

    account_id: int
    email: str
    role: str

    def at_least(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What ``pozapisi ops add-operator`` prints once, and never again."""

    account_id: int
    provisioning_uri: str
    recovery_codes: tuple[str, ...]
    password: str | None  # a new account's first password; None when it had one


# --- sealing the TOTP secret --------------------------------------------------------------------


def _seal_key(secret_key: str) -> bytes:
    return hashlib.sha256(_SEAL_INFO + b"\0" + secret_key.encode()).digest()


def seal(secret_key: str, totp_secret: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(_seal_key(secret_key)).encrypt(nonce, totp_secret.encode(), _SEAL_INFO)


def unseal(secret_key: str, sealed: bytes) -> str:
    nonce, body = sealed[:12], sealed[12:]
    return AESGCM(_seal_key(secret_key)).decrypt(nonce, body, _SEAL_INFO).decode()


def _opened(secret_key: str, sealed: bytes) -> str:
    """The secret, or an empty one that matches no code when it was sealed under another
    ``SECRET_KEY`` (the key changed: the operator must be enrolled again)."""
    try:
        return unseal(secret_key, bytes(sealed))
    except InvalidTag:
        return ""


def recovery_digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def _recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 16 characters
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:12]}-{raw[12:16]}"


# --- enrolment (the command line, as the database owner) ----------------------------------------

_ACCOUNT_BY_EMAIL = text(
    "SELECT id, password_hash IS NOT NULL AS has_password FROM accounts "
    "WHERE lower(email) = :email AND deleted_at IS NULL"
)
_NEW_ACCOUNT = text(
    "INSERT INTO accounts (email, locale, password_hash) VALUES (:email, 'en', :hash) RETURNING id"
)
_SET_PASSWORD = text("UPDATE accounts SET password_hash = :hash WHERE id = :a")
_MARK_OPERATOR = text("UPDATE accounts SET is_operator = true WHERE id = :a")
_ENROL = text(
    "INSERT INTO operators (account_id, role, totp_secret, created_at) "
    "VALUES (:a, :role, :secret, :now) ON CONFLICT (account_id) DO UPDATE "
    "SET role = EXCLUDED.role, totp_secret = EXCLUDED.totp_secret, totp_last_step = NULL, "
    "disabled_at = NULL"
)
_FORGET_CODES = text(
    "DELETE FROM operator_recovery_codes WHERE account_id = :a AND used_at IS NULL"
)
_ADD_CODES = text(
    "INSERT INTO operator_recovery_codes (account_id, code_hash) "
    "SELECT :a, unnest(CAST(:hashes AS text[]))"
)


async def enrol(
    session: AsyncSession, secret_key: str, *, email: str, role: str, now: datetime | None = None
) -> Enrolment:
    """Make the account of ``email`` an operator of ``role`` (a new account when none holds the
    address), with a new TOTP secret and recovery codes; run as the database owner (the command
    line). Enrolling an operator again replaces their secret and unused codes."""
    now = now or datetime.now(UTC)
    address = email.strip().lower()
    if role not in OPERATOR_ROLES:
        raise ValidationFailed(fields={"role": f"one of {', '.join(OPERATOR_ROLES)}"})
    if "@" not in address or len(address) > 254:
        raise ValidationFailed(fields={"email": "an e-mail address"})
    row = (await session.execute(_ACCOUNT_BY_EMAIL, {"email": address})).first()
    password = None
    if row is None or not row.has_password:
        password = secrets.token_urlsafe(15)
        digest = passwords.hash_password(password)
    if row is None:
        account_id = int(await session.scalar(_NEW_ACCOUNT, {"email": address, "hash": digest}))
    else:
        account_id = int(row.id)
        if password is not None:
            await session.execute(_SET_PASSWORD, {"a": account_id, "hash": digest})
    totp_secret = pyotp.random_base32()
    await session.execute(
        _ENROL, {"a": account_id, "role": role, "secret": seal(secret_key, totp_secret), "now": now}
    )
    await session.execute(_MARK_OPERATOR, {"a": account_id})
    await session.execute(_FORGET_CODES, {"a": account_id})
    codes = tuple(_recovery_code() for _ in range(RECOVERY_CODES))
    await session.execute(
        _ADD_CODES, {"a": account_id, "hashes": [recovery_digest(c) for c in codes]}
    )
    await audit.record(
        session, actor=audit.SYSTEM, action="ops.operator_enrolled", entity="operator",
        entity_id=account_id, business_id=None, after={"role": role},
    )  # fmt: skip
    uri = pyotp.TOTP(totp_secret).provisioning_uri(name=address, issuer_name=ISSUER)
    return Enrolment(account_id, uri, codes, password)


_DISABLE = text(
    "UPDATE operators o SET disabled_at = :now FROM accounts a WHERE a.id = o.account_id "
    "AND lower(a.email) = :email AND o.disabled_at IS NULL RETURNING o.account_id"
)
_UNMARK_OPERATOR = text("UPDATE accounts SET is_operator = false WHERE id = :a")
_END_OPS_SESSIONS = text(
    "UPDATE sessions SET revoked_at = :now WHERE account_id = :a AND kind = 'ops' "
    "AND revoked_at IS NULL"
)


async def disable(session: AsyncSession, *, email: str, now: datetime | None = None) -> int | None:
    """Take an operator's access away (someone who leaves, a lost phone): their ops sessions end
    at once and neither their password nor their codes sign them in again until they are
    enrolled anew. Run as the database owner (the command line); the operator's account id, or
    None when no active operator has the address."""
    now = now or datetime.now(UTC)
    account_id = await session.scalar(_DISABLE, {"email": email.strip().lower(), "now": now})
    if account_id is None:
        return None
    await session.execute(_UNMARK_OPERATOR, {"a": account_id})
    await session.execute(_END_OPS_SESSIONS, {"a": account_id, "now": now})
    await audit.record(
        session, actor=audit.SYSTEM, action="ops.operator_disabled", entity="operator",
        entity_id=account_id, business_id=None,
    )  # fmt: skip
    return int(account_id)


# --- sign-in ----------------------------------------------------------------------------------

_PASSWORD_FOR = text("SELECT account_id, password_hash FROM pz_password_for_email(:email)")
_ROLE = text(
    "SELECT o.role, a.email FROM operators o JOIN accounts a ON a.id = o.account_id "
    "WHERE o.account_id = app_account_id() AND o.disabled_at IS NULL AND a.deleted_at IS NULL"
)
_EVENT = text("SELECT pz_security_event(:event, :account, CAST(:ip AS inet), :ua)")
_TOTP_SECRET = text("SELECT pz_operator_totp_secret(:a)")
_TOTP_USE = text("SELECT pz_operator_totp_use(:a, :step)")
_RECOVERY_SPEND = text("SELECT pz_operator_recovery_spend(:a, :hash)")


async def _event(session: AsyncSession, event: str, account_id: int | None, actor: Actor) -> None:
    """A security event (policy 2.6): the console's sign-ins and failed attempts, with where
    they came from."""
    await session.execute(
        _EVENT,
        {"event": event, "account": account_id, "ip": audit.inet_or_none(actor.ip),
         "ua": audit.user_agent_or_none(actor.user_agent)},
    )  # fmt: skip


def _ticket_mac(secret_key: str, body: str) -> str:
    key = hashlib.sha256(b"pozapisi:ops-ticket:" + secret_key.encode()).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def ticket_for(secret_key: str, account_id: int, *, now: float | None = None) -> str:
    """The proof that the password was right, for the second step only, for five minutes."""
    body = f"{account_id}.{int((now or time.time()) + TICKET_TTL_S)}"
    return f"{body}.{_ticket_mac(secret_key, body)}"


def ticket_account(secret_key: str, ticket: str, *, now: float | None = None) -> int | None:
    parts = ticket.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isalnum() for p in parts):
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], _ticket_mac(secret_key, body)):
        return None
    if not parts[0].isdigit() or not parts[1].isdigit() or int(parts[1]) < (now or time.time()):
        return None
    return int(parts[0])


async def operator_of(session: AsyncSession) -> Operator | None:
    """The operator the transaction acts for (a live account with a live operators row)."""
    row = (await session.execute(_ROLE)).first()
    account_id = await session.scalar(text("SELECT app_account_id()"))
    return Operator(int(account_id), row.email or "", row.role) if row else None


async def check_password(
    db: Database, secret_key: str, *, email: str, password: str, actor: Actor
) -> str:
    """Step one: the ticket for the second factor, or ``SignInFailed`` — the same for an
    unknown e-mail, a wrong password and an account that is no operator."""
    address = email.strip().lower()
    async with db.transaction() as session:
        row = (await session.execute(_PASSWORD_FOR, {"email": address})).first()
    stored = row.password_hash if row is not None else None
    right = await asyncio.to_thread(passwords.verify_password, password, stored)  # bcrypt
    account_id = int(row.account_id) if row is not None else None
    operator = None
    if right and account_id is not None:
        async with db.transaction(account_id=account_id) as session:
            operator = await operator_of(session)
    if operator is None:
        async with db.transaction() as session:
            await _event(session, "ops.sign_in_failed", account_id, actor)
        raise SignInFailed()
    return ticket_for(secret_key, operator.account_id)


def _totp_step(totp_secret: str, code: str, now: datetime) -> int | None:
    """The time-step ``code`` is the TOTP of, within the drift window; None when none."""
    if not totp_secret:
        return None
    totp = pyotp.TOTP(totp_secret)
    step_now = totp.timecode(now)
    for step in range(step_now - TOTP_DRIFT_STEPS, step_now + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def check_second_factor(
    db: Database, secret_key: str, *, ticket: str, code: str, actor: Actor,
    now: datetime | None = None,
) -> int:  # fmt: skip
    """Step two: the account id to start an ops session for, when ``code`` is the current TOTP
    code (not used before) or an unused recovery code; else ``SecondFactorRequired`` (the route
    counts every attempt against the sign-in limit, so codes cannot be guessed)."""
    now = now or datetime.now(UTC)
    account_id = ticket_account(secret_key, ticket)
    if account_id is None:
        raise SecondFactorRequired()
    entered = "".join(code.split())
    async with db.transaction(account_id=account_id) as session:
        ok = False
        how = "totp"
        if entered.isdigit() and len(entered) == 6:
            sealed = await session.scalar(_TOTP_SECRET, {"a": account_id})
            step = _totp_step(_opened(secret_key, sealed), entered, now) if sealed else None
            ok = step is not None and bool(
                await session.scalar(_TOTP_USE, {"a": account_id, "step": step})
            )
        elif 16 <= len(entered.replace("-", "")) <= 20:
            how = "recovery_code"
            digest = recovery_digest(entered)
            ok = bool(await session.scalar(_RECOVERY_SPEND, {"a": account_id, "hash": digest}))
        await _event(session, "ops.sign_in" if ok else "ops.sign_in_failed", account_id, actor)
        if ok:
            await audit.record(
                session, actor=Actor(kind="operator", account_id=account_id, ip=actor.ip,
                                     user_agent=actor.user_agent, request_id=actor.request_id),
                action="ops.sign_in", entity="operator", entity_id=account_id, business_id=None,
                after={"second_factor": how},
            )  # fmt: skip
    if not ok:
        raise SecondFactorRequired()
    return account_id


# --- reading with a reason ----------------------------------------------------------------------


def require_reason(reason: str) -> str:
    """The stated reason for a read, or ``ValidationFailed`` before anything is read."""
    stated = " ".join(reason.split())
    if len(stated) < REASON_MIN:
        raise ValidationFailed(
            fields={"reason": gettext(N_("Say why you need to see this (at least %(n)d characters)."))
                    % {"n": REASON_MIN}}
        )  # fmt: skip
    return stated[:500]


def _json(value: dict[str, Any]) -> str:
    return msgspec.json.encode(value).decode()


def _actor(operator: Operator, actor: Actor) -> Actor:
    return Actor(kind="operator", account_id=operator.account_id, ip=actor.ip,
                 user_agent=actor.user_agent, request_id=actor.request_id)  # fmt: skip


def _require(operator: Operator, role: str) -> None:
    if not operator.at_least(role):
        raise OperatorRoleRequired()


_PERSON = text("SELECT pz_ops_person(:email, :phone)")


def _lookup(query: str) -> dict[str, str | None]:
    """An e-mail or a phone number, as the person lookup takes it."""
    value = query.strip()
    if "@" in value:
        return {"email": value.lower(), "phone": None}
    if not value:
        raise ValidationFailed(fields={"query": gettext(N_("Enter an e-mail or a phone number."))})
    return {"email": None, "phone": normalize_phone(value, field="query")}


async def read_person(
    db: Database, operator: Operator, *, query: str, reason: str, actor: Actor
) -> dict[str, Any]:
    """A person's data, found by e-mail or phone, with their requests and the disclosures about
    them; the read is audited with its reason (an unknown address is audited too: the question
    itself names someone). ``NotFound`` when nobody has the address."""
    stated = require_reason(reason)
    lookup = _lookup(query)
    async with db.transaction(account_id=operator.account_id) as session:
        person = await session.scalar(_PERSON, lookup)
        await audit.record(
            session, actor=_actor(operator, actor), action="ops.person_read", entity="account",
            entity_id=person["id"] if person else None, business_id=None,
            after={"reason": stated, "what": "person", "found": person is not None},
        )  # fmt: skip
        if person is None:
            raise NotFound()
        person["requests"] = [
            dict(r)
            for r in (
                await session.execute(
                    text(
                        "SELECT id, kind, status, channel, received_at, due_on, done_at "
                        "FROM data_requests WHERE account_id = :a ORDER BY id DESC"
                    ),
                    {"a": person["id"]},
                )
            ).mappings()
        ]
        person["disclosures"] = await _disclosures(session, operator, person["id"])
    return person


_DISCLOSURES = text(
    "SELECT id, authority, legal_basis, reference, data_given, disclosed_on, withheld, "
    "withheld_reason, export_sha256, created_at FROM lawful_disclosures WHERE account_id = :a "
    "ORDER BY disclosed_on DESC, id DESC"
)


async def _disclosures(session: AsyncSession, operator: Operator, account_id: int) -> list[Any]:
    if not operator.at_least("privacy"):
        return []
    return [dict(r) for r in (await session.execute(_DISCLOSURES, {"a": account_id})).mappings()]


# --- the queue ---------------------------------------------------------------------------------

_QUEUE = text(
    "SELECT id, kind, status, channel, account_id, received_at, due_on, done_at, handled_by "
    "FROM data_requests WHERE (:all OR status IN ('received', 'in_progress')) "
    "ORDER BY due_on, received_at, id LIMIT 500"
)
_HANDLERS = text("SELECT account_id, email FROM pz_operator_names()")


def today_in_kazakhstan(now: datetime | None = None) -> date:
    return data_requests.received_day(now or datetime.now(UTC))


async def queue(
    db: Database, operator: Operator, *, include_closed: bool = False, now: datetime | None = None
) -> list[data_requests.QueueItem]:
    """Requests by due date (earliest first), each flagged overdue or due within the reminder's
    2 business days; open ones only unless ``include_closed``. No personal detail."""
    today = today_in_kazakhstan(now)
    soon = add_business_days(today, data_requests.REMIND_BUSINESS_DAYS)
    async with db.transaction(account_id=operator.account_id) as session:
        handlers = {r.account_id: r.email for r in await session.execute(_HANDLERS)}
        rows = (await session.execute(_QUEUE, {"all": include_closed})).all()
    return [data_requests.QueueItem.of(r, today, soon, handlers) for r in rows]


_REQUEST = text(
    "SELECT id, kind, status, channel, account_id, requester, details, received_at, due_on, "
    "done_at, resolution, handled_by FROM data_requests WHERE id = :id"
)


async def request_summary(db: Database, operator: Operator, request_id: int) -> dict[str, Any]:
    """What the queue shows of one request (no personal detail), for the page that asks why."""
    async with db.transaction(account_id=operator.account_id) as session:
        row = (await session.execute(_REQUEST, {"id": request_id})).mappings().first()
    if row is None:
        raise NotFound()
    return {k: row[k] for k in ("id", "kind", "status", "channel", "account_id", "received_at",
                                "due_on", "done_at")}  # fmt: skip


async def read_request(
    db: Database, operator: Operator, request_id: int, *, reason: str, actor: Actor
) -> dict[str, Any]:
    """One request with what the person wrote and the answer, read with a reason (audited)."""
    stated = require_reason(reason)
    async with db.transaction(account_id=operator.account_id) as session:
        row = (await session.execute(_REQUEST, {"id": request_id})).mappings().first()
        if row is None:
            raise NotFound()
        await audit.record(
            session, actor=_actor(operator, actor), action="ops.request_read",
            entity="data_request", entity_id=request_id, business_id=None,
            after={"reason": stated, "what": "request", "account_id": row["account_id"]},
        )  # fmt: skip
        handlers = {r.account_id: r.email for r in await session.execute(_HANDLERS)}
    found = dict(row)
    found["handled_by_email"] = handlers.get(row["handled_by"]) if row["handled_by"] else None
    return found


_ACCOUNT_FOR = text("SELECT (pz_ops_person(:email, :phone)) ->> 'id'")
_LOG = text(
    "INSERT INTO data_requests (account_id, kind, status, channel, details, received_at, due_on, "
    "requester, handled_by) VALUES (:a, :kind, 'received', :channel, CAST(:details AS jsonb), "
    ":received_at, :due_on, :requester, :op) RETURNING id"
)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """A request received by e-mail, call, letter or in person, as an operator enters it."""

    kind: str
    channel: str
    received_on: date
    requester: str
    contact: str  # the person's e-mail or phone, matched to their account when one has it
    details: str


def _logged(form: LoggedRequest, today: date) -> dict[str, str]:
    errors = {}
    if form.kind not in data_requests.KINDS or form.kind == "lawful_disclosure":
        errors["kind"] = "Choose the kind of request."
    if form.channel not in data_requests.CHANNELS:
        errors["channel"] = "Choose how it arrived."
    if form.received_on > today:
        errors["received_on"] = "A request cannot arrive in the future."
    if not form.requester.strip() and not form.contact.strip():
        errors["requester"] = "Who sent it: a name, or their e-mail or phone."
    if len(form.requester) > 254:
        errors["requester"] = "At most 254 characters."
    if len(form.details) > 10_000:
        errors["details"] = "At most 10,000 characters."
    return errors


async def log_request(
    db: Database, operator: Operator, form: LoggedRequest, *, actor: Actor,
    now: datetime | None = None,
) -> int:  # fmt: skip
    """Log a request that came by e-mail, call or letter; due ``DATA_REQUEST_DUE_DAYS``
    business days after the day it was received (not the day it is logged)."""
    now = now or datetime.now(UTC)
    errors = _logged(form, today_in_kazakhstan(now))
    lookup = None
    if form.contact.strip():
        try:
            lookup = _lookup(form.contact)
        except ValidationFailed as refused:
            errors["contact"] = next(iter(refused.fields.values()))
    if errors:
        raise ValidationFailed(fields=errors)
    received_at = datetime.combine(form.received_on, datetime.min.time(), data_requests.KZ_ZONE)
    async with db.transaction(account_id=operator.account_id) as session:
        account = await session.scalar(_ACCOUNT_FOR, lookup) if lookup else None
        request_id = int(
            await session.scalar(
                _LOG,
                {
                    "a": int(account) if account else None,
                    "kind": form.kind,
                    "channel": form.channel,
                    "details": _json({"text": form.details}),
                    "received_at": received_at,
                    "due_on": data_requests.due_on(form.received_on),
                    "requester": form.requester.strip() or form.contact.strip(),
                    "op": operator.account_id,
                },
            )
        )
        await audit.record(
            session, actor=_actor(operator, actor), action="ops.request_logged",
            entity="data_request", entity_id=request_id, business_id=None,
            after={"kind": form.kind, "channel": form.channel, "matched": account is not None},
        )  # fmt: skip
    return request_id


_ANSWER = text(
    "UPDATE data_requests SET status = CAST(:status AS text), resolution = :answer, "
    "handled_by = :op, done_at = CASE WHEN CAST(:status AS text) IN ('done', 'rejected') "
    "THEN coalesce(done_at, CAST(:now AS timestamptz)) END "
    "WHERE id = :id RETURNING account_id, kind"
)


async def answer_request(
    db: Database, operator: Operator, request_id: int, *, status: str, answer: str,
    send: bool, actor: Actor, now: datetime | None = None,
) -> None:  # fmt: skip
    """Record the answer and the status; closing a request (done or rejected) needs the
    privacy role and an answer. With ``send``, the answer goes to the person's e-mail (in their
    language: the message's frame is translated, the answer is the operator's own words)."""
    now = now or datetime.now(UTC)
    if status not in data_requests.STATUSES:
        raise ValidationFailed(fields={"status": "Choose a status."})
    closing = status in ("done", "rejected")
    if closing:
        _require(operator, "privacy")
    if (closing or send) and not answer.strip():
        raise ValidationFailed(fields={"answer": "Write the answer sent to the person."})
    if len(answer) > 10_000:
        raise ValidationFailed(fields={"answer": "At most 10,000 characters."})
    async with db.transaction(account_id=operator.account_id) as session:
        row = (
            await session.execute(
                _ANSWER,
                {
                    "status": status,
                    "answer": answer.strip() or None,
                    "op": operator.account_id,
                    "now": now,
                    "id": request_id,
                },
            )
        ).first()
        if row is None:
            raise NotFound()
        sent_to = None
        if send and row.account_id is not None:
            person = await _contact(session, row.account_id)
            if person is not None:
                await enqueue_platform(session, [KeyedOutgoing(
                    # to the address, as platform messages to no signed-in account go
                    event="data_request.answered", scheduled_at=now,
                    address=person[0], channel="email", locale=person[1],
                    payload={"request_id": request_id, "kind": row.kind, "answer": answer.strip()},
                    key=f"data_request.answered:{request_id}:{int(now.timestamp())}",
                )])  # fmt: skip
                sent_to = "email"
        await audit.record(
            session, actor=_actor(operator, actor), action="ops.request_answered",
            entity="data_request", entity_id=request_id, business_id=None,
            after={"status": status, "sent": sent_to},
        )  # fmt: skip


_CONTACT = text("SELECT pz_ops_contact(:a)")


async def _contact(session: AsyncSession, account_id: int) -> tuple[str, str] | None:
    """The person's e-mail and language, for the answer (through the operator function)."""
    found = await session.scalar(_CONTACT, {"a": account_id})
    return (found["email"], found["locale"]) if found and found.get("email") else None


# --- lawful disclosures (policy 5.4) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disclosure:
    """An authority's lawful request, as the operator records it."""

    contact: str  # the person's e-mail or phone
    authority: str
    legal_basis: str
    reference: str
    data_given: str
    disclosed_on: date
    withheld: bool
    withheld_reason: str


@dataclass(frozen=True, slots=True)
class DisclosureFile:
    disclosure_id: int
    filename: str
    content: bytes
    sha256: str


def _disclosure_errors(form: Disclosure, today: date) -> dict[str, str]:
    errors = {}
    for name, limit in (("authority", 200), ("legal_basis", 300), ("reference", 120),
                        ("data_given", 10_000)):  # fmt: skip
        value = getattr(form, name).strip()
        if not value:
            errors[name] = "Required."
        elif len(value) > limit:
            errors[name] = f"At most {limit} characters."
    if form.disclosed_on > today:
        errors["disclosed_on"] = "The date the data was handed over: not in the future."
    if form.withheld and len(form.withheld_reason.strip()) < REASON_MIN:
        errors["withheld_reason"] = "Name the law that forbids telling the person."
    return errors


_DISCLOSE = text(
    "INSERT INTO lawful_disclosures (data_request_id, account_id, authority, legal_basis, "
    "reference, data_given, disclosed_on, withheld, withheld_reason, export_sha256, recorded_by) "
    "VALUES (:r, :a, :authority, :basis, :reference, :given, :on, :withheld, :why, :sha, :op) "
    "RETURNING id"
)
_DISCLOSURE_REQUEST = text(
    "INSERT INTO data_requests (account_id, kind, status, channel, details, received_at, due_on, "
    "done_at, resolution, requester, handled_by) VALUES (:a, 'lawful_disclosure', 'done', "
    "'letter', CAST(:details AS jsonb), :now, :due, :now, :resolution, :authority, :op) "
    "RETURNING id"
)


async def disclose(
    db: Database, operator: Operator, form: Disclosure, *, actor: Actor,
    now: datetime | None = None,
) -> DisclosureFile:  # fmt: skip
    """Record a lawful disclosure and produce the file handed over: the person's copy of their
    data made by the export (``app.domain.privacy.export_account``), whose sha256 is kept with
    the record; the request, the record and the export are audited in one transaction."""
    now = now or datetime.now(UTC)
    _require(operator, "privacy")
    errors = _disclosure_errors(form, today_in_kazakhstan(now))
    try:
        lookup = _lookup(form.contact)
    except ValidationFailed as refused:
        errors["contact"] = next(iter(refused.fields.values()))
    if errors:
        raise ValidationFailed(fields=errors)
    who = _actor(operator, actor)
    async with db.transaction(account_id=operator.account_id) as session:
        found = await session.scalar(_ACCOUNT_FOR, lookup)
        if found is None:
            raise ValidationFailed(fields={"contact": "Nobody has this e-mail or phone."})
        person = int(found)
        # the export reads as the person (their own rows' policies), then the record is written
        # as the operator again, in the same transaction
        await set_context(session, account_id=person)
        content = await privacy.export_account(
            session, person, now=now, channel="ops", actor=who, record_request=False
        )
        await set_context(session, account_id=operator.account_id)
        digest = hashlib.sha256(content).hexdigest()
        request_id = int(
            await session.scalar(
                _DISCLOSURE_REQUEST,
                {
                    "a": person,
                    "details": _json({"reference": form.reference.strip()}),
                    "now": now,
                    "due": data_requests.due_on(now),
                    "authority": form.authority.strip(),
                    "resolution": form.data_given.strip(),
                    "op": operator.account_id,
                },
            )
        )
        disclosure_id = int(
            await session.scalar(
                _DISCLOSE,
                {
                    "r": request_id,
                    "a": person,
                    "authority": form.authority.strip(),
                    "basis": form.legal_basis.strip(),
                    "reference": form.reference.strip(),
                    "given": form.data_given.strip(),
                    "on": form.disclosed_on,
                    "withheld": form.withheld,
                    "why": form.withheld_reason.strip() if form.withheld else None,
                    "sha": digest,
                    "op": operator.account_id,
                },
            )
        )
        await audit.record(
            session, actor=who, action="ops.lawful_disclosure", entity="lawful_disclosure",
            entity_id=disclosure_id, business_id=None,
            after={"account_id": person, "authority": form.authority.strip(),
                   "legal_basis": form.legal_basis.strip(), "reference": form.reference.strip(),
                   "disclosed_on": form.disclosed_on.isoformat(), "withheld": form.withheld,
                   "export_sha256": digest},
        )  # fmt: skip
    name = f"disclosure-{disclosure_id}-account-{person}.zip"
    return DisclosureFile(disclosure_id, name, content, digest)
