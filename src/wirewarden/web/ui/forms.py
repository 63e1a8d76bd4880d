"""HTML forms into the services' schemas, and their failures into per-field messages."""

from __future__ import annotations

import re
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
            errors.setdefault(field, plain_message(err))
        return None


# Pydantic's words are for programmers ("Input should be a valid integer, unable to parse
# string as an integer"); a form says what to type instead.
_PLAIN: dict[str, str] = {
    "missing": "This field is required.",
    "int_parsing": "Enter a whole number, like 25.",
    "int_type": "Enter a whole number, like 25.",
    "int_from_float": "Enter a whole number, without decimals.",
    "float_parsing": "Enter a number, like 2.5.",
    "bool_parsing": "Choose yes or no.",
    "datetime_parsing": "Enter a date and time, like 2026-12-31 18:00.",
    "datetime_from_date_parsing": "Enter a date and time, like 2026-12-31 18:00.",
    "string_too_short": "This field is required.",
    "extra_forbidden": "This field cannot be set here.",
    "ip_any_network": "Enter a network, like 192.168.1.0/24.",
    "ip_v4_network": "Enter an IPv4 network, like 192.168.1.0/24.",
}


_LIBRARY_DETAIL = re.compile(r" \('[^']*' does not appear to be [^)]*\)")


def plain_message(err: Mapping[str, object]) -> str:
    """One validation error in words a person understands, ending with a full stop."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx")
    limits = ctx if isinstance(ctx, Mapping) else {}
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind in ("greater_than_equal", "greater_than"):
        bound = limits.get("ge", limits.get("gt"))
        return f"Enter {'at least' if kind == 'greater_than_equal' else 'more than'} {bound}."
    if kind in ("less_than_equal", "less_than"):
        bound = limits.get("le", limits.get("lt"))
        return f"Enter {'at most' if kind == 'less_than_equal' else 'less than'} {bound}."
    if kind == "string_too_long":
        return f"At most {limits.get('max_length')} characters."
    if kind in ("literal_error", "enum"):
        return f"Choose one of {limits.get('expected', 'the offered values')}."
    message = str(err.get("msg", "")).removeprefix("Value error, ").removeprefix("Input ")
    message = _LIBRARY_DETAIL.sub("", message)  # the ipaddress module's restatement
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def service_error(exc: ServiceError, errors: Errors) -> int:
    """Record a service failure under its field; the status the form page answers with."""
    errors[exc.field or "form"] = exc.message
    return exc.status


def optional(data: Mapping[str, str], *fields: str) -> dict[str, str]:
    """Leave empty optional fields out, so the schema's defaults apply."""
    return {k: v for k, v in data.items() if v != "" or k not in fields}
