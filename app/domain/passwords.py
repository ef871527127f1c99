"""Passwords for dashboard accounts: bcrypt at cost 12, and the rules a new password must meet.

The rules follow NIST SP 800-63B 5.1.1.2: at least 8 characters, no composition rules, refused
when it is a commonly used password or the person's own e-mail. bcrypt reads at most 72 bytes;
rather than silently truncating (two passwords sharing 72 bytes would both open the account),
a longer password is refused with a message that says why — a Cyrillic letter takes 2 bytes.

bcrypt is deliberately slow (about a quarter of a second at cost 12): async callers run these
functions in a worker thread (``asyncio.to_thread``) so the event loop keeps serving.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import bcrypt

from app.domain.errors import ValidationFailed
from app.i18n import N_, gettext

COST = 12
MIN_CHARS = 8
MAX_BYTES = 72

_COMMON = Path(__file__).resolve().parent / "data" / "common-passwords.txt"


@cache
def _dummy_hash() -> bytes:
    # Checked against when there is no stored hash, so an unknown e-mail costs the same time
    # as a wrong password.
    return bcrypt.hashpw(b"no account has this password", bcrypt.gensalt(COST))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of commonly used passwords, lower-cased."""
    lines = _COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def hash_password(password: str) -> str:
    """The bcrypt hash (cost ``COST``) of a password that passed ``check_new_password``."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(COST)).decode("ascii")


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches the stored hash. With no stored hash (unknown e-mail,
    an account without a password) a dummy hash is still checked, so the time taken does not
    tell the two apart."""
    try:
        candidate = password.encode("utf-8")
    except UnicodeEncodeError:
        candidate = b""
    if len(candidate) > MAX_BYTES:
        # Never stored (refused at set time); still spend the same time.
        candidate = b""
        stored = None
    try:
        if stored is None:
            bcrypt.checkpw(candidate, _dummy_hash())
            return False
        return bcrypt.checkpw(candidate, stored.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """The untranslated reason ``password`` may not be set, or None when it may."""
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        return N_("The password contains characters that cannot be used.")
    if len(password) < MIN_CHARS:
        return N_("The password must be at least 8 characters long.")
    if size > MAX_BYTES:
        return N_(
            "The password is too long: at most 72 bytes. Letters of the Latin alphabet and digits "
            "take 1 byte each, Cyrillic letters 2 bytes each (so at most 36 Cyrillic letters)."
        )
    lowered = password.strip().lower()
    if lowered in common_passwords():
        return N_("This password is too common and easy to guess. Choose another one.")
    if email:
        address = email.strip().lower()
        local = address.split("@", 1)[0]
        if lowered in {address, local}:
            return N_("The password must not be your e-mail address.")
    return None


def check_new_password(password: str, *, email: str | None = None) -> None:
    """Raise ``ValidationFailed`` on the field ``password`` when it may not be set."""
    problem = password_problem(password, email=email)
    if problem is not None:
        raise ValidationFailed(fields={"password": gettext(problem)})
