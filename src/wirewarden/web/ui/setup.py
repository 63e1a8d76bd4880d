"""The first-run setup: an admin signing in to a server with no interface lands here and
makes the first one (public host, UDP port, DNS) in one short form."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from wirewarden.bootstrap import Container
from wirewarden.services.context import ADMIN
from wirewarden.services.errors import ServiceError
from wirewarden.services.interfaces import Suggestion
from wirewarden.services.schemas import InterfaceCreate
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import App, Manager
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
SETUP = "/setup"
FIELDS = ("name", "endpoint", "listen_port", "dns_choice", "dns_custom")
# How clients resolve names: the gateway's filtering resolver, servers of the user's
# choosing, or whatever their own network gives them.
GATEWAY, CUSTOM, OWN = "gateway", "custom", "own"


def landing(app: Container, role: str, next_url: str) -> str:
    """Where a sign-in lands: the setup page for an admin of a server with no interface
    (only when they were headed for the overview), else where they were going."""
    if next_url == "/" and role == ADMIN and app.interfaces.none_yet():
        return SETUP
    return next_url


def public_host(request: Request, suggestion: Suggestion) -> str:
    """The host clients should dial: the one the admin reached this page by, unless that
    is only this machine (loopback, a tunnel to it), then the uplink's address."""
    host = request.url.hostname or ""
    if host and host != "localhost" and not _loopback(host) and host != "testserver":
        return host
    return suggestion.uplink_address or ""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _form(
    request: Request,
    viewer: Viewer,
    suggestion: Suggestion,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    return page(
        request, "setup.html", viewer, status, form=data, errors=errors, suggestion=suggestion
    )


@router.get(SETUP, response_class=HTMLResponse)
def setup_page(request: Request, app: App, viewer: Manager) -> Response:
    suggestion = app.interfaces.suggestion()
    data = {
        "name": suggestion.name,
        "endpoint": public_host(request, suggestion),
        "listen_port": str(suggestion.listen_port),
        "dns_choice": GATEWAY,
        "dns_custom": "",
    }
    return _form(request, viewer, suggestion, data, {})


@router.post(SETUP, response_class=HTMLResponse)
def create_first(request: Request, app: App, viewer: Manager, form: forms.Posted) -> Response:
    suggestion = app.interfaces.suggestion()
    data = forms.values(form, FIELDS)
    choice = data.get("dns_choice", GATEWAY)
    dns = {GATEWAY: suggestion.gateway, OWN: ""}.get(choice, data.get("dns_custom", ""))
    errors: forms.Errors = {}
    body = forms.build(
        lambda: InterfaceCreate.model_validate(
            {
                "name": data.get("name", ""),
                "address": suggestion.address,
                "listen_port": data.get("listen_port") or None,
                "endpoint": data.get("endpoint") or None,
                "dns": dns,
            }
        ),
        errors,
    )
    if "dns" in errors:
        errors["dns_custom"] = errors.pop("dns")
    if body is None:
        return _form(request, viewer, suggestion, data, errors, 422)
    try:
        created = app.interfaces.create(body, viewer.actor)
    except ServiceError as exc:
        status = forms.service_error(exc, errors)
        return _form(request, viewer, suggestion, data, errors, status)
    return redirect(
        f"/interfaces/{created.name}", f"Interface {created.name} is up: add a device next."
    )
