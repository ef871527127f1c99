"""Typed settings, read once from the environment.

Every variable has a documented default that works on a developer's machine; a bad value stops
start-up with a message naming the variable, never a traceback deep inside a driver.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


LOCALES = ("ru", "kk", "en")
POOLERS = ("none", "transaction")
DEFAULT_LOCALE = "ru"
ALLOWED_REGIONS_DEFAULT = ("kz",)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None = None
    database_app_url: str | None = None
    database_worker_url: str | None = None
    test_database_url: str | None = None
    queue_url: str | None = None
    # "transaction" when DATABASE_APP_URL/DATABASE_WORKER_URL go through a transaction pooler
    # (PgBouncer pool_mode = transaction): no statement is kept prepared across transactions,
    # and what needs a session of its own (the workers' LISTEN, SAQ's Postgres queue) must be
    # given a direct connection (docs/deploy.md "PgBouncer")
    database_pooler: str = "none"
    # the workers' LISTEN connection (workers/wake.py); None: DATABASE_WORKER_URL
    database_listen_url: str | None = None
    telegram_bot_token: str = ""
    telegram_bot_username: str = "PoZapisiBot"
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_secret: str = ""
    sms_api_url: str | None = None
    sms_api_key: str = ""
    smtp_url: str | None = None
    mail_from: str = "PoZapisi <no-reply@pozapisi.kz>"
    secret_key: str = ""
    data_dir: Path = Path(".pozapisi")
    landing_base_url: str = "/"
    # where `mkdocs build` puts the landing that the app serves in development (None: site/)
    landing_site_dir: Path | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    default_timezone: str = "Asia/Almaty"
    outbound_tls_min: str = "1.3"
    sms_sender: str = "PoZapisi"
    # notification delivery: provider timeout, how long a claimed row stays claimed before
    # another worker may retry it (the claiming worker died), first retry delay (doubles)
    notify_timeout_s: float = 10.0
    notify_lease_s: float = 60.0
    notify_retry_base_s: float = 5.0
    storage_region: str = "kz"
    allowed_regions: tuple[str, ...] = ALLOWED_REGIONS_DEFAULT
    contact_email_info: str = "info@pozapisi.kz"
    contact_email_support: str = "support@pozapisi.kz"
    contact_phone_display: str = "+7 727 000 00 00"
    environment: str = "development"
    log_level: str = "INFO"
    # proxies whose X-Forwarded-For / Forwarded is believed (CIDRs; none by default)
    trusted_proxies: tuple[str, ...] = ()
    # database connections, a budget (README "Connections"): each pool's size and idle
    # lifetime; every process of `pozapisi run` and `pozapisi worker` checks at start that its
    # share fits the server's max_connections. A request waits db_pool_timeout_s for a
    # connection, then is answered 503 `unavailable` with Retry-After: db_retry_after_s.
    db_pool_size: int = 5
    db_pool_overflow: int = 5
    db_hot_pool_size: int = 10
    db_pool_idle_s: float = 30.0
    db_pool_timeout_s: float = 5.0
    db_connect_timeout_s: float = 2.0
    db_retry_after_s: int = 5
    health_timeout_s: float = 0.8
    worker_pool_size: int = 5
    worker_pool_overflow: int = 5
    queue_pool_size: int = 4
    # rate limits (app.security.limits): (requests, window seconds), set as RATE_LIMIT_<NAME>
    # = "10/minute" or "50/15 minutes"; each counted in PostgreSQL, so it holds across
    # processes and servers. Per Telegram user (sign_in: /auth/telegram and the initData
    # header), per client network (*_ip), per account (the rest; booking per Telegram user
    # or account, one count for the API and the Mini App).
    rate_limit_sign_in: tuple[int, int] = (20, 60)
    rate_limit_sign_in_ip: tuple[int, int] = (60, 60)
    rate_limit_contact_change: tuple[int, int] = (10, 3600)
    rate_limit_messages: tuple[int, int] = (20, 60)
    rate_limit_export: tuple[int, int] = (5, 3600)
    rate_limit_delete: tuple[int, int] = (5, 3600)
    rate_limit_booking: tuple[int, int] = (20, 3600)
    rate_limit_password: tuple[int, int] = (10, 900)
    rate_limit_password_ip: tuple[int, int] = (50, 900)
    # dashboard sign-ups per network; reset links asked per address (and per network with
    # the password_ip count)
    rate_limit_signup_ip: tuple[int, int] = (10, 3600)
    rate_limit_reset: tuple[int, int] = (5, 3600)
    # encrypted backups (app.domain.backups, docs/deploy.md "Backups"): where they go, the key
    # (base64 of 32 random bytes, kept apart from them) and how long they are kept (policy 6.2,
    # at most BACKUP_MAX_KEEP_DAYS so an erased person leaves every backup within 30 days)
    backup_dir: Path | None = None
    backup_key: str = ""
    backup_keep_days: int = 30
    backup_region: str = "kz"  # where BACKUP_DIR's volume stands: in ALLOWED_REGIONS (6.1)
    # business days a data-subject request has (app.domain.data_requests.due_on): the policy
    # promises 10 (8.6); the Law may give some requests fewer, so it can be lowered, never raised
    data_request_due_days: int = 10

    # invoices (app.domain.invoices): PoZapisi as the seller its invoices name, and VAT: a rate
    # in percent (INVOICE_VAT_RATE, prices include it), or none — not a VAT payer, "Без НДС"
    seller_name: str = "ТОО «PoZapisi»"
    seller_bin: str = ""
    seller_address: str = "Қазақстан, Алматы"
    seller_bank: str = ""
    seller_iban: str = ""
    seller_bik: str = ""
    invoice_vat_rate: Decimal | None = None
    invoice_due_days: int = 10
    # payments (app.domain.payments, CloudPayments): the API's address, the site's Public ID and
    # API secret (which also signs its notifications); with none set, a development page of
    # the app plays the provider (refused in production). Notifications older than
    # payment_callback_max_age_s are refused (a replay).
    payment_api_url: str = ""
    payment_public_id: str = ""
    payment_api_secret: str = ""
    payment_callback_max_age_s: int = 3 * 24 * 3600

    @property
    def payments_configured(self) -> bool:
        return bool(self.payment_api_url and self.payment_public_id and self.payment_api_secret)

    @property
    def backups_configured(self) -> bool:
        return self.backup_dir is not None and bool(self.backup_key)

    @property
    def transaction_pooler(self) -> bool:
        """The app's and workers' connections go through a transaction pooler."""
        return self.database_pooler == "transaction"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


def _dsn(name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(
            f"{name} must be a libpq URL such as postgresql://user@127.0.0.1:5432/db "
            f"(got scheme {parts.scheme!r})"
        )
    return value


def _url(name: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise SettingsError(f"{name} must be a URL with scheme {' or '.join(schemes)}")
    return value.rstrip("/")


def _seconds(name: str, value: str | None, default: float, *, at_least: float) -> float:
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds") from None
    if not seconds >= at_least:  # also refuses NaN
        raise SettingsError(f"{name} must be at least {at_least:g} seconds")
    return seconds


def _count(name: str, value: str | None, default: int, *, at_least: int) -> int:
    if value is None or value == "":
        return default
    try:
        count = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None
    if count < at_least:
        raise SettingsError(f"{name} must be at least {at_least}")
    return count


BACKUP_KEY_BYTES = 32
BACKUP_MAX_KEEP_DAYS = 30  # privacy policy 6.2/10.5 with erasure: gone from backups in 30 days

POLICY_DUE_DAYS = 10  # privacy policy 8.6: "Reply within 10 business days"


def _due_days(value: str | None) -> int:
    days = _count("DATA_REQUEST_DUE_DAYS", value, POLICY_DUE_DAYS, at_least=1)
    if days > POLICY_DUE_DAYS:
        raise SettingsError(
            f"DATA_REQUEST_DUE_DAYS={days} is refused: the privacy policy promises a reply within "
            f"{POLICY_DUE_DAYS} business days (8.6)"
        )
    return days


def _billing_settings(get: Callable[[str], str | None]) -> dict[str, Any]:
    """Seller details, VAT and the payment provider (issue 16); a bad value stops start-up."""
    raw_vat = (get("INVOICE_VAT_RATE") or "").strip()
    vat: Decimal | None = None
    if raw_vat:
        try:
            vat = Decimal(raw_vat)
        except InvalidOperation:
            vat = Decimal(-1)
        if not Decimal(0) < vat < Decimal(100):
            raise SettingsError(
                f"INVOICE_VAT_RATE={raw_vat!r}: a percent above 0 and below 100 (e.g. 12), "
                "or empty when PoZapisi is not a VAT payer"
            )
    seller_bin = (get("SELLER_BIN") or "").strip()
    if seller_bin and not (len(seller_bin) == 12 and seller_bin.isdigit()):
        raise SettingsError(f"SELLER_BIN={seller_bin!r}: the company's 12-digit BIN")
    api_url = _url("PAYMENT_API_URL", get("PAYMENT_API_URL"), ("http", "https")) or ""
    return {
        "seller_name": get("SELLER_NAME") or "ТОО «PoZapisi»",
        "seller_bin": seller_bin,
        "seller_address": get("SELLER_ADDRESS") or "Қазақстан, Алматы",
        "seller_bank": get("SELLER_BANK") or "",
        "seller_iban": get("SELLER_IBAN") or "",
        "seller_bik": get("SELLER_BIK") or "",
        "invoice_vat_rate": vat,
        "invoice_due_days": _count("INVOICE_DUE_DAYS", get("INVOICE_DUE_DAYS"), 10, at_least=1),
        "payment_api_url": api_url.rstrip("/"),
        "payment_public_id": get("PAYMENT_PUBLIC_ID") or "",
        "payment_api_secret": get("PAYMENT_API_SECRET") or "",
        "payment_callback_max_age_s": _count(
            "PAYMENT_CALLBACK_MAX_AGE_SECONDS",
            get("PAYMENT_CALLBACK_MAX_AGE_SECONDS"),
            3 * 24 * 3600,
            at_least=60,
        ),
    }


def decode_backup_key(value: str) -> bytes:
    """BACKUP_KEY as ``openssl rand -base64 32`` prints it → the 32-byte AES-256 key.

    Refused: anything that is not base64, a key of another length, and a key that cannot have
    come from a random source (fewer than 16 different byte values; 32 random bytes have ~30)."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(
            "BACKUP_KEY is not base64: make one with `openssl rand -base64 32`"
        ) from None
    if len(key) != BACKUP_KEY_BYTES:
        raise SettingsError(
            f"BACKUP_KEY must be {BACKUP_KEY_BYTES} bytes in base64 (it decodes to {len(key)}): "
            "make one with `openssl rand -base64 32`"
        )
    if len(set(key)) < 16:
        raise SettingsError(
            "BACKUP_KEY does not look random (too few different bytes): make one with "
            "`openssl rand -base64 32`"
        )
    return key


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _backup_settings(
    get: Callable[[str], str | None], data_dir: Path, storage_region: str, regions: tuple[str, ...]
) -> dict[str, Any]:
    """BACKUP_DIR/BACKUP_KEY/BACKUP_KEEP_DAYS/BACKUP_REGION: a bad value stops every process
    at start."""
    backup_region = (get("BACKUP_REGION") or storage_region).lower()
    if backup_region not in regions:
        raise SettingsError(
            f"BACKUP_REGION={backup_region!r} is outside ALLOWED_REGIONS {regions}: the privacy "
            "policy promises data stays in Kazakhstan, backups included (section 6)"
        )
    key = get("BACKUP_KEY") or ""
    if key:
        decode_backup_key(key)
    raw_dir = get("BACKUP_DIR") or ""
    backup_dir = Path(raw_dir) if raw_dir else None
    if backup_dir is not None:
        if not key:
            raise SettingsError(
                "BACKUP_DIR is set but BACKUP_KEY is not: backups are only ever written encrypted"
            )
        if _inside(backup_dir, data_dir):
            raise SettingsError(
                f"BACKUP_DIR={raw_dir} is inside DATA_DIR ({data_dir}): backups must be stored "
                "apart from the data they protect (privacy policy 6.2), on another volume"
            )
    keep_days = _count("BACKUP_KEEP_DAYS", get("BACKUP_KEEP_DAYS"), 30, at_least=1)
    if keep_days > BACKUP_MAX_KEEP_DAYS:
        raise SettingsError(
            f"BACKUP_KEEP_DAYS={keep_days} is refused: the privacy policy promises that an "
            f"erased person is gone from every backup within {BACKUP_MAX_KEEP_DAYS} days, so "
            f"backups are kept {BACKUP_MAX_KEEP_DAYS} days at most"
        )
    return {
        "backup_dir": backup_dir,
        "backup_key": key.strip(),
        "backup_keep_days": keep_days,
        "backup_region": backup_region,
    }


