"""Answers serialized once, by the model itself.

A route that returns a model has FastAPI dump it, validate the dump against the response
model again and encode that: three passes where one does. Routes that are hot (a peer
create) or big (a year of traffic points) return this instead and keep `response_model`
for the OpenAPI document."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code, media_type="application/json")
