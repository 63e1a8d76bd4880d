"""`wirewarden tenant`: tenants, each with its own interface, plan and DNS policy."""

from typing import Annotated

import typer

from wirewarden.cli import main as cli
from wirewarden.cli.output import console, listing, record
from wirewarden.services.tenant_schemas import TenantCreate, TenantUpdate

tenant_app = typer.Typer(help="Tenants: own interface, plan, DNS policy.", no_args_is_help=True)


@tenant_app.command("add")
def tenant_add(
    name: str,
    plan: Annotated[str | None, typer.Option(help="A plan's name; omit: no limits")] = None,
    dns_policy: Annotated[str | None, typer.Option(help="Its peers' DNS policy")] = None,
    address: Annotated[str | None, typer.Option(help="Default: next /24 of the pool")] = None,
    listen_port: Annotated[int | None, typer.Option(help="Default: next free port")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Public host[:port] clients dial")] = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Create a tenant with its interface t-NAME, applied before this returns."""
    body = cli.validated(
        lambda: TenantCreate(
            name=name,
            plan=plan,
            dns_policy=dns_policy,
            address=address,
            listen_port=listen_port,
            endpoint=endpoint,
        )
    )
    with cli.container() as c:
        record(c.tenants.create(body, cli.CLI), as_json)


@tenant_app.command("list")
def tenant_list(as_json: cli.JsonOpt = False) -> None:
    with cli.container() as c:
        rows = c.tenants.list(cli.CLI)
    cols = ["name", "plan", "dns_policy", "enabled", "peers", "max_peers"]
    listing(rows, cols, as_json, title="Tenants")


@tenant_app.command("show")
def tenant_show(name: str, as_json: cli.JsonOpt = False) -> None:
    with cli.container() as c:
        record(c.tenants.get(name, cli.CLI), as_json)


@tenant_app.command("set")
def tenant_set(
    name: str,
    plan: Annotated[str | None, typer.Option(help="A plan's name; 'none': no limits")] = None,
    dns_policy: Annotated[str | None, typer.Option(help="'none': back to default")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Disabled: peers cut off")
    ] = None,
    as_json: cli.JsonOpt = False,
) -> None:
    given: dict[str, object] = {}
    if plan is not None:
        given["plan"] = None if plan == "none" else plan
    if dns_policy is not None:
        given["dns_policy"] = None if dns_policy == "none" else dns_policy
    if enabled is not None:
        given["enabled"] = enabled
    body = cli.validated(lambda: TenantUpdate.model_validate(given))
    with cli.container() as c:
        record(c.tenants.update(name, body, cli.CLI), as_json)


@tenant_app.command("rm")
def tenant_rm(
    name: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False
) -> None:
    """Delete a tenant: its interfaces, peers, users and kernel state."""
    if not yes:
        typer.confirm(f"Delete tenant {name} with its interfaces, peers and users?", abort=True)
    with cli.container() as c:
        c.tenants.delete(name, cli.CLI)
    console.print(f"deleted tenant {name}")
