"""Failures a use case reports; entry points map them to HTTP statuses or CLI messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec

from wirewarden.domain.render import UnsafeValue

P = ParamSpec("P")


class ServiceError(Exception):
    status = 400
    retry_after: int | None = None  # seconds, for failures that pass with time (429, 503)

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthorized(ServiceError):
    """Bad or missing credentials."""

    status = 401


class Forbidden(ServiceError):
    """Known who, but not allowed to."""

    status = 403


class TooManyAttempts(ServiceError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Invalid(ServiceError):
    status = 422


class Unavailable(ServiceError):
    """The data plane refused a change that cannot be left to the reconciler."""

    status = 503


def rendered(render: Callable[P, str], *args: P.args, **kwargs: P.kwargs) -> str:
    """A config rendered, or a 409 when a stored value (kept from before values were checked
    strictly) would change its meaning: the renderer refuses, the user fixes the value."""
    try:
        return render(*args, **kwargs)
    except UnsafeValue as exc:
        raise Conflict(f"the stored configuration cannot be exported safely: {exc}") from exc


class Busy(ServiceError):
    """Too much of one costly kind of work at once (password hashing); try again shortly."""

    status = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
