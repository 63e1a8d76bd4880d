"""Dashboard pages of plans (admins only: the service refuses anyone else)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from wirewarden.bootstrap import Container
from wirewarden.services.errors import ServiceError
from wirewarden.services.plan_schemas import PlanIn, PlanOut
from wirewarden.web.ui import forms
from wirewarden.web.ui.auth import Admin, App
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
FIELDS = tuple(PlanIn.model_fields)


@router.get("/plans", response_class=HTMLResponse)
def plans_page(request: Request, app: App, viewer: Admin) -> Response:
    plans = app.plans.list(viewer.actor)
    return page(request, "plans.html", viewer, nav="plans", plans=plans, fields=FIELDS)


@router.get("/plans/new", response_class=HTMLResponse)
def new_plan(request: Request, app: App, viewer: Admin) -> Response:
    app.plans.list(viewer.actor)  # the service's rule: admins only
    return _form(request, viewer, None, {}, {})


@router.get("/plans/{name}", response_class=HTMLResponse)
def edit_plan(request: Request, app: App, viewer: Admin, name: str) -> Response:
    return _form(request, viewer, name, _form_data(app.plans.get(name, viewer.actor)), {})


@router.post("/plans/new", response_class=HTMLResponse)
def create_plan(request: Request, app: App, viewer: Admin, form: forms.Posted) -> Response:
    return _save(request, app, viewer, None, form)


@router.post("/plans/{name}", response_class=HTMLResponse)
def save_plan(request: Request, app: App, viewer: Admin, name: str, form: forms.Posted) -> Response:
    return _save(request, app, viewer, name, form)


@router.post("/plans/{name}/delete")
def delete_plan(request: Request, app: App, viewer: Admin, name: str, _: forms.Posted) -> Response:
    app.plans.delete(name, viewer.actor)
    return redirect("/plans")


def _form_data(plan: PlanOut) -> dict[str, str]:
    values = plan.model_dump(include=set(FIELDS))
    values["block_apps"] = ", ".join(plan.block_apps)
    return {"name": plan.name} | {k: "" if v is None else str(v) for k, v in values.items()}


def _save(
    request: Request, app: Container, viewer: Viewer, existing: str | None, form: FormData
) -> Response:
    data = forms.values(form, ("name", *FIELDS))
    name = existing or data.get("name", "")
    errors: forms.Errors = {}
    # An empty box is unlimited.
    given: dict[str, object] = {k: v for k, v in data.items() if k in FIELDS and v != ""}
    # The classes as a comma separated line; gone from the form (or empty): none.
    given["block_apps"] = [a.strip() for a in data.get("block_apps", "").split(",") if a.strip()]
    body = forms.build(lambda: PlanIn.model_validate(given), errors)
    if body is None:
        return _form(request, viewer, existing, data, errors, 422)
    try:
        app.plans.put(name, body, viewer.actor)
    except ServiceError as exc:
        status = forms.service_error(exc, errors)
        return _form(request, viewer, existing, data, errors, status)
    return redirect("/plans")


def _form(
    request: Request,
    viewer: Viewer,
    existing: str | None,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    return page(
        request,
        "plan_form.html",
        viewer,
        nav="plans",
        existing=existing,
        form=data,
        errors=errors,
        status_code=status,
    )