def _pool_settings(get: Callable[[str], str | None]) -> dict[str, Any]:
    """Connection pools: sizes, idle lifetime, how long to wait (README "Connections")."""
    return {
        "db_pool_size": _count("DB_POOL_SIZE", get("DB_POOL_SIZE"), 5, at_least=1),
        "db_pool_overflow": _count("DB_POOL_OVERFLOW", get("DB_POOL_OVERFLOW"), 5, at_least=0),
        "db_hot_pool_size": _count("DB_HOT_POOL_SIZE", get("DB_HOT_POOL_SIZE"), 10, at_least=1),
        "db_pool_idle_s": _seconds(
            "DB_POOL_IDLE_SECONDS", get("DB_POOL_IDLE_SECONDS"), 30.0, at_least=1.0
        ),
        "db_pool_timeout_s": _seconds(
            "DB_POOL_TIMEOUT_SECONDS", get("DB_POOL_TIMEOUT_SECONDS"), 5.0, at_least=0.1
        ),
        "db_connect_timeout_s": _seconds(
            "DB_CONNECT_TIMEOUT_SECONDS", get("DB_CONNECT_TIMEOUT_SECONDS"), 2.0, at_least=0.1
        ),
        "db_retry_after_s": _count(
            "DB_RETRY_AFTER_SECONDS", get("DB_RETRY_AFTER_SECONDS"), 5, at_least=1
        ),
        "health_timeout_s": _seconds(
            "HEALTH_TIMEOUT_SECONDS", get("HEALTH_TIMEOUT_SECONDS"), 0.8, at_least=0.1
        ),
        "worker_pool_size": _count("WORKER_POOL_SIZE", get("WORKER_POOL_SIZE"), 5, at_least=2),
        "worker_pool_overflow": _count(
            "WORKER_POOL_OVERFLOW", get("WORKER_POOL_OVERFLOW"), 5, at_least=0
        ),
        "queue_pool_size": _count("QUEUE_POOL_SIZE", get("QUEUE_POOL_SIZE"), 4, at_least=2),
    }


