"""/docs: the API described as a plain page, from the same OpenAPI document.

Swagger UI would need inline script and a CDN, which the CSP and DESIGN.md §6 forbid; this
page needs neither, and like /openapi.json it is only for signed-in users or token holders.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "apidocs"),
    autoescape=select_autoescape(["html"]),
)
METHODS = ("get", "post", "put", "patch", "delete")


def render(schema: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            if method not in METHODS:
                continue
            tag = (op.get("tags") or ["other"])[0]
            groups[tag].append(_row(path, method, op))
    version = schema.get("info", {}).get("version", "")
    return _pages.get_template("index.html").render(groups=sorted(groups.items()), version=version)


def _row(path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    query = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
    content: dict[str, Any] = op.get("requestBody", {}).get("content", {})
    media: dict[str, Any] = next(iter(content.values()), {})
    body = str(media.get("schema", {}).get("$ref", "")).rsplit("/", 1)[-1]
    return {
        "method": method.upper(),
        "path": path,
        "query": query,
        "summary": op.get("summary", ""),
        "description": next(iter((op.get("description") or "").strip().splitlines()), ""),
        "body": body,
        "statuses": sorted(op.get("responses", {})),
    }
