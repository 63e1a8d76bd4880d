"""Command-line entry point (Typer + Rich)."""
