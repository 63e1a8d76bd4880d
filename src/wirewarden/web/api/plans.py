"""/api/v1/plans: the limits of tenants (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from wirewarden.services.plan_schemas import PlanIn, PlanOut
from wirewarden.web.deps import App, Reader, Writer

router = APIRouter(tags=["plans"])


@router.get("/plans")
def list_plans(app: App, actor: Reader) -> list[PlanOut]:
    return app.plans.list(actor)


@router.get("/plans/{name}")
def get_plan(app: App, actor: Reader, name: str) -> PlanOut:
    return app.plans.get(name, actor)


@router.put("/plans/{name}")
def put_plan(app: App, actor: Writer, name: str, body: PlanIn, response: Response) -> PlanOut:
    out, created = app.plans.put(name, body, actor)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return out


@router.delete("/plans/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_plan(app: App, actor: Writer, name: str) -> Response:
    app.plans.delete(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
