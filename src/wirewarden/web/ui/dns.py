"""Dashboard page for DNS filtering: policies (edit), blocklists, stats, the query log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from wirewarden.services.dns_schemas import DnsPolicyIn
from wirewarden.services.errors import ServiceError
from wirewarden.web.ui import blocklists, forms
from wirewarden.web.ui.auth import Admin, App
from wirewarden.web.ui.templating import page, redirect

router = APIRouter(include_in_schema=False)
STATUSES = ("", "resolved", "cached", "blocked", "stale", "servfail", "refused")


def _lines(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def _dns_page(
    request: Request,
    app: App,
    viewer: Admin,
    errors: forms.Errors | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> Response:
    params = request.query_params
    status = params.get("status", "")
    queries = app.dns.queries(
        status=status if status in STATUSES[1:] else None,
        name=params.get("name") or None,
        policy=params.get("policy") or None,
        limit=100,
        actor=viewer.actor,
    )
    return page(
        request,
        "dns.html",
        viewer,
        status_code=status_code,
        nav="dns",
        policies=app.dns.list_policies(viewer.actor),
        stats=app.dns.stats(actor=viewer.actor),
        queries=queries,
        filters={
            "status": status,
            "name": params.get("name", ""),
            "policy": params.get("policy", ""),
        },
        statuses=STATUSES,
        errors=errors or {},
        notice=notice,
        known_lists=blocklists.KNOWN_LISTS,
        known_urls=blocklists.KNOWN_URLS,
    )


@router.get("/dns", response_class=HTMLResponse)
def dns_page(request: Request, app: App, viewer: Admin) -> Response:
    return _dns_page(request, app, viewer)


@router.post("/dns/policies", response_class=HTMLResponse)
def save_policy(request: Request, app: App, viewer: Admin, form: forms.Posted) -> Response:
    data = forms.values(form, ("name", "blocklists", "deny", "allow", "block_answer"))
    errors: forms.Errors = {}
    body = forms.build(
        lambda: DnsPolicyIn(
            blocklists=blocklists.merge(
                [v for v in form.getlist("known") if isinstance(v, str)],
                _lines(data.get("blocklists", "")),
            ),
            deny=_lines(data.get("deny", "")),
            allow=_lines(data.get("allow", "")),
            block_answer=data.get("block_answer", "nxdomain"),
            anti_bypass=form.get("anti_bypass") == "on",
        ),
        errors,
    )
    if body is not None:
        try:
            app.dns.put_policy(data.get("name", ""), body, viewer.actor)
        except ServiceError as exc:
            return _dns_page(request, app, viewer, errors, forms.service_error(exc, errors))
        return redirect("/dns", f"DNS policy {data.get('name', '')} saved.")
    return _dns_page(request, app, viewer, errors, 422)


@router.post("/dns/blocklists/refresh", response_class=HTMLResponse)
def refresh_lists(request: Request, app: App, viewer: Admin, _: forms.Posted) -> Response:
    app.dns.refresh(actor=viewer.actor)
    return redirect("/dns", "Blocklists checked for updates.")
