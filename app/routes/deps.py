"""Named dependencies the handlers receive (provided once in ``app.main``)."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from app.db.session import Database
from app.integrations.telegram_webapp import InitData
from app.security.web import Viewer
from app.settings import Settings

DB: TypeAlias = NamedDependency[Database]
AppSettings: TypeAlias = NamedDependency[Settings]
SignedIn: TypeAlias = NamedDependency[Viewer]  # signed in; unsafe methods checked for CSRF
MaybeSignedIn: TypeAlias = NamedDependency[Viewer | None]
Telegram: TypeAlias = NamedDependency[InitData]  # /api/v1: Authorization: tma <initData>
MaybeTelegram: TypeAlias = NamedDependency[InitData | None]