# --- rate limits (app.security.limits) ---
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*(second|minute|hour|day)s?\s*$", re.I)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _rate(name: str, value: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """``"10/minute"``, ``"50/15 minutes"``, ``"5 per hour"`` → (requests, window seconds)."""
    if value is None or value.strip() == "":
        return default
    match = _RATE.match(value)
    if not match or int(match[1]) < 1 or match[2] == "0":
        raise SettingsError(
            f"{name} must look like 10/minute or 50/15 minutes (a count of at least 1 per "
            "second, minute, hour or day)"
        )
    seconds = int(match[2] or 1) * _UNIT_SECONDS[match[3].lower()]
    if seconds > 86400:  # the counters' rows live two windows; a day bounds what they hold
        raise SettingsError(f"{name}: a window longer than a day is not supported")
    return int(match[1]), seconds


def _rate_limit_settings(get: Callable[[str], str | None]) -> dict[str, Any]:
    return {
        field: _rate(field.upper(), get(field.upper()), default)
        for field, default in (
            (f.name, f.default)
            for f in msgspec.structs.fields(Settings)
            if f.name.startswith("rate_limit_")
        )
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``env`` (default ``os.environ``), validating every value."""
    env = os.environ if env is None else env
    get = env.get
    environment = get("POZAPISI_ENV", "development")
    if environment not in ("development", "test", "production"):
        raise SettingsError("POZAPISI_ENV must be development, test or production")

    secret_key = get("SECRET_KEY", "")
    if environment == "production" and len(secret_key) < 32:
        raise SettingsError("SECRET_KEY must be set to at least 32 characters in production")
    if secret_key and len(secret_key) < 16:
        raise SettingsError(
            "SECRET_KEY is too short: use at least 16 characters (32 in production)"
        )

    queue_url = _url("QUEUE_URL", get("QUEUE_URL"), ("postgresql", "postgres", "redis", "rediss"))
    pooler = (get("DATABASE_POOLER") or "none").strip().lower()
    if pooler not in POOLERS:
        raise SettingsError(
            f"DATABASE_POOLER={pooler!r}: none (the app connects to PostgreSQL itself, or through "
            "PgBouncer in session mode) or transaction (PgBouncer in pool_mode = transaction)"
        )
    tls_min = get("OUTBOUND_TLS_MIN", "1.3")
    if tls_min not in ("1.2", "1.3"):
        raise SettingsError("OUTBOUND_TLS_MIN must be 1.2 or 1.3")

    regions = tuple(
        r.strip().lower()
        for r in get("ALLOWED_REGIONS", ",".join(ALLOWED_REGIONS_DEFAULT)).split(",")
        if r.strip()
    )
    region = get("STORAGE_REGION", "kz").lower()
    if region not in regions:
        raise SettingsError(
            f"STORAGE_REGION={region!r} is outside ALLOWED_REGIONS {regions}: the privacy policy "
            "promises data stays in Kazakhstan (section 6)"
        )

    token = get("TELEGRAM_BOT_TOKEN", "")
    if token and ":" not in token:
        raise SettingsError("TELEGRAM_BOT_TOKEN must look like 123456:ABC… (as BotFather gives it)")

    tz = get("DEFAULT_TIMEZONE", "Asia/Almaty")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except Exception as exc:
        raise SettingsError(f"DEFAULT_TIMEZONE={tz!r} is not an IANA time zone") from exc

    notify_timeout = _seconds(
        "NOTIFY_TIMEOUT_SECONDS", get("NOTIFY_TIMEOUT_SECONDS"), 10.0, at_least=0.1
    )
    notify_lease = _seconds("NOTIFY_LEASE_SECONDS", get("NOTIFY_LEASE_SECONDS"), 60.0, at_least=1.0)
    if notify_lease < notify_timeout + 2:
        # a worker still waiting for the provider must not see its rows handed to another
        raise SettingsError(
            "NOTIFY_LEASE_SECONDS must exceed NOTIFY_TIMEOUT_SECONDS by 2 seconds at least"
        )

    public_base_url = get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    proxies = []
    for entry in get("TRUSTED_PROXIES", "").split(","):
        if entry.strip():
            try:
                proxies.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise SettingsError(
                    f"TRUSTED_PROXIES: {entry.strip()!r} is not an IP address or network "
                    "(give a comma-separated list such as 10.0.0.5,192.168.0.0/24)"
                ) from None
    data_dir = Path(get("DATA_DIR", ".pozapisi"))
    try:
        return Settings(
            database_url=_dsn("DATABASE_URL", get("DATABASE_URL")),
            database_app_url=_dsn("DATABASE_APP_URL", get("DATABASE_APP_URL")),
            database_worker_url=_dsn("DATABASE_WORKER_URL", get("DATABASE_WORKER_URL")),
            test_database_url=_dsn("TEST_DATABASE_URL", get("TEST_DATABASE_URL")),
            queue_url=queue_url,
            database_pooler=pooler,
            database_listen_url=_dsn("DATABASE_LISTEN_URL", get("DATABASE_LISTEN_URL")),
            telegram_bot_token=token,
            telegram_bot_username=get("TELEGRAM_BOT_USERNAME", "PoZapisiBot"),
            telegram_api_url=_url("TELEGRAM_API_URL", get("TELEGRAM_API_URL"), ("http", "https"))
            or "https://api.telegram.org",
            telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET", ""),
            sms_api_url=_url("SMS_API_URL", get("SMS_API_URL"), ("http", "https")),
            sms_api_key=get("SMS_API_KEY", ""),
            smtp_url=_url("SMTP_URL", get("SMTP_URL"), ("smtp", "smtps")),
            mail_from=get("MAIL_FROM", "PoZapisi <no-reply@pozapisi.kz>"),
            secret_key=secret_key,
            data_dir=data_dir,
            # in development the app serves the landing itself (app/landing.py)
            landing_base_url=get("LANDING_BASE_URL")
            or (public_base_url if environment == "development" else "/"),
            landing_site_dir=Path(site_dir) if (site_dir := get("LANDING_SITE_DIR")) else None,
            public_base_url=public_base_url,
            default_timezone=tz,
            outbound_tls_min=tls_min,
            sms_sender=get("SMS_SENDER", "PoZapisi")[:11],  # alphanumeric sender ids: 11 max
            notify_timeout_s=notify_timeout,
            notify_lease_s=notify_lease,
            notify_retry_base_s=_seconds(
                "NOTIFY_RETRY_BASE_SECONDS", get("NOTIFY_RETRY_BASE_SECONDS"), 5.0, at_least=0.01
            ),
            storage_region=region,
            allowed_regions=regions,
            contact_email_info=get("CONTACT_EMAIL_INFO", "info@pozapisi.kz"),
            contact_email_support=get("CONTACT_EMAIL_SUPPORT", "support@pozapisi.kz"),
            contact_phone_display=get("CONTACT_PHONE_DISPLAY", "+7 727 000 00 00"),
            environment=environment,
            log_level=get("LOG_LEVEL", "INFO").upper(),
            trusted_proxies=tuple(proxies),
            data_request_due_days=_due_days(get("DATA_REQUEST_DUE_DAYS")),
            **_pool_settings(get),
            **_rate_limit_settings(get),
            **_backup_settings(get, data_dir, region, regions),
            **_billing_settings(get),
        )
    except msgspec.ValidationError as exc:  # pragma: no cover - all fields are validated above
        raise SettingsError(str(exc)) from exc


def secret_key_for(settings: Settings) -> str:
    """The signing key: configured, else one generated and kept under DATA_DIR (development)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
