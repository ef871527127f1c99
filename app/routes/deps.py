"""Named dependencies the handlers receive (provided once in ``app.main``)."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from app.db.session import Database
from app.settings import Settings

DB: TypeAlias = NamedDependency[Database]
AppSettings: TypeAlias = NamedDependency[Settings]
