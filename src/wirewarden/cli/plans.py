"""`wirewarden plan`: the limits of tenants."""

from typing import Annotated

import typer

from wirewarden.cli import main as cli
from wirewarden.cli.output import console, listing, record
from wirewarden.services.plan_schemas import PlanIn

plan_app = typer.Typer(help="Plans: what a tenant may have.", no_args_is_help=True)

Limit = Annotated[int | None, typer.Option(help="Omit: unlimited")]


@plan_app.command("list")
def plan_list(as_json: cli.JsonOpt = False) -> None:
    with cli.container() as c:
        rows = c.plans.list(cli.CLI)
    cols = ["name", "max_peers", "rate_down_kbit", "rate_up_kbit", "data_cap_bytes", "tenants"]
    listing(rows, cols, as_json, title="Plans")


@plan_app.command("show")
def plan_show(name: str, as_json: cli.JsonOpt = False) -> None:
    with cli.container() as c:
        record(c.plans.get(name, cli.CLI), as_json)


@plan_app.command("set")
def plan_set(
    name: str,
    max_peers: Limit = None,
    rate_down_kbit: Annotated[int | None, typer.Option(help="Per peer; omit: unlimited")] = None,
    rate_up_kbit: Annotated[int | None, typer.Option(help="Per peer; omit: unlimited")] = None,
    data_cap_bytes: Annotated[int | None, typer.Option(help="Per peer; omit: no cap")] = None,
    rate_total_down_kbit: Annotated[int | None, typer.Option(help="Whole tenant")] = None,
    rate_total_up_kbit: Annotated[int | None, typer.Option(help="Whole tenant")] = None,
    max_mappings: Limit = None,
    expose_ports: Annotated[str | None, typer.Option(help="e.g. 8000-8100,9000")] = None,
    block_apps: Annotated[
        str, typer.Option(help="Classes blocked for every peer, e.g. bittorrent,ssh")
    ] = "",
    as_json: cli.JsonOpt = False,
) -> None:
    """Create or replace a plan (a limit not given is unlimited). Lowering a plan brings the
    peers of its tenants down to the new per-peer limits."""
    body = cli.validated(
        lambda: PlanIn(
            max_peers=max_peers,
            rate_down_kbit=rate_down_kbit,
            rate_up_kbit=rate_up_kbit,
            data_cap_bytes=data_cap_bytes,
            rate_total_down_kbit=rate_total_down_kbit,
            rate_total_up_kbit=rate_total_up_kbit,
            max_mappings=max_mappings,
            expose_ports=expose_ports,
            block_apps=[a.strip() for a in block_apps.split(",") if a.strip()],
        )
    )
    with cli.container() as c:
        out, _ = c.plans.put(name, body, cli.CLI)
    record(out, as_json)


@plan_app.command("rm")
def plan_rm(name: str) -> None:
    with cli.container() as c:
        c.plans.delete(name, cli.CLI)
    console.print(f"deleted plan {name}")
