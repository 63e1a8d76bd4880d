"""HTML forms into the services' schemas, and their failures into per-field messages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from wirewarden.services.auth import csrf_matches
from wirewarden.services.errors import ServiceError
from wirewarden.web import deps
from wirewarden.web.ui.auth import current_viewer
from wirewarden.web.ui.viewer import Viewer

M = TypeVar("M", bound=BaseModel)
Errors = dict[str, str]
CSRF_FIELD = "csrf_token"


class CsrfRejected(Exception):
    """A form came without the viewer's CSRF token (answered 403)."""


async def read_form(request: Request, viewer: Viewer) -> FormData:
    """The posted form, once its CSRF token matched the viewer's session."""
    form = await deps.read_form(request)
    sent = form.get(CSRF_FIELD) or request.headers.get("x-csrf-token")
    if not csrf_matches(viewer.csrf, sent if isinstance(sent, str) else None):
        raise CsrfRejected
    return form


async def _posted(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]) -> FormData:
    return await read_form(request, viewer)


# The posted form of a signed-in viewer, CSRF checked. Reading a body needs an await, so it
# is read here, in a dependency on the event loop; the page handlers themselves are plain
# functions that FastAPI runs on its thread pool, so no service call (Argon2, the database,
# the kernel) ever runs on the loop. (The viewer dependency is cached per request: the
# session is looked up once.)
Posted = Annotated[FormData, Depends(_posted)]


def values(form: FormData, fields: tuple[str, ...]) -> dict[str, str]:
    """The named text fields, trimmed; absent ones are left out."""
    out: dict[str, str] = {}
    for field in fields:
        raw = form.get(field)
        if isinstance(raw, str):
            out[field] = raw.strip()
    return out


def build(make: Callable[[], M], errors: Errors) -> M | None:
    """Run a schema constructor; on failure fill `errors` with one message per field."""
    try:
        return make()
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "form"
            message = str(err["msg"]).removeprefix("Value error, ")
            errors.setdefault(field, message)
        return None


def service_error(exc: ServiceError, errors: Errors) -> int:
    """Record a service failure under its field; the status the form page answers with."""
    errors[exc.field or "form"] = exc.message
    return exc.status


def optional(data: Mapping[str, str], *fields: str) -> dict[str, str]:
    """Leave empty optional fields out, so the schema's defaults apply."""
    return {k: v for k, v in data.items() if v != "" or k not in fields}
