"""The operator console, under ``/ops`` (DESIGN.md: separate sign-in, second factor): PoZapisi
staff answer data-subject requests, read a person's data with a reason, and record lawful
disclosures. Every handler declares ``dependencies=SUPPORT|PRIVACY|ADMIN``
(``app.security.ops``), parses, makes one domain call (``app.domain.operators``) and presents
the result. The console's session, CSRF and refusals are its own (``app.security.ops``,
:mod:`app.routes.ops.render`)."""

from __future__ import annotations

from litestar import Router

from app.routes.ops import account, backups, disclosures, people, requests
from app.routes.ops.render import EXCEPTION_HANDLERS
from app.security.ops import DEPENDENCIES

PATH = "/ops"

ROUTER = Router(
    path=PATH,
    route_handlers=[
        *account.ROUTES,
        *requests.ROUTES,
        *people.ROUTES,
        *disclosures.ROUTES,
        *backups.ROUTES,
    ],
    dependencies=DEPENDENCIES,
    exception_handlers=EXCEPTION_HANDLERS,
)
