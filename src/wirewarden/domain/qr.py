"""QR codes of client configs, as SVG for the API and the dashboard."""

from __future__ import annotations

import io

import segno


def config_qr_svg(config_text: str) -> str:
    # Error level L keeps a full config (about 300 bytes) at a size phone cameras read easily.
    code = segno.make(config_text, error="l", micro=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="svg", scale=4, border=2, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()
