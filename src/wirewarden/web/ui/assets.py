"""Our own static files, and the front-end libraries pinned by package-lock.json.

The libraries are served from our own origin (never a CDN): a dashboard on a VPN server
is often offline from the browser's point of view, and the CSP allows scripts from 'self'
only. Only the files named in web/vendor.py are served, never a whole node_modules tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from wirewarden.web.vendor import VENDOR

STATIC = Path(__file__).resolve().parent.parent / "static"
# Where the wheel build (setup.py) copies the libraries: an installed package needs no
# node_modules.
PACKAGED = STATIC / "vendor"
_MEDIA = {".js": "text/javascript", ".css": "text/css"}


def find_vendor(configured: Path | None) -> dict[str, Path]:
    """Each served name's file, from the first place that has all of them: the
    assets_dir setting (a node_modules someone chose), the package itself (a wheel
    install), else a node_modules beside the source checkout (a dev install: the set-up
    runs `npm ci` in the repository root) or in the working directory. Empty when none
    has them: the pages still work, without htmx and the charts."""
    candidates: list[dict[str, Path]] = []
    if configured:
        candidates.append(_in_node_modules(configured))
    candidates.append({name: PACKAGED / name for name in VENDOR})
    parents = [parent / "node_modules" for parent in Path(__file__).resolve().parents]
    for node_modules in [*parents, Path.cwd() / "node_modules"]:
        candidates.append(_in_node_modules(node_modules))
    return next((c for c in candidates if all(p.is_file() for p in c.values())), {})


def _in_node_modules(node_modules: Path) -> dict[str, Path]:
    return {name: node_modules / relative for name, relative in VENDOR.items()}


def install(app: FastAPI, files: Mapping[str, Path]) -> None:
    vendor = APIRouter(include_in_schema=False)

    @vendor.get("/static/vendor/{name}")
    def vendor_file(name: str) -> FileResponse:
        path = files.get(name)
        if path is None:
            raise HTTPException(404, f"{name} is not installed (run scripts/setup.sh)")
        # Versioned by the lock file; a day of caching keeps page loads to one request.
        headers = {"Cache-Control": "public, max-age=86400"}
        return FileResponse(path, media_type=_MEDIA[path.suffix], headers=headers)

    @vendor.get("/favicon.ico")
    def favicon() -> FileResponse:
        # Browsers ask for /favicon.ico on pages that name no icon (API docs, JSON).
        headers = {"Cache-Control": "public, max-age=86400"}
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers=headers)

    app.include_router(vendor)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
