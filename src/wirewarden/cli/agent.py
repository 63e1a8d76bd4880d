"""`wirewarden agent`: run this server as a node of a fleet (docs/agent.md)."""

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from wirewarden.cli import main as cli
from wirewarden.cli.output import errors
from wirewarden.config import SettingsError


def agent(
    server: Annotated[
        str | None,
        typer.Option(help="The control plane's URL, e.g. https://vpn-admin.example.com"),
    ] = None,
    join_token: Annotated[
        str | None,
        typer.Option(
            help="The one-time token `wirewarden node add` printed (first start only)",
            envvar="WIREWARDEN_AGENT_JOIN_TOKEN",
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(help="PEM CA bundle that signs the control plane's certificate"),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the credential and last state are kept")
    ] = None,
) -> None:
    """Run this server as a fleet node: enrol once with the join token, then keep
    WireGuard, nftables, tc and the DNS resolver equal to the state the control plane
    sends. Tunnels keep running while the control plane is away."""
    from wirewarden.bootstrap import build_agent, configure_logging

    given: dict[str, object] = {"agent_server": server, "agent_join_token": join_token}
    given |= {"agent_ca_file": ca_file, "data_dir": data_dir}
    cfg = cli.settings(**{k: v for k, v in given.items() if v is not None})
    configure_logging(cfg.log_level)
    cli.require_net_admin("agent")
    try:
        node_agent, host = build_agent(cfg)
    except SettingsError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc

    async def run() -> int:
        main = asyncio.current_task()
        assert main is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, main.cancel)
        try:
            return await node_agent.run(host)
        except asyncio.CancelledError:
            return 0

    raise typer.Exit(asyncio.run(run()))
