"""Accounts of the business side: signing up (an account and its first business), signing in by
password or one-time code, e-mail links (verification, reset, change of address) and the
account security page's changes.

Each entry point owns its transaction. What the app role may not do itself — insert accounts
and businesses, write a password hash, read or write ``account_tokens``, record a security
event for nobody — goes through SECURITY DEFINER functions (``app/db/sql/functions/pz_signup*``,
``pz_password_*``, ``pz_token_*``, ``pz_security_event``). Links are 32 random bytes
(URL-safe) in the e-mail and only their SHA-256 in the database.

Nothing here knows about HTTP: a route hands in where the person is (``Actor``) and how to
build a link to a page (``link``: token → absolute URL).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, set_context
from app.domain import audit, otp, passwords, profile, subscriptions
from app.domain.accounts import live_account
from app.domain.audit import Actor, inet_or_none, user_agent_or_none
from app.domain.errors import DomainError, NotFound, ValidationFailed
from app.domain.members import workplaces
from app.i18n import LOCALES, N_, gettext

Link = Callable[[str], str]

NAME_MIN, NAME_MAX = 2, 200
SLUG_MIN, SLUG_MAX = 3, 63
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
RESERVED_SLUGS = frozenset({"app", "api", "dashboard", "ops", "static", "admin", "www", "new"})

# Russian and Kazakh Cyrillic to Latin letters for a business's address (slug): a readable,
# typeable approximation, not a standard transliteration (Kazakh letters as the brief pins:
# ә→a ғ→g қ→q ң→n ө→o ұ→u ү→u һ→h і→i).
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    "ә": "a", "ғ": "g", "қ": "q", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h", "і": "i",
}  # fmt: skip


class SignInFailed(DomainError):
    """Wrong e-mail or password, or no business to work in: one answer for all of them, so the
    page never tells whether an address has an account."""

    code = "unauthorized"
    status = 401
    message = N_("The e-mail or password is wrong.")


class CodeSignInFailed(DomainError):
    """A right code for a person who works in no business: said like a wrong code."""

    code = "validation"
    status = 422
    message = otp.CodeInvalid.message


class LinkInvalid(DomainError):
    """A link from an e-mail that does not work: unknown, used or expired (one answer)."""

    code = "not_found"
    status = 404
    message = N_("This link does not work any more: it was already used or it has expired.")


@dataclass(frozen=True, slots=True)
class SignedUp:
    account_id: int
    business_id: int
    slug: str


# --- names and addresses -----------------------------------------------------------------------


def slug_from_name(name: str) -> str:
    """A business's address from its name: Cyrillic (Russian and Kazakh) transliterated, other
    accents dropped, lower-case a-z, 0-9 and single hyphens, 3 to 63 characters. A name with
    nothing usable gives ``business``; a short one is padded with ``-kz``."""
    letters = []
    for char in name.strip().lower():
        if char in _CYRILLIC:
            letters.append(_CYRILLIC[char])
        else:
            decomposed = unicodedata.normalize("NFKD", char)
            letters.append("".join(c for c in decomposed if c.isascii()))
    slug = re.sub(r"[^a-z0-9]+", "-", "".join(letters)).strip("-")
    slug = slug[:SLUG_MAX].rstrip("-")
    if not slug:
        return "business"
    if len(slug) < SLUG_MIN:
        slug = f"{slug}-kz"
    if slug in RESERVED_SLUGS:
        slug = f"{slug}-kz"
    return slug


def check_slug(slug: str) -> None:
    """A slug a person typed (the settings page): ``ValidationFailed`` on ``slug`` unless it is
    3 to 63 of a-z, 0-9 and hyphens, starting with a letter or digit, and not reserved."""
    if not _SLUG.fullmatch(slug) or slug.endswith("-") or "--" in slug:
        raise ValidationFailed(
            fields={
                "slug": gettext(
                    N_(
                        "Use 3 to 63 Latin lower-case letters, digits and single hyphens, "
                        "starting with a letter or digit."
                    )
                )
            }
        )
    if slug in RESERVED_SLUGS:
        raise ValidationFailed(fields={"slug": gettext(N_("This address is reserved."))})


def _name_problem(name: str) -> str | None:
    cleaned = " ".join(name.split())
    if not NAME_MIN <= len(cleaned) <= NAME_MAX:
        return gettext(N_("The business name must be 2 to 200 characters long."))
    return None


def _email_or_errors(raw: str, errors: dict[str, str]) -> str:
    try:
        return otp.normalize_email(raw)
    except ValidationFailed as refused:
        errors.update(refused.fields)
        return ""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def _plausible_token(token: str) -> bool:
    return 20 <= len(token) <= 100 and re.fullmatch(r"[A-Za-z0-9_-]+", token) is not None


# --- what the database functions do ------------------------------------------------------------

_EVENT = text("SELECT pz_security_event(:event, :account, CAST(:ip AS inet), :ua)")
_SIGNUP = text("SELECT account_id, business_id, slug FROM pz_signup(:email, :hash, :locale, :name, :slug)")  # fmt: skip
_NEW_BUSINESS = text("SELECT business_id, slug FROM pz_signup_business(:name, :slug)")
_PASSWORD_FOR = text("SELECT account_id, password_hash, is_member FROM pz_password_for_email(:email)")  # fmt: skip
_PASSWORD_SET = text("SELECT pz_password_set(:hash, :keep)")
_TOKEN_ISSUE = text("SELECT pz_token_issue(:purpose, :digest, :email)")
_TOKEN_VALID = text("SELECT pz_token_valid(:purpose, :digest)")
_TOKEN_SPEND = text("SELECT pz_token_spend(:purpose, :digest)")

LINK_EVENTS = {
    "verify_email": "account.verify_email",
    "change_email": "account.change_email",
    "reset_password": "account.reset_password",
}


async def _event(session: AsyncSession, event: str, account_id: int | None, actor: Actor) -> None:
    await session.execute(
        _EVENT,
        {"event": event, "account": account_id, "ip": inet_or_none(actor.ip),
         "ua": user_agent_or_none(actor.user_agent)},
    )  # fmt: skip


async def _send_link(
    session: AsyncSession, purpose: str, email: str, link: Link, *, now: datetime
) -> bool:
    """Issue a link of ``purpose`` for ``email`` and queue its e-mail; False when no account
    holds the address (a reset, said the same to the person either way)."""
    token, digest = _new_token()
    locale = await session.scalar(
        _TOKEN_ISSUE, {"purpose": purpose, "digest": digest, "email": email}
    )
    if locale is None:
        return False
    await otp.enqueue_platform(
        session,
        [
            otp.KeyedOutgoing(
                event=LINK_EVENTS[purpose],
                scheduled_at=now,
                address=email,
                channel="email",
                locale=str(locale),
                payload={"link": link(token)},
                key=f"{LINK_EVENTS[purpose]}:{digest[:32]}",
            )
        ],
    )
    return True


async def _hash(password: str) -> str:
    return await asyncio.to_thread(passwords.hash_password, password)


async def _verify(password: str, stored: str | None) -> bool:
    return await asyncio.to_thread(passwords.verify_password, password, stored)


# --- sign-up -----------------------------------------------------------------------------------


async def sign_up(
    db: Database,
    *,
    business_name: str,
    email: str,
    password: str,
    locale: str,
    actor: Actor,
    verify_link: Link,
    now: datetime | None = None,
) -> SignedUp:
    """A new account (its e-mail to verify), its business and the owner's membership; a link
    to verify the address goes by e-mail. ``ValidationFailed`` names every bad field at once."""
    now = now or datetime.now(UTC)
    errors: dict[str, str] = {}
    name = " ".join(business_name.split())
    if problem := _name_problem(name):
        errors["business_name"] = problem
    address = _email_or_errors(email, errors)
    if problem := passwords.password_problem(password, email=address or None):
        errors["password"] = gettext(problem)
    if errors:
        raise ValidationFailed(fields=errors)
    password_hash = await _hash(password)
    exists_message = N_("An account with this e-mail exists — sign in or reset the password.")
    exists = ValidationFailed(fields={"email": gettext(exists_message)})
    try:
        async with db.transaction() as session:
            row = (
                await session.execute(
                    _SIGNUP,
                    {"email": address, "hash": password_hash,
                     "locale": locale if locale in LOCALES else "ru", "name": name,
                     "slug": slug_from_name(name)},
                )
            ).one()  # fmt: skip
            await set_context(session, business_id=row.business_id, account_id=row.account_id)
            signed_up = SignedUp(row.account_id, row.business_id, row.slug)
            await audit.record(
                session,
                actor=Actor("staff", row.account_id, actor.ip, actor.user_agent, actor.request_id),
                action="business.create",
                entity="business",
                entity_id=row.business_id,
                business_id=row.business_id,
                after={"name": name, "slug": row.slug},
            )
            await subscriptions.record_trial(session, row.business_id, actor=audit.SYSTEM)
            await _event(session, "dashboard.sign_up", row.account_id, actor)
            await _send_link(session, "verify_email", address, verify_link, now=now)
    except IntegrityError:
        # pz_signup's refusal, or a sign-up with the same address a moment earlier
        raise exists from None
    return signed_up


async def create_business(
    db: Database, account_id: int, *, business_name: str, actor: Actor
) -> SignedUp:
    """Another business owned by a signed-in person (one who works in none any more, say)."""
    name = " ".join(business_name.split())
    if problem := _name_problem(name):
        raise ValidationFailed(fields={"business_name": problem})
    async with db.transaction(account_id=account_id) as session:
        row = (
            await session.execute(_NEW_BUSINESS, {"name": name, "slug": slug_from_name(name)})
        ).one()
        await set_context(session, business_id=row.business_id, account_id=account_id)
        await audit.record(
            session, actor=actor, action="business.create", entity="business",
            entity_id=row.business_id, business_id=row.business_id,
            after={"name": name, "slug": row.slug},
        )  # fmt: skip
        await subscriptions.record_trial(session, row.business_id, actor=audit.SYSTEM)
        return SignedUp(account_id, row.business_id, row.slug)


# --- sign-in -----------------------------------------------------------------------------------


async def sign_in_with_password(db: Database, *, email: str, password: str, actor: Actor) -> int:
    """The account whose e-mail and password these are, if it works in a business; else
    ``SignInFailed``, the same for an unknown e-mail, a wrong password and no business (a
    dummy hash is checked when there is no account, so the time taken is the same too)."""
    address = email.strip().lower()
    async with db.transaction() as session:
        row = (await session.execute(_PASSWORD_FOR, {"email": address})).first()
    stored = row.password_hash if row is not None else None
    right = await _verify(password, stored)
    account_id = row.account_id if row is not None else None
    ok = right and row is not None and row.is_member
    async with db.transaction(account_id=account_id if ok else None) as session:
        event = "dashboard.sign_in" if ok else "dashboard.sign_in_failed"
        await _event(session, event, account_id, actor)
    if not ok or account_id is None:
        raise SignInFailed()
    return int(account_id)


async def sign_in_with_code(
    db: Database,
    *,
    challenge_id: int,
    destination: str,
    code: str,
    secret: str,
    locale: str,
    actor: Actor,
) -> int:
    """The account a one-time code proves (``app.domain.otp``), if it works in a business;
    a person who works in none gets the wrong-code answer."""
    account_id = await otp.sign_in_with_code(
        db, challenge_id=challenge_id, destination=destination, code=code, secret=secret,
        locale=locale,
    )  # fmt: skip
    async with db.transaction(account_id=account_id) as session:
        member = bool(await workplaces(session, account_id))
        event = "dashboard.sign_in_code" if member else "dashboard.sign_in_failed"
        await _event(session, event, account_id, actor)
    if not member:
        raise CodeSignInFailed()
    return account_id


# --- links from e-mails ------------------------------------------------------------------------


async def link_works(db: Database, purpose: str, token: str) -> bool:
    """Whether a link still works (its page shows a button; opening it spends nothing)."""
    if purpose not in LINK_EVENTS or not _plausible_token(token):
        return False
    async with db.transaction() as session:
        return bool(
            await session.scalar(_TOKEN_VALID, {"purpose": purpose, "digest": token_digest(token)})
        )


async def request_password_reset(
    db: Database, *, email: str, actor: Actor, reset_link: Link, now: datetime | None = None
) -> None:
    """A reset link (30 minutes) to the address when an account holds it; the caller says the
    same thing either way."""
    now = now or datetime.now(UTC)
    address = otp.normalize_email(email)
    async with db.transaction() as session:
        await _send_link(session, "reset_password", address, reset_link, now=now)
        await _event(session, "password.reset_requested", None, actor)


async def reset_password(db: Database, *, token: str, password: str, actor: Actor) -> int:
    """A new password through a reset link: the link is spent, the password set, and every
    session of the account ended, in one transaction; returns the account's id (the caller
    signs the person in afresh). ``LinkInvalid`` for a link that does not work."""
    if not _plausible_token(token):
        raise LinkInvalid()
    password_hash = await _hash(password) if passwords.password_problem(password) is None else ""
    async with db.transaction() as session:
        account_id = await session.scalar(
            _TOKEN_SPEND, {"purpose": "reset_password", "digest": token_digest(token)}
        )
        if account_id is None:
            raise LinkInvalid()
        await set_context(session, account_id=account_id)
        account = await live_account(session, account_id)
        assert account is not None  # pz_token_spend spends links of live accounts only
        passwords.check_new_password(password, email=account.email)  # rolls the spend back
        await session.scalar(_PASSWORD_SET, {"hash": password_hash, "keep": None})
        await _event(session, "password.reset", account_id, actor)
        return int(account_id)


async def confirm_email(db: Database, *, purpose: str, token: str, actor: Actor) -> int:
    """Open a verification (``verify_email``) or change-of-address (``change_email``) link:
    the address is verified, or becomes the account's. Returns the account's id."""
    if purpose not in ("verify_email", "change_email") or not _plausible_token(token):
        raise LinkInvalid()
    taken = ValidationFailed(
        gettext(N_("This e-mail is already used by another account.")),
    )
    try:
        async with db.transaction() as session:
            account_id = await session.scalar(
                _TOKEN_SPEND, {"purpose": purpose, "digest": token_digest(token)}
            )
            if account_id is None:
                raise LinkInvalid()
            await set_context(session, account_id=account_id)
            event = "email.verified" if purpose == "verify_email" else "email.changed"
            await _event(session, event, account_id, actor)
            if purpose == "change_email":
                await audit.record(
                    session, actor=actor, action="account.contact_change", entity="account",
                    entity_id=account_id, business_id=None, after={"field": "email"},
                )  # fmt: skip
            return int(account_id)
    except IntegrityError:
        raise taken from None


async def send_verification(
    db: Database, account_id: int, *, verify_link: Link, now: datetime | None = None
) -> bool:
    """Another link to verify the account's e-mail (48 hours); False when there is nothing to
    verify (no address, or already verified)."""
    now = now or datetime.now(UTC)
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        if account is None:
            raise NotFound()
        if not account.email or account.email_verified_at is not None:
            return False
        return await _send_link(session, "verify_email", account.email, verify_link, now=now)


# --- the security page -------------------------------------------------------------------------


async def signed_in_devices(db: Database, account_id: int) -> list[profile.LiveSession]:
    """Where the person is signed in (every kind of session: the dashboard and the Mini App)."""
    async with db.transaction(account_id=account_id) as session:
        return await profile.live_sessions(session, account_id)


async def _password_holds(db: Database, account_id: int, password: str) -> str | None:
    """The account's e-mail when ``password`` is its password; else raise on ``password``."""
    async with db.transaction(account_id=account_id) as session:
        account = await live_account(session, account_id)
        if account is None:
            raise NotFound()
        stored, email = account.password_hash, account.email
    if not await _verify(password, stored):
        raise ValidationFailed(
            fields={"current_password": gettext(N_("The current password is wrong."))}
        )
    return email


