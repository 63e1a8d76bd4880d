"""`wirewarden node`: the fleet's nodes (add one, then run its agent with the token)."""

from typing import Annotated

import typer

from wirewarden.cli import main as cli
from wirewarden.cli.output import console, emit_json, listing, record
from wirewarden.services.node_schemas import NodeCreate, NodeUpdate

node_app = typer.Typer(help="Fleet nodes: add, place, drain, remove.", no_args_is_help=True)

Region = Annotated[str | None, typer.Option(help="Placement region, e.g. eu")]
Capacity = Annotated[int | None, typer.Option(help="Peers it takes before it counts as full")]
Country = Annotated[str | None, typer.Option(help="ISO 3166 code, e.g. DE")]
City = Annotated[str | None, typer.Option(help="City, for the dashboard")]
Lat = Annotated[float | None, typer.Option(help="Latitude, for the map")]
Lon = Annotated[float | None, typer.Option(help="Longitude, for the map")]
PublicHost = Annotated[
    str | None, typer.Option(help="Its public host: where visitors of its peers' names go")
]


def _token_hint(token: str, hours: int) -> None:
    console.print(f"join token (shown once, valid {hours} h):\n[bold]{token}[/bold]")
    console.print(
        "On the node: wirewarden agent --server https://THIS-CONTROL-PLANE --join-token TOKEN"
    )


@node_app.command("add")
def node_add(
    name: str,
    region: Region = None,
    capacity: Capacity = None,
    country: Country = None,
    city: City = None,
    lat: Lat = None,
    lon: Lon = None,
    public_host: PublicHost = None,
    token_hours: Annotated[int, typer.Option(help="Join token lifetime")] = 24,
    as_json: cli.JsonOpt = False,
) -> None:
    """Add a node; prints its one-time join token."""
    given = {
        "name": name,
        "region": region,
        "capacity": capacity,
        "country": country,
        "city": city,
        "lat": lat,
        "lon": lon,
        "public_host": public_host,
        "join_token_hours": token_hours,
    }
    body = cli.validated(
        lambda: NodeCreate.model_validate({k: v for k, v in given.items() if v is not None})
    )
    with cli.container() as c:
        created = c.nodes.add(body, cli.CLI)
    if as_json:
        emit_json(created)
        return
    console.print(f"added node {created.name} (region {created.region or '-'})")
    _token_hint(created.join_token, token_hours)


@node_app.command("list")
def node_list(as_json: cli.JsonOpt = False) -> None:
    with cli.container() as c:
        rows = c.nodes.list(cli.CLI)
    columns = ["name", "region", "status", "peers", "capacity", "load", "revision"]
    listing(rows, [*columns, "applied_revision", "last_seen"], as_json, title="Nodes")


@node_app.command("show")
def node_show(name: str, as_json: cli.JsonOpt = False) -> None:
    with cli.container() as c:
        record(c.nodes.get(name, cli.CLI), as_json)


@node_app.command("set")
def node_set(
    name: str,
    region: Region = None,
    capacity: Capacity = None,
    country: Country = None,
    city: City = None,
    lat: Lat = None,
    lon: Lon = None,
    public_host: PublicHost = None,
    drain: Annotated[
        bool | None, typer.Option("--drain/--undrain", help="Drained: no new peers")
    ] = None,
    as_json: cli.JsonOpt = False,
) -> None:
    given = {
        "region": region,
        "capacity": capacity,
        "country": country,
        "city": city,
        "lat": lat,
        "lon": lon,
        "public_host": public_host,
        "drain": drain,
    }
    body = cli.validated(
        lambda: NodeUpdate.model_validate({k: v for k, v in given.items() if v is not None})
    )
    with cli.container() as c:
        record(c.nodes.update(name, body, cli.CLI), as_json)


@node_app.command("token")
def node_token(
    name: str, hours: Annotated[int, typer.Option(help="Join token lifetime")] = 24
) -> None:
    """A new one-time join token for the node (to enrol it again)."""
    with cli.container() as c:
        issued = c.nodes.join_token(name, cli.CLI, hours)
    _token_hint(issued.join_token, hours)


@node_app.command("rm")
def node_rm(
    name: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False
) -> None:
    """Remove a node: its agent's credential stops working at once."""
    if not yes:
        typer.confirm(f"Remove node {name}? Its agent is cut off at once.", abort=True)
    with cli.container() as c:
        c.nodes.remove(name, cli.CLI)
    console.print(f"removed node {name}")
