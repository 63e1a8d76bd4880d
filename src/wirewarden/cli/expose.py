"""`wirewarden expose`: on a peer, publish local services through the server."""

import sys
from typing import Annotated

import typer

from wirewarden.cli.output import console, errors
from wirewarden.domain.exposure import ExposeError, parse_name_spec, parse_spec


def expose(
    mappings: Annotated[
        list[str] | None,
        typer.Argument(
            help="LOCAL_HOST:LOCAL_PORT-REMOTE_PORT\\[/udp], e.g. 127.0.0.1:8080-8080 "
            "127.0.0.1:25565-25565/udp"
        ),
    ] = None,
    http: Annotated[
        list[str] | None,
        typer.Option(
            "--http",
            metavar="NAME [LOCAL_HOST:]LOCAL_PORT",
            help="An HTTP service by name: --http blog 127.0.0.1:3000 publishes "
            "http://blog.<tenant>.<domain> (https by SNI passthrough when the service "
            "speaks TLS); repeatable",
        ),
    ] = None,
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

    try:
        specs = [parse_spec(text) for text in mappings or ()]
        names = [parse_name_spec(text) for text in http or ()]
    except ExposeError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if not specs and not names:
        errors.print("[red]error:[/] nothing to publish: name a mapping or --http NAME PORT")
        raise typer.Exit(2)
    gateway = via or next(iter(guess_gateways()), None)
    if gateway is None:
        errors.print("[red]error:[/] no WireGuard link found here; name the server with --via")
        raise typer.Exit(1)
    try:
        run(ExposeSession([*specs, *names], gateway, port, lambda line: console.print(line)))
    except ExposeFailed as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print("mappings removed")


def paired_http(argv: list[str]) -> list[str]:
    """`--http NAME TARGET` as `--http NAME=TARGET`: the two-word form the docs show,
    in the one-value form the option parser takes (it has no repeatable pairs)."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--http":
            name = next(words, "")
            if "=" not in name:
                target = next(words, "")
                name = f"{name}={target}"
            out += [word, name]
        else:
            out.append(word)
    return out


def standalone() -> None:
    """`wirewarden expose ...` without the rest of the CLI (see __main__)."""
    sys.argv[1:] = paired_http(sys.argv[1:])
    app = typer.Typer(add_completion=False, help="WireWarden on a peer.")

    @app.callback()
    def _root() -> None:
        """A group, so that `expose` stays a subcommand as in the full CLI."""

    app.command("expose")(expose)
    app()
