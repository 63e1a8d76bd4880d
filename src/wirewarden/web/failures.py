"""Answers for failures of the host rather than the request: a database that stayed busy
through every retry or had no free pooled connection (503, try again) and a full disk
(507). Anything else still goes up as a 500: these handlers re-raise what they do not
recognize."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from wirewarden.store.db import is_busy, is_disk_full

RETRY_AFTER_S = 2


def install(app: FastAPI) -> None:
    app.add_exception_handler(DBAPIError, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(OSError, _os_error)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _pool_exhausted)  # type: ignore[arg-type]


def _disk_full(request: Request) -> JSONResponse:
    data_dir = request.app.state.container.settings.data_dir.resolve()
    return JSONResponse(
        {"detail": f"the disk holding {data_dir} is full: nothing was changed; free space"},
        status_code=507,
    )


async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    if is_busy(exc):
        return JSONResponse(
            {"detail": "the database is busy: nothing was changed; try again"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    if is_disk_full(exc):
        return _disk_full(request)
    raise exc


async def _pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
    # Every connection of the pool stayed busy for WIREWARDEN_DATABASE_POOL_TIMEOUT.
    return JSONResponse(
        {"detail": "the database is busy: nothing was changed; try again"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _os_error(request: Request, exc: OSError) -> JSONResponse:
    if is_disk_full(exc):
        return _disk_full(request)
    raise exc
