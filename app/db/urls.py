"""DSN helpers: settings speak libpq (`postgresql://…`), SQLAlchemy wants its driver named."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

APP_ROLE = "pozapisi_app"
WORKER_ROLE = "pozapisi_worker"


def to_sqlalchemy(dsn: str) -> str:
    scheme, rest = dsn.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    return dsn


def to_libpq(dsn: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgresql") else dsn


def with_user(dsn: str, user: str) -> str:
    """The same server and database, logging in as ``user`` (trust/peer auth in development)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))
