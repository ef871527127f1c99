"""A business's own settings, as its owner changes them in the dashboard: the booking rules
(confirmation, slot step, notice, horizon, deadlines, the per-client cap, reminders and
channels, public holidays) and the profile (name, address, phone, time zone, languages).

Forms arrive as text; each function here checks every field, answers ``ValidationFailed``
with a message per field (in the user's language) when one is wrong — nothing is written then
— and otherwise writes the changed columns and one audit entry with their values before and
after, in one transaction acting for the member's business. The columns are the one truth:
the slot engine, the booking path and the Mini App read them on their next request (a change
moves the business's ``schedule_version``, so cached availability is fetched again).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from app.db.session import Database
from app.domain import audit
from app.domain.audit import Actor
from app.domain.bookings import sqlstate_of
from app.domain.errors import NotFound, ValidationFailed
from app.domain.members import Member
from app.domain.otp import normalize_phone
from app.domain.staff_accounts import check_slug
from app.i18n import N_, gettext
from app.models import Business

# --- what may be chosen ---------------------------------------------------------------------

LANGUAGES = ("ru", "kk", "en")
# Kazakhstan has one zone, UTC+5, since 2024-03-01; tzdata still names two of its cities
TIMEZONES = ("Asia/Almaty", "Asia/Qostanay")
SLOT_STEPS = (5, 10, 15, 20, 30, 45, 60, 90, 120)  # offered; any 5..240 is accepted
REMINDER_CHOICES = (15, 30, 60, 120, 180, 360, 720, 1440, 2880)  # minutes before the visit
UNITS = {"min": 1, "h": 60, "d": 1440}

SLOT_STEP_RANGE = (5, 240)  # the database's own check (ck_businesses_slot_step)
HORIZON_RANGE = (1, 366)  # ck_businesses_horizon
CAP_RANGE = (1, 100)  # ck_businesses_active_cap
DEADLINE_RANGE = (0, 10080)  # minutes; ck_businesses_reschedule_deadline (a week)
PENDING_TTL_RANGE = (5, 10080)  # five minutes to a week to confirm
NOTICE_RANGE = (0, 43200)  # up to 30 days ahead
NAME_MAX = 200
ADDRESS_MAX = 300

RULE_COLUMNS = (
    "auto_confirm", "pending_ttl_min", "slot_step_min", "min_notice_min", "horizon_days",
    "cancel_deadline_min", "reschedule_deadline_min", "max_active_bookings_per_client",
    "reminder_offsets_min", "notify_telegram", "notify_sms", "notify_email",
    "observe_public_holidays",
)  # fmt: skip
PROFILE_COLUMNS = ("name", "slug", "address", "phone", "timezone", "languages")

_DIGITS = re.compile(r"^[0-9]{1,6}$")


@dataclass(frozen=True, slots=True)
class Rules:
    """The booking rules the settings page shows and changes."""

    auto_confirm: bool
    pending_ttl_min: int
    slot_step_min: int
    min_notice_min: int
    horizon_days: int
    cancel_deadline_min: int
    reschedule_deadline_min: int
    max_active_bookings_per_client: int
    reminder_offsets_min: tuple[int, ...]
    notify_telegram: bool
    notify_sms: bool
    notify_email: bool
    observe_public_holidays: bool


@dataclass(frozen=True, slots=True)
class Profile:
    """What clients see of the business: its name, address (slug), contacts, zone, languages."""

    name: str
    slug: str
    address: str | None
    phone: str | None
    timezone: str
    languages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the settings page shows."""

    business_id: int
    rules: Rules
    profile: Profile


def _rules_of(business: Business) -> Rules:
    values = {name: getattr(business, name) for name in RULE_COLUMNS}
    values["reminder_offsets_min"] = tuple(sorted(business.reminder_offsets_min, reverse=True))
    return Rules(**values)


def _profile_of(business: Business) -> Profile:
    return Profile(
        name=business.name, slug=business.slug, address=business.address, phone=business.phone,
        timezone=business.timezone, languages=tuple(business.languages),
    )  # fmt: skip


def _owner_only(member: Member) -> None:
    # the route's guard asks for the owner already; the rule stays true for any other caller
    if not member.at_least("owner"):
        raise NotFound()


async def settings_of(db: Database, member: Member) -> Settings:
    """The business's current rules and profile."""
    _owner_only(member)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        business = await s.get(Business, member.business_id)
        if business is None:
            raise NotFound()
        return Settings(business.id, _rules_of(business), _profile_of(business))


# --- the forms, as text ------------------------------------------------------------------------


def in_unit(minutes: int) -> tuple[int, str]:
    """A length in the largest unit that holds it whole: 1440 → (1, "d"), 90 → (90, "min")."""
    for unit in ("d", "h"):
        if minutes and minutes % UNITS[unit] == 0:
            return minutes // UNITS[unit], unit
    return minutes, "min"


