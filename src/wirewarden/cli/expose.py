"""`wirewarden expose`: on a peer, publish local services through the server."""

from __future__ import annotations

from typing import Annotated

import typer

from wirewarden.cli.output import console, errors
from wirewarden.domain.exposure import ExposeError, MappingSpec, parse_spec


def expose(
    mappings: Annotated[
        list[str],
        typer.Argument(
            help="LOCAL_HOST:LOCAL_PORT-REMOTE_PORT\\[/udp], e.g. 127.0.0.1:8080-8080 "
            "127.0.0.1:25565-25565/udp"
        ),
    ],
    via: Annotated[
        str | None,
        typer.Option(
            "--via",
            help="The server's tunnel address (default: found from the local WireGuard link)",
        ),
    ] = None,
    port: Annotated[
        int, typer.Option("--port", envvar="WIREWARDEN_TUNNEL_API_PORT", help="Tunnel API port")
    ] = 7070,
) -> None:
    """Publish local TCP/UDP services on the server's public ports until stopped (Ctrl-C
    removes them at once; a client that dies loses them 60 s after its last heartbeat)."""
    # Imported here: a peer running `expose` needs none of the server's modules.
    from wirewarden.relay.session import ExposeFailed, ExposeSession, run
    from wirewarden.relay.tunnel import guess_gateways

    specs: list[MappingSpec] = []
    for text in mappings:
        try:
            specs.append(parse_spec(text))
        except ExposeError as exc:
            errors.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from exc
    gateway = via or next(iter(guess_gateways()), None)
    if gateway is None:
        errors.print("[red]error:[/] no WireGuard link found here; name the server with --via")
        raise typer.Exit(1)
    try:
        run(ExposeSession(specs, gateway, port, lambda line: console.print(line)))
    except ExposeFailed as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print("mappings removed")


def standalone() -> None:
    """`wirewarden expose ...` without the rest of the CLI (see __main__)."""
    app = typer.Typer(add_completion=False, help="WireWarden on a peer.")

    @app.callback()
    def _root() -> None:
        """A group, so that `expose` stays a subcommand as in the full CLI."""

    app.command("expose")(expose)
    app()
