"""`wirewarden mapping`: what the peers publish through this server (expose), for admins."""

import typer

from wirewarden.cli import main as cli
from wirewarden.cli.output import console, listing

mapping_app = typer.Typer(
    help="Published ports and names (wirewarden expose on the peers).", no_args_is_help=True
)
COLUMNS = [
    "id",
    "peer",
    "interface",
    "node",
    "proto",
    "remote_port",
    "hostname",
    "local_port",
    "bytes",
    "created_at",
    "expires_at",
]


@mapping_app.command("list")
def mapping_list(as_json: cli.JsonOpt = False) -> None:
    """Every live mapping: the public port (or the name), the peer's port, the traffic."""
    with cli.container() as c:
        rows = c.mappings.live(cli.CLI)
    listing(rows, COLUMNS, as_json, title="Mappings")


@mapping_app.command("rm")
def mapping_rm(mapping_id: int) -> None:
    """Take a mapping away (audited; the peer's client finds it gone at its next heartbeat)."""
    with cli.container() as c:
        gone = c.mappings.delete(mapping_id, cli.CLI)
    what = gone.hostname or f"{gone.proto}/{gone.remote_port}"
    console.print(f"removed mapping {mapping_id} ({what} of {gone.peer})")
