"""Sign-in endpoints. ``POST /auth/telegram`` is pinned in DESIGN.md: the signature of
``initData`` is the proof, so it needs no CSRF token."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.params import JSONBody

from app.db.session import set_context
from app.domain.accounts import account_from_telegram
from app.domain.consent import has_valid_consent
from app.domain.errors import Unauthorized
from app.routes.deps import DB, AppSettings
from app.security import sessions
from app.security.telegram import InvalidInitData, validate_init_data
from app.settings import secret_key_for


class TelegramSignIn(msgspec.Struct):
    init_data: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class SignedIn(msgspec.Struct):
    account_id: int
    consent_required: bool


@post("/auth/telegram", status_code=200)
async def auth_telegram(
    request: Request[Any, Any, Any], data: JSONBody[TelegramSignIn], db: DB, settings: AppSettings
) -> Response[SignedIn]:
    try:
        init = validate_init_data(data.init_data, settings.telegram_bot_token)
    except InvalidInitData as exc:
        raise Unauthorized() from exc
    async with db.transaction() as session:
        account, _created = await account_from_telegram(session, init)
        await set_context(session, account_id=account.id)
        consent_required = not await has_valid_consent(session, account.id)
        token, _info = await sessions.issue(
            session,
            account_id=account.id,
            kind="miniapp",
            key=secret_key_for(settings),
            ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )
    max_age = int(sessions.LIFETIME["miniapp"].total_seconds())
    return Response(
        SignedIn(account_id=account.id, consent_required=consent_required),
        headers={
            "Set-Cookie": sessions.cookie_header("miniapp", token, max_age=max_age),
            "Cache-Control": "no-store",
        },
    )
