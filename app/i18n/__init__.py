"""Languages: ru (default), kk, en.

The active locale lives in a ContextVar, so concurrent requests never see each other's language
(a per-request ``install_gettext_translations`` on a shared Jinja environment would mix them).
Jinja gets callables, installed once, that read the ContextVar.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations

LOCALES = ("ru", "kk", "en")
DEFAULT_LOCALE = "ru"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

_current: ContextVar[str] = ContextVar("pozapisi_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> NullTranslations:
    return Translations.load(str(LOCALE_DIR), [locale], domain="messages")


def get_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return str(translations(_current.get()).pgettext(context, message))


_ = gettext


def N_(message: str) -> str:
    """Mark a string for extraction; translate it later with ``gettext``."""
    return message


def pick_locale(
    explicit: str | None = None,
    telegram_language: str | None = None,
    accept_language: str | None = None,
) -> str:
    """Explicit choice → Telegram ``language_code`` → ``Accept-Language`` → ru."""
    for candidate in (explicit, telegram_language):
        if candidate:
            code = candidate.split("-")[0].lower()
            if code in LOCALES:
                return code
    if accept_language:
        weighted: list[tuple[float, int, str]] = []
        for position, part in enumerate(accept_language.split(",")):
            piece = part.strip()
            if not piece:
                continue
            tag, _sep, params = piece.partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            code = tag.strip().split("-")[0].lower()
            if code in LOCALES and quality > 0:
                weighted.append((-quality, position, code))
        if weighted:
            return min(weighted)[2]
    return DEFAULT_LOCALE


def localized(names: dict[str, str] | None, locale: str | None = None) -> str:
    """Pick a per-language value (service names): the locale, else ru, else any."""
    if not names:
        return ""
    locale = locale or _current.get()
    return names.get(locale) or names.get(DEFAULT_LOCALE) or next(iter(names.values()))


def money(tiyn: int, currency: str = "KZT", locale: str | None = None) -> str:
    """Tenge the way Kazakhstan writes it in every language: ``5 000 ₸`` (tiyn only when any)."""
    amount = Decimal(tiyn) / 100
    locale = locale or _current.get()
    if currency != "KZT":
        return format_currency(amount, currency, locale=locale)
    pattern = "#,##0" if amount == amount.to_integral_value() else "#,##0.00"
    return f"{format_decimal(amount, format=pattern, locale=locale)}\u00a0₸"


def fmt_date(value: date, format: str = "medium", locale: str | None = None) -> str:
    return format_date(value, format=format, locale=locale or _current.get())


def fmt_time(value: datetime, format: str = "short", locale: str | None = None) -> str:
    return format_time(value, format=format, locale=locale or _current.get())


def fmt_datetime(value: datetime, format: str = "medium", locale: str | None = None) -> str:
    return format_datetime(value, format=format, locale=locale or _current.get())


def language_name(locale: str) -> str:
    return (Locale.parse(locale).get_display_name(locale) or locale).capitalize()
