"""`wirewarden dns`: policies, blocklists (refresh with a progress bar), query log, stats."""

from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from wirewarden.cli import main as cli
from wirewarden.cli.output import console, emit_json, listing, record, table
from wirewarden.dns.lists import Progress as ListProgress
from wirewarden.services.dns_schemas import DnsPolicyIn
from wirewarden.services.schemas import PeerUpdate

dns_app = typer.Typer(help="DNS filtering: policies, blocklists, query log.", no_args_is_help=True)
policy_app = typer.Typer(help="DNS policies.", no_args_is_help=True)
lists_app = typer.Typer(help="Blocklists in use.", invoke_without_command=True)
dns_app.add_typer(policy_app, name="policy")
dns_app.add_typer(lists_app, name="lists")


@policy_app.command("list")
def policy_list(as_json: cli.JsonOpt = False) -> None:
    with cli.container() as c:
        rows = c.dns.list_policies()
    cols = ["name", "blocklists", "deny", "allow", "block_answer", "anti_bypass", "peers"]
    listing(rows, cols, as_json, title="DNS policies")


@policy_app.command("show")
def policy_show(name: str, as_json: cli.JsonOpt = False) -> None:
    with cli.container() as c:
        record(c.dns.get_policy(name), as_json)


@policy_app.command("set")
def policy_set(
    name: str,
    blocklist: Annotated[
        list[str] | None,
        typer.Option(
            "--blocklist", "-b", help="URL, or a file name in <data dir>/dns/local-lists/"
        ),
    ] = None,
    deny: Annotated[list[str] | None, typer.Option(help="example.com or *.example.com")] = None,
    allow: Annotated[list[str] | None, typer.Option(help="Wins over deny and lists")] = None,
    block_answer: Annotated[str, typer.Option(help="nxdomain or null-ip")] = "nxdomain",
    anti_bypass: Annotated[bool, typer.Option(help="Canaries, DoT/DoH refusal")] = True,
    as_json: cli.JsonOpt = False,
) -> None:
    """Create or replace a policy (every option given replaces the stored one)."""
    body = cli.validated(
        lambda: DnsPolicyIn(
            blocklists=blocklist or [],
            deny=deny or [],
            allow=allow or [],
            block_answer=block_answer,
            anti_bypass=anti_bypass,
        )
    )
    with cli.container() as c:
        out, _ = c.dns.put_policy(name, body, cli.CLI)
    record(out, as_json)


@policy_app.command("rm")
def policy_rm(name: str) -> None:
    with cli.container() as c:
        c.dns.delete_policy(name, cli.CLI)
    console.print(f"deleted DNS policy {name}")


@dns_app.command("assign")
def assign(
    peer: str,
    interface: cli.IfaceOpt,
    policy: Annotated[str | None, typer.Argument(help="Policy name; omit to clear")] = None,
) -> None:
    """Give a peer its own DNS policy (or, without one, back to its tenant's)."""
    with cli.container() as c:
        found = c.peers.find_by_name(interface, peer)
        change = PeerUpdate.model_validate({"dns_policy": policy})
        out = c.peers.update(found.id, change, cli.CLI)
    console.print(f"{peer}: dns_policy={out.dns_policy or '(tenant / default)'}")


@dns_app.command("tenant")
def tenant_policy(
    tenant: str,
    policy: Annotated[str | None, typer.Argument(help="Policy name; omit to clear")] = None,
) -> None:
    """Set the DNS policy of a tenant's peers that have none of their own."""
    with cli.container() as c:
        c.dns.set_tenant_policy(tenant, policy, cli.CLI)
    console.print(f"tenant {tenant}: dns policy {policy or 'default'}")


@lists_app.callback()
def lists_status(ctx: typer.Context, as_json: cli.JsonOpt = False) -> None:
    """Show the blocklists in use (entries, junk lines, last fetch, errors)."""
    if ctx.invoked_subcommand is not None:
        return
    with cli.container() as c:
        rows = c.dns.list_status()
    listing(rows, ["source", "entries", "allow_entries", "junk", "fetched_at", "error"], as_json)


@lists_app.command("refresh")
def lists_refresh(
    sources: Annotated[list[str] | None, typer.Argument(help="Default: every list in use")] = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Fetch blocklists now; a running `serve` picks the new copies up within seconds."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with cli.container() as c, Progress(*columns, console=console, transient=False) as bar:

        def progress(source: str) -> ListProgress:
            task = bar.add_task(source[-60:], total=None)

            def update(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            return update

        rows = c.dns.refresh(sources or None, progress, cli.CLI)
    if as_json:
        emit_json(rows)
        return
    table(rows, ["source", "entries", "junk", "fetched_at", "error"])
    if any(r.error for r in rows):
        raise typer.Exit(1)


@dns_app.command("queries")
def queries(
    peer_id: Annotated[int | None, typer.Option("--peer-id")] = None,
    policy: str | None = None,
    status: Annotated[
        str | None, typer.Option(help="resolved, cached, blocked, servfail...")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Name contains")] = None,
    limit: int = 50,
    as_json: cli.JsonOpt = False,
) -> None:
    """The newest entries of the query log."""
    with cli.container() as c:
        page = c.dns.queries(peer_id=peer_id, policy=policy, status=status, name=name, limit=limit)
    if as_json:
        emit_json(page)
        return
    cols = ["at", "peer", "client", "policy", "name", "qtype", "status", "reason", "rcode", "count"]
    table(page.items, cols, title=f"{page.total} entries")


@dns_app.command("stats")
def stats(as_json: cli.JsonOpt = False) -> None:
    """Queries, blocked share and top names of the last 24 hours."""
    with cli.container() as c:
        out = c.dns.stats()
    if as_json:
        emit_json(out)
        return
    console.print(
        f"{out.queries} queries since {out.since:%Y-%m-%d %H:%M}, "
        f"{out.blocked} blocked ({out.blocked_share:.1%})"
    )
    table(out.top_blocked, ["name", "count"], title="top blocked")
    table(out.top_allowed, ["name", "count"], title="top allowed")
    table(out.top_failed, ["name", "count"], title="top failed (no answer)")
    table(out.by_peer, ["key", "queries", "blocked", "blocked_share"], title="by peer")
