"""/api/v1/tokens: API tokens of the signed-in user (admins: everyone's)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from wirewarden.services.account_schemas import TokenCreate, TokenCreated
from wirewarden.services.tokens import TokenOut
from wirewarden.web.deps import Admin, App, Who

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.get("")
def list_tokens(app: App, actor: Admin) -> list[TokenOut]:
    return app.tokens.list(actor)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(app: App, actor: Admin, who: Who, body: TokenCreate) -> TokenCreated:
    """The token is in this answer only; it is stored hashed."""
    token = app.tokens.create(
        body.name, list(body.scopes), actor, owner=body.user, allowed=who.scopes
    )
    owner = body.user or (who.name if who.user_id is not None else None)
    return TokenCreated(token=token, name=body.name, scopes=list(body.scopes), user=owner)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(app: App, actor: Admin, name: str) -> Response:
    """Revoked tokens are refused from the next request on."""
    app.tokens.revoke(name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
