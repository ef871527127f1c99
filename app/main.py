"""The Litestar application: plugins, routes and middleware wired in one place."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.di import Provide
from litestar.logging import StructLoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app import i18n, landing, links
from app.db.session import Database, Pools
from app.domain.audit import action_label
from app.domain.bookings import STATUS_LABELS
from app.domain.members import ROLE_LABELS
from app.routes import (
    api,
    auth,
    consent,
    health,
    me,
    miniapp,
    pages,
    payments,
    signin,
    telegram_webhook,
)
from app.routes import dashboard as dashboard_routes
from app.routes import ops as ops_routes
from app.routes.api_docs import ApiDocsPage
from app.routes.dashboard.calendar import quarter_refs
from app.routes.dashboard.setup import steps_bar
from app.routes.errors import EXCEPTION_HANDLERS
from app.routes.ical import ical_feed
from app.security import dashboard, web
from app.security.headers import context_middleware
from app.settings import Settings, get_settings

APP_DIR = Path(__file__).parent


def _configure_jinja(engine: JinjaTemplateEngine, settings: Settings) -> None:
    env = engine.engine
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        status_label=lambda status: i18n.gettext(STATUS_LABELS.get(status) or status),
        role_label=lambda role: i18n.gettext(ROLE_LABELS.get(role) or role),
        action_label=action_label,  # an audit log action as people read it (domain.audit.ACTIONS)
        setup_steps=steps_bar,  # the set-up wizard's steps bar (dashboard/_setup_steps.html)
        get_locale=i18n.get_locale,
        landing_url=settings.landing_base_url.rstrip("/"),
        contact_email=settings.contact_email_info,
        support_email=settings.contact_email_support,
        locales=i18n.LOCALES,
        language_name=i18n.language_name,
        # a form that creates something carries one: a resubmission (a retry after a 503 or
        # a dropped connection) then answers with what the first made, never a second one
        new_idempotency_key=lambda: secrets.token_urlsafe(18),
    )
    env.filters.update(
        money=i18n.money,
        fmt_date=i18n.fmt_date,
        fmt_time=i18n.fmt_time,
        fmt_datetime=i18n.fmt_datetime,
        localized=i18n.localized,
        in_zone=lambda moment, zone: moment.astimezone(ZoneInfo(zone)),
        quarter_refs=quarter_refs,  # the calendar's empty quarter hours
    )


def create_app(
    settings: Settings | None = None, *, app_url: str | None = None, worker_url: str | None = None
) -> Litestar:
    """Build the app. ``app_url`` is the runtime role's DSN (non-owner, RLS-bound); with
    ``worker_url`` (the worker role's DSN) one notification worker runs in-process."""
    settings = settings or get_settings()
    dsn = app_url or settings.database_app_url
    if not dsn:
        raise RuntimeError(
            "DATABASE_APP_URL is not set: start the app with `pozapisi run`, which resolves it"
        )
    database = Database(dsn, Pools.of_app(settings))

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await database.dispose()

    template_config = TemplateConfig(
        directory=APP_DIR / "templates",
        engine=JinjaTemplateEngine,
        engine_callback=lambda engine: _configure_jinja(engine, settings),
    )
    app = Litestar(
        route_handlers=[
            health.healthz,
            auth.auth_telegram,
            api.ApiController,
            *landing.routes(settings),  # development: the built landing at /
            # the client Mini App: every page under /app (app.links.APP)
            Router(
                path=links.APP,
                route_handlers=[
                    *pages.ROUTES,
                    *miniapp.ROUTES,
                    *signin.ROUTES,
                    *consent.ROUTES,
                    *me.ROUTES,
                ],
            ),
            # the business dashboard: every page under /dashboard
            dashboard_routes.ROUTER,
            # the operator console: every page under /ops (its own session and second factor)
            ops_routes.ROUTER,
            telegram_webhook.telegram_webhook,
            *payments.ROUTES,  # the payment provider's notifications; its development page
            ical_feed,  # a master's calendar feed: /ical/{token}.ics
            create_static_files_router(
                path="/static", directories=[APP_DIR / "static"], name="static"
            ),
        ],
        dependencies={
            "db": Provide(lambda: database, use_cache=True, sync_to_thread=False),
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            **web.DEPENDENCIES,
            **dashboard.DEPENDENCIES,
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[context_middleware],
        plugins=[HTMXPlugin()],
        template_config=template_config,
        # /schema: the OpenAPI document (openapi.json) and one page of vendored Swagger UI, under
        # the same CSP as every page (Litestar's default pages load scripts from CDNs)
        openapi_config=OpenAPIConfig(
            title="PoZapisi API", version="1.0.0", path="/schema", render_plugins=[ApiDocsPage()]
        ),
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
        logging_config=StructLoggingConfig(log_exceptions="debug"),
        lifespan=[lifespan, *_worker_lifespan(settings, worker_url)],
        debug=False,
    )
    app.state.settings = settings
    app.state.db = database
    return app


def _worker_lifespan(settings: Settings, worker_url: str | None) -> list[Any]:
    if not worker_url:
        return []
    from workers.runner import in_process_worker

    return [in_process_worker(settings, worker_url)]


def create_app_from_env() -> Litestar:
    """Factory for uvicorn workers: the CLI puts the resolved DSNs in the environment."""
    in_process = os.environ.get("POZAPISI_IN_PROCESS_WORKER") == "1"
    return create_app(
        get_settings(),
        app_url=os.environ.get("DATABASE_APP_URL"),
        worker_url=os.environ.get("DATABASE_WORKER_URL") if in_process else None,
    )
