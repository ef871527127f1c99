"""Named dependencies the handlers receive (provided once in ``app.main``)."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from app.db.session import Database
from app.domain.members import Member
from app.integrations.telegram_webapp import InitData
from app.security.dashboard import Dashboard
from app.security.web import Viewer
from app.settings import Settings

DB: TypeAlias = NamedDependency[Database]
AppSettings: TypeAlias = NamedDependency[Settings]
SignedIn: TypeAlias = NamedDependency[Viewer]  # signed in; unsafe methods checked for CSRF
MaybeSignedIn: TypeAlias = NamedDependency[Viewer | None]
Telegram: TypeAlias = NamedDependency[InitData]  # /api/v1: Authorization: tma <initData>
MaybeTelegram: TypeAlias = NamedDependency[InitData | None]
# the business dashboard (app.security.dashboard): the signed-in person, and the member acting
# for the session's business with the role a handler's dependencies=role(...) asks for
SignedInDashboard: TypeAlias = NamedDependency[Dashboard]
MaybeDashboard: TypeAlias = NamedDependency[Dashboard | None]
ActingMember: TypeAlias = NamedDependency[Member]
