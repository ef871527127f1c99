"""Sign-in endpoints. ``POST /auth/telegram`` is part of the published API contract: the signature of
``initData`` is the proof, so it needs no CSRF token."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.params import JSONBody

from app.domain.errors import Unauthorized
from app.routes.deps import DB, AppSettings
from app.security.limits import telegram_sign_in_guard
from app.security.telegram import InvalidInitData, validate_init_data
from app.security.web import json_sign_in_guard, sign_in_with_telegram


class TelegramSignIn(msgspec.Struct):
    init_data: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class SignedIn(msgspec.Struct):
    account_id: int
    consent_required: bool


@post(
    "/auth/telegram",
    status_code=200,
    name="auth:telegram",
    guards=[json_sign_in_guard, telegram_sign_in_guard],
)
async def auth_telegram(
    request: Request[Any, Any, Any], data: JSONBody[TelegramSignIn], db: DB, settings: AppSettings
) -> Response[SignedIn]:
    try:
        init = validate_init_data(data.init_data, settings.telegram_bot_token)
    except InvalidInitData as exc:
        raise Unauthorized() from exc
    signed = await sign_in_with_telegram(db, request, settings, init)
    return Response(
        SignedIn(account_id=signed.account_id, consent_required=signed.consent_required),
        headers={"Cache-Control": "no-store"},
    )
