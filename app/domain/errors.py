"""Typed domain errors. Routes never build error responses themselves: ``app.routes.errors``
maps each of these to one HTTP status and the pinned error body, in the caller's language."""

from __future__ import annotations

import math

from app.i18n import N_

# ids are bigint: a larger number is no id of ours (not found, never an overflow); the one
# definition every layer checks against
MAX_ID = 2**63 - 1


class DomainError(Exception):
    code = "validation"
    status = 422
    message = N_("The request is not valid.")

    def __init__(self, message: str | None = None, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.fields = fields or {}


class ValidationFailed(DomainError):
    code = "validation"
    status = 422
    message = N_("Please correct the highlighted fields.")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    message = N_("Not found.")


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401
    message = N_("Please sign in again.")


class ConsentRequired(DomainError):
    code = "consent_required"
    status = 403
    message = N_("Please accept the privacy policy before booking.")


class SlotTaken(DomainError):
    code = "slot_taken"
    status = 409
    message = N_("This time was just taken. Please choose another slot.")


class RateLimited(DomainError):
    """Too many requests; ``retry_after`` (seconds) becomes the ``Retry-After`` header."""

    code = "rate_limited"
    status = 429
    message = N_("Too many attempts. Please wait a little and try again.")

    def __init__(self, message: str | None = None, *, retry_after: float = 60) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))
