"""The business dashboard, under ``/dashboard`` (pinned paths in DESIGN.md "Dashboard
contracts"): one module per part, each with its ``ROUTES``; ``ROUTER`` hangs them together.

Every handler that acts for a business declares ``dependencies=role(...)`` and receives the
acting ``Member`` (``app.security.dashboard``); it parses, makes one domain call with that
member, and presents the result through :mod:`app.routes.dashboard.render`."""

from __future__ import annotations

from litestar import Router

from app.routes.dashboard import (
    account,
    analytics,
    billing,
    bookings,
    calendar,
    catalog,
    clients,
    home,
    inbox,
    invoices,
    lists,
    schedules,
    settings,
    setup,
    team,
)

PATH = "/dashboard"

ROUTER = Router(
    path=PATH,
    route_handlers=[
        *home.ROUTES,
        *account.ROUTES,
        *setup.ROUTES,
        *catalog.ROUTES,
        *schedules.ROUTES,
        *team.ROUTES,
        *settings.ROUTES,
        *bookings.ROUTES,
        *calendar.ROUTES,
        *clients.ROUTES,
        *inbox.ROUTES,
        *lists.ROUTES,
        *analytics.ROUTES,
        *billing.ROUTES,
        *invoices.ROUTES,
    ],
)
