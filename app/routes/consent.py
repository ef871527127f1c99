"""Consent to the privacy policy in the Mini App (``/app/consent``, policy 3.1)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app.domain import consent
from app.domain.accounts import ByAccount
from app.domain.errors import DomainError
from app.routes.deps import DB, SignedIn
from app.routes.rendering import Form, page_context
from app.routes.signin import safe_next
from app.security.web import actor_of

CLIENT_PURPOSES = ["booking", "notifications", "support", "security"]


@get("/consent", include_in_schema=False, name="consent:page")
async def consent_page(
    request: Request[Any, Any, Any],
    db: DB,
    viewer: SignedIn,
    next_url: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None,
) -> Response[Any]:
    status = await consent.consent_status(db, viewer.account.id)
    return Template(
        "miniapp/consent.html",
        context={**page_context(request, viewer), "policy": status.policy,
                 "next": safe_next(request, next_url), "already": status.valid,
                 "purposes": CLIENT_PURPOSES},
    )  # fmt: skip


@post("/consent", include_in_schema=False, status_code=HTTP_303_SEE_OTHER, name="consent:give")
async def consent_submit(
    request: Request[Any, Any, Any],
    db: DB,
    viewer: SignedIn,
    data: Annotated[dict[str, str], Form],
) -> Response[Any]:
    next_url = safe_next(request, data.get("next"))
    try:
        await consent.grant_consent(
            db, ByAccount(viewer.account.id), policy_version=data.get("policy_version", ""),
            purposes=CLIENT_PURPOSES, channel="mini_app", actor=actor_of(request, viewer.account.id),
        )  # fmt: skip
    except DomainError as error:
        status = await consent.consent_status(db, viewer.account.id)
        return Template(
            "miniapp/consent.html",
            context={**page_context(request, viewer), "policy": status.policy, "error": error,
                     "next": next_url, "purposes": CLIENT_PURPOSES},
            status_code=error.status,
        )  # fmt: skip
    return Redirect(next_url, status_code=HTTP_303_SEE_OTHER)


ROUTES = [consent_page, consent_submit]