async def change_password(
    db: Database, account_id: int, *, session_id: str, current: str, new: str, actor: Actor
) -> int:
    """A new password after the current one was given; every other session ends (this one
    stays). Returns how many sessions were ended."""
    email = await _password_holds(db, account_id, current)
    passwords.check_new_password(new, email=email)
    password_hash = await _hash(new)
    async with db.transaction(account_id=account_id) as session:
        ended = await session.scalar(_PASSWORD_SET, {"hash": password_hash, "keep": session_id})
        await _event(session, "password.changed", account_id, actor)
        return int(ended or 0)


async def request_email_change(
    db: Database,
    account_id: int,
    *,
    password: str,
    new_email: str,
    actor: Actor,
    change_link: Link,
    now: datetime | None = None,
) -> str:
    """A link to the new address (48 hours); the address changes when it is opened. The
    password is asked first. Returns the new address, normalized."""
    now = now or datetime.now(UTC)
    await _password_holds(db, account_id, password)
    address = otp.normalize_email(new_email)
    async with db.transaction(account_id=account_id) as session:
        await _send_link(session, "change_email", address, change_link, now=now)
        await _event(session, "email.change_requested", account_id, actor)
    return address


async def request_phone_change(
    db: Database,
    account_id: int,
    *,
    password: str,
    phone: str,
    actor: Actor,
    secret: str,
    locale: str,
) -> int:
    """An SMS code to the new phone (``app.domain.otp``), after the password; the challenge."""
    await _password_holds(db, account_id, password)
    async with db.transaction(account_id=account_id) as session:
        return await otp.request_contact_change(
            session, account_id=account_id, channel="sms", destination=phone, ip=actor.ip,
            secret=secret, locale=locale,
        )  # fmt: skip


async def confirm_phone_change(
    db: Database,
    account_id: int,
    *,
    challenge_id: int,
    phone: str,
    code: str,
    secret: str,
    actor: Actor,
) -> None:
    """The code sent to the new phone puts it on the account, verified."""
    async with db.transaction(account_id=account_id) as session:
        await otp.confirm_contact_change(
            session, account_id=account_id, channel="sms", challenge_id=challenge_id,
            destination=phone, code=code, secret=secret, actor=actor,
        )  # fmt: skip
        await _event(session, "phone.changed", account_id, actor)