def form_values(settings: Settings) -> dict[str, str]:
    """The settings as the forms send them (field name → text), to fill the forms."""
    rules, profile = settings.rules, settings.profile
    values: dict[str, str] = {
        "confirmation": "auto" if rules.auto_confirm else "manual",
        "slot_step": str(rules.slot_step_min),
        "horizon": str(rules.horizon_days),
        "max_active": str(rules.max_active_bookings_per_client),
        "name": profile.name,
        "slug": profile.slug,
        "address": profile.address or "",
        "phone": profile.phone or "",
        "timezone": profile.timezone,
    }
    for name, minutes in (
        ("pending_ttl", rules.pending_ttl_min),
        ("min_notice", rules.min_notice_min),
        ("cancel_deadline", rules.cancel_deadline_min),
        ("reschedule_deadline", rules.reschedule_deadline_min),
    ):
        number, unit = in_unit(minutes)
        values[name], values[f"{name}_unit"] = str(number), unit
    for minutes in rules.reminder_offsets_min:
        values[f"remind_{minutes}"] = "on"
    for channel in ("telegram", "sms", "email"):
        if getattr(rules, f"notify_{channel}"):
            values[f"notify_{channel}"] = "on"
    if rules.observe_public_holidays:
        values["holidays"] = "on"
    for code in profile.languages:
        values[f"lang_{code}"] = "on"
    return values


# --- reading the forms ------------------------------------------------------------------------


def _message_between(low: int, high: int) -> str:
    return gettext(N_("Enter a whole number from %(low)s to %(high)s.")) % {
        "low": low,
        "high": high,
    }


def _whole(form: Mapping[str, str], name: str, low: int, high: int, errors: dict[str, str]) -> int:
    raw = (form.get(name) or "").strip()
    if not _DIGITS.match(raw) or not low <= int(raw) <= high:
        errors[name] = _message_between(low, high)
        return low
    return int(raw)


def _duration(
    form: Mapping[str, str], name: str, low: int, high: int, errors: dict[str, str]
) -> int:
    """A length given as a number and a unit (``<name>`` and ``<name>_unit``: min, h or d), in
    minutes, within ``low``..``high`` minutes."""
    raw = (form.get(name) or "").strip()
    unit = UNITS.get(form.get(f"{name}_unit") or "min")
    if unit is None or not _DIGITS.match(raw):
        errors[name] = gettext(N_("Enter a whole number."))
        return low
    minutes = int(raw) * unit
    if not low <= minutes <= high:
        errors[name] = gettext(
            N_("Choose a time from %(low)s to %(high)s.")
        ) % {"low": _spoken(low), "high": _spoken(high)}  # fmt: skip
        return low
    return minutes


