"""Query and form values every area parses the same way."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

from app.domain.errors import MAX_ID, ValidationFailed
from app.i18n import N_, gettext

# an id in a path: a bigint of ours, or the address names nothing we have. Every route takes its
# path ids as this type; a value outside it (0, negative, beyond bigint) is answered 404 like any
# unknown id, by app.routes.errors (a path is an address, not a form to correct)
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
