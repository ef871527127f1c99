"""Query and form values every area parses the same way."""

from __future__ import annotations

from app.domain.errors import ValidationFailed
from app.i18n import N_, gettext

MAX_ID = 2**63 - 1  # ids are bigint: anything larger is no id of ours, never an overflow


def staff_choice(value: str | None) -> int | None:
    """A master's id, or None for "any free master" (``any``, or nothing chosen)."""
    if value in (None, "", "any"):
        return None
    assert value is not None
    if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID:
        return int(value)
    raise ValidationFailed(fields={"staff": gettext(N_("Give a master's id or “any”."))})
