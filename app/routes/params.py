"""Query and form values every area parses the same way."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

from app.domain.errors import MAX_ID, ValidationFailed
from app.i18n import N_, gettext

# an id in a path: a bigint of ours, or the request names nothing we have
PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]

# the secret of a link sent by e-mail or SMS (verification, reset, invitation): 32 random bytes,
# URL-safe base64 (43 characters); a far longer one is no link of ours
LinkToken = Annotated[str, PathParameter(max_length=128)]


def staff_choice(value: str | None) -> int | None:
    """A master's id, or None for "any free master" (``any``, or nothing chosen)."""
    if value in (None, "", "any"):
        return None
    assert value is not None
    if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID:
        return int(value)
    raise ValidationFailed(fields={"staff": gettext(N_("Give a master's id or “any”."))})
