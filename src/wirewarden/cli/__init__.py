"""Command-line entry point (Typer + Rich).

The modules that define commands leave `from __future__ import annotations` out on
purpose: typer reads every command's signature on each run, and string annotations are
an `eval` each (about a thousand per run, a tenth of a plain command's time).
"""