def _spoken(minutes: int) -> str:
    """A limit as people say it: 10080 → "7 d", 120 → "2 h", 45 → "45 min"."""
    if minutes and minutes % 1440 == 0:
        return gettext(N_("%(n)s d")) % {"n": minutes // 1440}
    if minutes and minutes % 60 == 0:
        return gettext(N_("%(n)s h")) % {"n": minutes // 60}
    return gettext(N_("%(n)s min")) % {"n": minutes}


def _checked(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) in ("on", "1", "true", "yes")


def read_rules(form: Mapping[str, str]) -> Rules:
    """The booking rules a settings form sends; ``ValidationFailed`` with every wrong field."""
    errors: dict[str, str] = {}
    confirmation = form.get("confirmation")
    if confirmation not in ("auto", "manual"):
        errors["confirmation"] = gettext(N_("Choose how bookings are confirmed."))
    offsets = tuple(
        m for m in sorted(REMINDER_CHOICES, reverse=True) if _checked(form, f"remind_{m}")
    )
    channels = {c: _checked(form, f"notify_{c}") for c in ("telegram", "sms", "email")}
    if not any(channels.values()):
        errors["notify"] = gettext(N_("Choose at least one way to reach clients."))
    rules = Rules(
        auto_confirm=confirmation != "manual",
        pending_ttl_min=_duration(form, "pending_ttl", *PENDING_TTL_RANGE, errors),
        slot_step_min=_whole(form, "slot_step", *SLOT_STEP_RANGE, errors),
        min_notice_min=_duration(form, "min_notice", *NOTICE_RANGE, errors),
        horizon_days=_whole(form, "horizon", *HORIZON_RANGE, errors),
        cancel_deadline_min=_duration(form, "cancel_deadline", *DEADLINE_RANGE, errors),
        reschedule_deadline_min=_duration(form, "reschedule_deadline", *DEADLINE_RANGE, errors),
        max_active_bookings_per_client=_whole(form, "max_active", *CAP_RANGE, errors),
        reminder_offsets_min=offsets,
        notify_telegram=channels["telegram"],
        notify_sms=channels["sms"],
        notify_email=channels["email"],
        observe_public_holidays=_checked(form, "holidays"),
    )
    if confirmation == "auto" and "pending_ttl" in errors:
        # the time to confirm matters only to a business that confirms by hand
        del errors["pending_ttl"]
    if errors:
        raise ValidationFailed(fields=errors)
    return rules


def read_profile(form: Mapping[str, str], *, current_slug: str | None = None) -> Profile:
    """The profile a form sends, tidied (spaces, the phone in E.164, the slug in lower case);
    ``ValidationFailed`` with every wrong field. The business's own slug, unchanged, stands
    whatever rule it was made under."""
    errors: dict[str, str] = {}
    name = " ".join((form.get("name") or "").split())
    if not 2 <= len(name) <= NAME_MAX:
        errors["name"] = gettext(N_("The business name must be 2 to 200 characters long."))
    slug = (form.get("slug") or "").strip().lower()
    try:
        if slug != current_slug:
            check_slug(slug)
    except ValidationFailed as refused:
        errors.update(refused.fields)
    address = " ".join((form.get("address") or "").split()) or None
    if address is not None and len(address) > ADDRESS_MAX:
        errors["address"] = gettext(N_("At most %(n)s characters.")) % {"n": ADDRESS_MAX}
    phone: str | None = None
    if (form.get("phone") or "").strip():
        try:
            phone = normalize_phone(form.get("phone", ""), landline=True)
        except ValidationFailed as refused:
            errors.update(refused.fields)
    timezone = form.get("timezone") or TIMEZONES[0]
    if timezone not in TIMEZONES:
        errors["timezone"] = gettext(N_("Choose a time zone from the list."))
    languages = tuple(code for code in LANGUAGES if _checked(form, f"lang_{code}"))
    if not languages:
        errors["languages"] = gettext(N_("Choose at least one language."))
    if errors:
        raise ValidationFailed(fields=errors)
    return Profile(name, slug, address, phone, timezone, languages)


# --- writing ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


async def _apply(
    db: Database,
    member: Member,
    actor: Actor,
    values_for: Callable[[Business], Mapping[str, Any]],
    action: str,
) -> dict[str, tuple[Any, Any]]:
    """Write the columns that differ from ``values_for(business)`` (which may refuse them) and
    audit them; returns {column: (before, after)}."""
    _owner_only(member)
    async with db.transaction(business_id=member.business_id, account_id=member.account_id) as s:
        business = await s.get(Business, member.business_id, with_for_update=True)
        if business is None:
            raise NotFound()
        changes = values_for(business)
        changed = {
            column: (_plain(getattr(business, column)), _plain(value))
            for column, value in changes.items()
            if _plain(getattr(business, column)) != _plain(value)
        }
        if not changed:
            return {}
        if "slug" in changed and await s.scalar(
            select(exists().where(Business.slug == changes["slug"], Business.id != business.id))
        ):
            raise ValidationFailed(fields={"slug": gettext(N_("This address is already taken."))})
        for column, (_before, after) in changed.items():
            setattr(business, column, after)
        try:
            await s.flush()
        except IntegrityError as exc:  # a slug taken a moment ago by another business
            if sqlstate_of(exc) == "23505":
                raise ValidationFailed(
                    fields={"slug": gettext(N_("This address is already taken."))}
                ) from exc
            raise
        await audit.record(
            s, actor=actor, action=action, entity="business", entity_id=business.id,
            business_id=business.id,
            before={c: before for c, (before, _a) in changed.items()},
            after={c: after for c, (_b, after) in changed.items()},
        )  # fmt: skip
        return changed


async def change_rules(
    db: Database, member: Member, form: Mapping[str, str], *, actor: Actor
) -> dict[str, tuple[Any, Any]]:
    """Check and save the booking rules a settings form sends (the owner only); what changed."""
    rules = read_rules(form)
    values = {f.name: getattr(rules, f.name) for f in fields(rules)}
    if rules.auto_confirm:
        # a business that confirms automatically keeps its last time to confirm for later
        values.pop("pending_ttl_min")
    return await _apply(db, member, actor, lambda _business: values, "business.settings")


async def change_profile(
    db: Database, member: Member, form: Mapping[str, str], *, actor: Actor
) -> dict[str, tuple[Any, Any]]:
    """Check and save the profile a form sends (the owner only); what changed."""

    def values_for(business: Business) -> dict[str, Any]:
        profile = read_profile(form, current_slug=business.slug)
        return {f.name: getattr(profile, f.name) for f in fields(profile)}

    return await _apply(db, member, actor, values_for, "business.profile")
