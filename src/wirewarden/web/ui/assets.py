"""Our own static files, and the front-end libraries the set-up installed from npm.

The libraries are served from our own origin (never a CDN): a dashboard on a VPN server
is often offline from the browser's point of view, and the CSP allows scripts from 'self'
only. Only the files named here are served, never the whole node_modules tree.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
VENDOR = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
}
_MEDIA = {".js": "text/javascript", ".css": "text/css"}


def find_node_modules(configured: Path | None) -> Path | None:
    """Where `npm ci` put the libraries: the setting, else beside the source checkout
    (the set-up installs into the repository root), else the working directory."""
    candidates = [configured] if configured else []
    candidates += [parent / "node_modules" for parent in Path(__file__).resolve().parents]
    candidates.append(Path.cwd() / "node_modules")
    return next((c for c in candidates if c and (c / "htmx.org").is_dir()), None)


def install(app: FastAPI, node_modules: Path | None) -> None:
    vendor = APIRouter(include_in_schema=False)

    @vendor.get("/static/vendor/{name}")
    def vendor_file(name: str) -> FileResponse:
        relative = VENDOR.get(name)
        if relative is None or node_modules is None or not (node_modules / relative).is_file():
            raise HTTPException(404, f"{name} is not installed (run scripts/setup.sh)")
        path = node_modules / relative
        # Versioned by the lock file; a day of caching keeps page loads to one request.
        headers = {"Cache-Control": "public, max-age=86400"}
        return FileResponse(path, media_type=_MEDIA[path.suffix], headers=headers)

    app.include_router(vendor)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
