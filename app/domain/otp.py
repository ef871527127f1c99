"""One-time codes by SMS or e-mail: sign-in outside Telegram, and re-verifying a changed phone or
e-mail (policy 2.2, 2.3, 8.2).

- A code is 6 digits from ``secrets``, valid 5 minutes, good for one sign-in. The database keeps
  neither the code nor the address in clear: both are HMAC-SHA256 digests keyed with the
  server's secret (a stolen table does not give them away, even to a brute force over all
  10^6 codes or all Kazakhstan numbers, without the key). Each code digest is bound to its
  address.
- Challenges are under row-level security and belong to nobody before a sign-in, so the app
  never reads them: ``pz_otp_issue`` stores one, ``pz_otp_sent_to``/``pz_otp_sent_from`` count
  them, ``pz_otp_check`` compares the digests of what was typed with the stored ones and answers
  in one word. The digest of a code therefore has no per-row salt (the database must be able to
  compare without handing the row out); with the key unknown a salt adds nothing, and with the
  key known it would not slow a search over 10^6 codes either.
- Throttling: at most 3 codes per address per 15 minutes and 10 per client network (an IPv4
  address, an IPv6 /64) per hour; at most 5 wrong tries per code (counted by ``pz_otp_check``),
  after which even the right code is refused.
- No enumeration: asking for a code never looks at the accounts, so a known and an unknown
  number get the same answer, the same row and the same message; every failed check gives one
  and the same message.
- The code travels only in the outbox row the workers deliver; it is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain import audit, outbox
from app.domain.accounts import live_account
from app.domain.audit import Actor, inet_or_none
from app.domain.errors import MAX_ID, DomainError, NotFound, RateLimited, ValidationFailed
from app.i18n import N_, gettext
from app.models import Account

Channel = Literal["sms", "email"]
Purpose = Literal["sign_in", "change_phone", "change_email"]

CODE_TTL = timedelta(minutes=5)
CODES_PER_DESTINATION = 3
DESTINATION_WINDOW = timedelta(minutes=15)
CODES_PER_NETWORK = 10
NETWORK_WINDOW = timedelta(hours=1)
# the channel each purpose must use (a sign-in code may go either way)
PURPOSE_CHANNEL: dict[str, str | None] = {
    "sign_in": None,
    "change_phone": "sms",
    "change_email": "email",
}
_HASH_VERSION = "v2"  # v1 was salted per row
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class CodeInvalid(DomainError):
    """A code that does not sign in: wrong, expired, used, for another address or purpose.

    One message for all of these, so an answer never tells whether an address has an account.
    """

    code = "validation"
    status = 422
    message = N_("This code is wrong or no longer valid. Check it or request a new code.")


@dataclass(frozen=True, slots=True)
class VerifiedContact:
    """A phone or e-mail its owner has just proven to hold."""

    channel: str
    destination: str  # E.164 phone or lower-case e-mail
    purpose: str
    challenge_id: int
    verified_at: datetime


@dataclass(frozen=True, slots=True)
class KeyedOutgoing(outbox.Outgoing):
    """A platform message (no business, no booking) with its own idempotency key.

    The default key names the address in clear, which would keep a phone number in the outbox
    after the person's erasure; a code or a deletion notice is keyed by what caused it instead.
    """

    key: str = ""

    @property
    def own_key(self) -> str | None:
        return self.key


_INSERT_PLATFORM = text(
    "INSERT INTO notifications (account_id, address, event, channel, locale, payload, "
    "idempotency_key, scheduled_at) "
    "SELECT * FROM unnest(CAST(:account_id AS bigint[]), CAST(:address AS text[]), "
    "CAST(:event AS text[]), CAST(:channel AS text[]), CAST(:locale AS text[]), "
    "CAST(:payload AS jsonb[]), CAST(:key AS text[]), CAST(:scheduled_at AS timestamptz[]))"
)


async def enqueue_platform(session: AsyncSession, messages: list[KeyedOutgoing]) -> None:
    """Queue platform messages in the current transaction.

    A plain INSERT, unlike ``outbox.enqueue``: ``ON CONFLICT`` makes PostgreSQL check the new
    row against the SELECT policies too, and the app must not be able to read platform rows
    (they carry sign-in codes). The row-level policy ``platform_insert`` lets it write them.
    Keys are unique by construction (a challenge id, an account id).
    """
    if not messages:
        return
    if any(m.business_id is not None or m.booking_id is not None or not m.key for m in messages):
        raise ValueError("platform messages have a key and no business or booking")
    columns = outbox.columns(messages)
    del columns["business_id"], columns["booking_id"]  # none, checked above
    await session.execute(_INSERT_PLATFORM, columns)


# --- addresses -------------------------------------------------------------------------------


def normalize_phone(raw: str, *, field: str = "phone", landline: bool = False) -> str:
    """A Kazakhstan mobile number (+7 7XX…) in E.164, or ValidationFailed on ``field``;
    with ``landline`` a fixed line too (a business's own phone, which receives no codes).

    Accepts the ways people write it: ``+7 701 123 45 67``, ``8 (701) 123-45-67``, ``87011234567``.
    Russian numbers share +7 and are refused, as are landlines (they cannot receive a code).
    """

    def refuse() -> ValidationFailed:
        if landline:
            message = N_("Enter a Kazakhstan phone number, e.g. +7 727 250 12 34.")
        else:
            message = N_("Enter a Kazakhstan mobile number, e.g. +7 701 123 45 67.")
        return ValidationFailed(fields={field: gettext(message)})

    if not isinstance(raw, str) or not raw.strip() or len(raw) > 32:
        raise refuse()
    try:
        number = phonenumbers.parse(raw, "KZ")
    except NumberParseException as exc:
        raise refuse() from exc
    if (
        number.extension
        or phonenumbers.region_code_for_number(number) != "KZ"
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number)
        not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
                *((PhoneNumberType.FIXED_LINE,) if landline else ()))
    ):  # fmt: skip
        raise refuse()
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def normalize_email(raw: str, *, field: str = "email") -> str:
    """An e-mail address in lower case with an ASCII (IDNA) domain, or ValidationFailed."""

    def refuse() -> ValidationFailed:
        return ValidationFailed(fields={field: gettext(N_("Enter a valid e-mail address."))})

    value = raw.strip() if isinstance(raw, str) else ""
    if not value or len(value) > 254 or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise refuse()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or len(local) > 64 or not _EMAIL_LOCAL.match(local):
        raise refuse()
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise refuse() from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise refuse()
    if not (labels[-1].isalpha() or labels[-1].startswith("xn--")):
        raise refuse()
    address = f"{local.lower()}@{ascii_domain}"
    if len(address) > 254:
        raise refuse()
    return address


def channel_of(contact: str) -> str:
    """Where a contact a person typed is reached: an e-mail has an @, anything else is a phone."""
    return "email" if "@" in contact else "sms"


def normalize_destination(channel: str, raw: str) -> str:
    if channel == "sms":
        return normalize_phone(raw)
    if channel == "email":
        return normalize_email(raw)
    raise ValidationFailed(fields={"channel": gettext(N_("Choose SMS or e-mail."))})


# --- keyed digests ---------------------------------------------------------------------------


def _subkey(secret: str, label: bytes) -> bytes:
    """A key for one use only, derived from the server secret (which also signs sessions)."""
    if not secret:
        raise ValueError("one-time codes need the server's SECRET_KEY")
    return hmac.new(secret.encode(), b"pozapisi.otp." + label, hashlib.sha256).digest()


def destination_hash(secret: str, channel: str, destination: str) -> str:
    """The keyed digest an address is stored as (for throttling and matching)."""
    key = _subkey(secret, b"destination")
    return hmac.new(key, f"{channel}:{destination}".encode(), hashlib.sha256).hexdigest()


def _code_digest(secret: str, destination_digest: str, code: str) -> str:
    """The stored form of a code, bound to its address: what ``pz_otp_check`` compares."""
    key = _subkey(secret, b"code")
    message = destination_digest.encode() + b"|" + code.encode()
    return f"{_HASH_VERSION}${hmac.new(key, message, hashlib.sha256).hexdigest()}"


def client_network(ip: str | None) -> str | None:
    """The client network a per-IP limit counts: the address (IPv4) or its /64 (IPv6: one
    subscriber's prefix; an address each request would be no limit at all). None without one."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    prefix = 32 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# --- codes -----------------------------------------------------------------------------------

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_SENT_TO = text("SELECT pz_otp_sent_to(:h, :since)")
_SENT_FROM = text("SELECT pz_otp_sent_from(CAST(:net AS cidr), :since)")
_ISSUE = text(
    "SELECT pz_otp_issue(:channel, :h, :code_hash, :purpose, CAST(:ip AS inet), :now, :expires_at)"
)


async def request_code(
    session: AsyncSession,
    *,
    channel: str,
    destination: str,
    ip: str | None,
    secret: str,
    purpose: str = "sign_in",
    account_id: int | None = None,
    now: datetime | None = None,
    locale: str = "ru",
) -> int:
    """Create a challenge and queue its code to ``destination``; returns the challenge id.

    Raises ValidationFailed for a malformed address and RateLimited past the limits. Never
    consults the accounts: the answer is the same whether or not the address has one.
    """
    now = now or datetime.now(UTC)
    if purpose not in PURPOSE_CHANNEL:
        raise ValueError(f"unknown purpose {purpose!r}")
    required_channel = PURPOSE_CHANNEL[purpose]
    if required_channel is not None and channel != required_channel:
        raise ValueError(f"{purpose} codes go by {required_channel}")
    if purpose != "sign_in" and account_id is None:
        raise ValueError(f"{purpose} needs the signed-in account")
    address = normalize_destination(channel, destination)
    digest = destination_hash(secret, channel, address)
    too_many = RateLimited(
        gettext(N_("Too many codes were requested. Please wait a few minutes and try again."))
    )

    # concurrent requests for one address (or from one network) queue up, so limits hold exactly
    await session.execute(_LOCK, {"key": f"pozapisi.otp.destination:{digest}"})
    sent = await session.scalar(_SENT_TO, {"h": digest, "since": now - DESTINATION_WINDOW})
    if (sent or 0) >= CODES_PER_DESTINATION:
        raise too_many
    network = client_network(ip)
    if network is not None:
        await session.execute(_LOCK, {"key": f"pozapisi.otp.network:{network}"})
        sent = await session.scalar(_SENT_FROM, {"net": network, "since": now - NETWORK_WINDOW})
        if (sent or 0) >= CODES_PER_NETWORK:
            raise too_many

    code = f"{secrets.randbelow(1_000_000):06d}"
    # a change code is the signed-in account's: pz_otp_issue takes it from the transaction
    challenge_id = await session.scalar(
        _ISSUE,
        {
            "channel": channel,
            "h": digest,
            "code_hash": _code_digest(secret, digest, code),
            "purpose": purpose,
            "expires_at": now + CODE_TTL,
            "ip": inet_or_none(ip),
            "now": now,
        },
    )
    assert challenge_id is not None
    await enqueue_platform(
        session,
        [
            KeyedOutgoing(
                event="otp.code",
                scheduled_at=now,
                address=address,
                channel=channel,
                locale=locale,
                payload={"code": code},
                key=f"otp.code:{challenge_id}",
            )
        ],
    )
    return int(challenge_id)


_CHECK = text("SELECT pz_otp_check(:id, :h, :code_hash, :purpose, :now)")


async def verify_code(
    session: AsyncSession,
    *,
    challenge_id: int,
    destination: str,
    code: str,
    secret: str,
    purpose: str = "sign_in",
    now: datetime | None = None,
) -> VerifiedContact:
    """Check a code; on success the challenge is used up (in the caller's transaction).

    A wrong code is counted and **committed** before CodeInvalid is raised: the caller's
    transaction would otherwise roll the count back with the error, and the limit of 5 wrong
    tries would be void. So call it first, in a transaction of its own.
    The 6th try is refused with RateLimited even when the code is right. A code for a change
    of contact works only in a transaction acting for the account that asked for it.
    """
    now = now or datetime.now(UTC)
    if not 0 < challenge_id <= MAX_ID:  # a forged id must not reach the driver as an overflow
        raise CodeInvalid()
    # an e-mail address has an @, a phone number never: the typed address names its channel
    channel = "email" if "@" in destination else "sms"
    try:
        address = normalize_destination(channel, destination)
    except ValidationFailed:
        address = ""
    digest = destination_hash(secret, channel, address)
    typed = "".join(code.split())
    outcome = await session.scalar(
        _CHECK,
        {"id": challenge_id, "h": digest, "code_hash": _code_digest(secret, digest, typed),
         "purpose": purpose, "now": now},
    )  # fmt: skip
    if outcome == "locked":
        raise RateLimited(gettext(N_("Too many wrong codes. Please request a new code.")))
    if outcome == "wrong":
        await session.commit()
    if outcome != "ok":
        raise CodeInvalid()
    return VerifiedContact(
        channel=channel,
        destination=address,
        purpose=purpose,
        challenge_id=challenge_id,
        verified_at=now,
    )


# --- accounts --------------------------------------------------------------------------------


_FOR_CONTACT = text(
    "SELECT account_id, created FROM pz_account_for_contact(:challenge_id, :channel, :address, "
    ":locale)"
)
_TAKEN = text("SELECT pz_contact_taken(:channel, :address)")


async def account_for_contact(
    session: AsyncSession, verified: VerifiedContact, *, locale: str = "ru"
) -> Account:
    """The account a verified phone/e-mail signs in to, created on first sign-in; the
    transaction acts for it from here on."""
    if verified.purpose != "sign_in":
        raise ValueError("only a sign-in code signs in")
    found = (
        await session.execute(
            _FOR_CONTACT,
            {"challenge_id": verified.challenge_id, "channel": verified.channel,
             "address": verified.destination,
             "locale": locale if locale in ("ru", "kk", "en") else "ru"},
        )
    ).one()  # fmt: skip
    await set_context(session, account_id=found.account_id)
    account = await live_account(session, found.account_id)
    assert account is not None  # pz_account_for_contact names live accounts only
    return account


def _set_contact(account: Account, verified: VerifiedContact) -> None:
    if verified.channel == "sms":
        account.phone = verified.destination
        account.phone_verified_at = verified.verified_at
    else:
        account.email = verified.destination
        account.email_verified_at = verified.verified_at


async def _ensure_contact_free(session: AsyncSession, channel: str, destination: str) -> None:
    """A phone or e-mail belongs to one account: refuse one that another account holds."""
    if await session.scalar(_TAKEN, {"channel": channel, "address": destination}):
        if channel == "sms":
            message = N_("This phone number is already used by another account.")
            raise ValidationFailed(fields={"phone": gettext(message)})
        message = N_("This e-mail is already used by another account.")
        raise ValidationFailed(fields={"email": gettext(message)})


async def request_contact_change(
    session: AsyncSession,
    *,
    account_id: int,
    channel: str,
    destination: str,
    ip: str | None,
    secret: str,
    now: datetime | None = None,
    locale: str = "ru",
) -> int:
    """Send a code to a new phone (``sms``) or e-mail of a signed-in account (policy 8.2).

    The answer is the same whether or not another account holds the address: that fact reaches
    only whoever holds the address, at the confirmation, with the code sent to it (no account
    enumeration)."""
    address = normalize_destination(channel, destination)
    purpose = "change_phone" if channel == "sms" else "change_email"
    return await request_code(
        session, channel=channel, destination=address, ip=ip, secret=secret, purpose=purpose,
        account_id=account_id, now=now, locale=locale,
    )  # fmt: skip


async def confirm_contact_change(
    session: AsyncSession,
    *,
    account_id: int,
    channel: str,
    challenge_id: int,
    destination: str,
    code: str,
    secret: str,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> Account:
    """Check the code sent to the new address and put it on the account, verified."""
    purpose = "change_phone" if channel == "sms" else "change_email"
    verified = await verify_code(
        session, challenge_id=challenge_id, destination=destination, code=code, secret=secret,
        purpose=purpose, now=now,
    )  # fmt: skip
    # pz_otp_check has refused a code another account asked for
    if verified.channel != channel:
        raise CodeInvalid()
    await _ensure_contact_free(session, channel, verified.destination)
    account = await live_account(session, account_id)
    if account is None:
        raise NotFound()
    try:
        async with session.begin_nested():
            _set_contact(account, verified)
            await session.flush()
    except IntegrityError:
        # taken by another account a moment ago: the check now names the field
        await _ensure_contact_free(session, channel, verified.destination)
        raise
    await audit.record(
        session,
        actor=actor or Actor(kind="client", account_id=account_id),
        action="account.contact_change",
        entity="account",
        entity_id=account_id,
        business_id=None,
        after={"field": "phone" if channel == "sms" else "email"},
    )
    return account


async def set_verified_phone(
    session: AsyncSession, account: Account, raw_phone: str, *, now: datetime | None = None
) -> None:
    """A phone Telegram vouches for (``requestContact`` data is signed like initData): no code
    is needed, but it must be a Kazakhstan number that no other account holds."""
    phone = normalize_phone(raw_phone)
    await _ensure_contact_free(session, "sms", phone)
    account.phone = phone
    account.phone_verified_at = now or datetime.now(UTC)
    await session.flush()


# --- entry points: each owns its transaction ---------------------------------------------------


async def send_sign_in_code(
    db: Database, *, channel: str, destination: str, ip: str | None, secret: str, locale: str
) -> int:
    """A sign-in code to a phone or e-mail; the same answer whether or not an account has it."""
    async with db.transaction() as session:
        return await request_code(
            session, channel=channel, destination=destination, ip=ip, secret=secret,
            locale=locale,
        )  # fmt: skip


async def sign_in_with_code(
    db: Database, *, challenge_id: int, destination: str, code: str, secret: str, locale: str
) -> int:
    """The account a correct code proves (created on first sign-in); returns its id.

    The check runs in a transaction of its own, so a wrong try is counted even though the
    request then fails."""
    async with db.transaction() as session:
        verified = await verify_code(
            session, challenge_id=challenge_id, destination=destination, code=code,
            secret=secret,
        )  # fmt: skip
    async with db.transaction() as session:
        account = await account_for_contact(session, verified, locale=locale)
        return account.id
