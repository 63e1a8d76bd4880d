"""`wirewarden`: serve, manage interfaces, peers and tokens, import, back up and restore."""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from wirewarden.bootstrap import Container, build, configure_logging
from wirewarden.cli.output import console, emit_json, errors, listing, record, table
from wirewarden.cli.service import service_app
from wirewarden.cli.traffic import top_view, usage_view
from wirewarden.config import Settings, SettingsError, StartupError, load_settings
from wirewarden.dataplane.hostinfo import NEEDS_NET_ADMIN, has_net_admin
from wirewarden.services import backup as backups
from wirewarden.services.account_schemas import UserCreate, UserUpdate
from wirewarden.services.context import Actor
from wirewarden.services.errors import ServiceError
from wirewarden.services.schemas import InterfaceCreate, InterfaceUpdate, PeerCreate, PeerUpdate
from wirewarden.store.datalock import DataDirBusy, DataDirLock

T = TypeVar("T")
app = typer.Typer(help="WireWarden: a WireGuard VPN control plane.", no_args_is_help=True)
interface_app = typer.Typer(help="WireGuard interfaces.", no_args_is_help=True)
peer_app = typer.Typer(help="Peers (devices) of an interface.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Users: admin, tenant-admin, member.", no_args_is_help=True)
app.add_typer(interface_app, name="interface")
app.add_typer(peer_app, name="peer")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
app.add_typer(service_app, name="service")

CLI = Actor("cli", "local")
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file", envvar="WIREWARDEN_CONFIG")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
IfaceOpt = Annotated[str, typer.Option("--interface", "-i", help="Interface name")]


class State:
    config: Path | None = None


@app.callback()
def main_options(config: ConfigOpt = None) -> None:
    State.config = config


def settings(**overrides: Any) -> Settings:
    try:
        return load_settings(State.config, **overrides)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]).upper()
            where = f"WIREWARDEN_{field}" if field else "settings"
            errors.print(f"[red]invalid {where}:[/] {err['msg']}")
        raise typer.Exit(2) from exc


def require_net_admin(what: str) -> None:
    """One clear refusal, before anything half-happens in the kernel or the database."""
    if not has_net_admin():
        errors.print(
            f"[red]error:[/] wirewarden {what} {NEEDS_NET_ADMIN} (it changes WireGuard "
            "links, addresses and nftables); run it with sudo"
        )
        raise typer.Exit(1)


@contextmanager
def container(
    cfg: Settings | None = None, kernel: str | None = None, runtime: bool = False
) -> Iterator[Container]:
    """The local control plane, with friendly errors instead of tracebacks. `kernel` names
    a command that changes the data plane: refused without CAP_NET_ADMIN. The node runtime
    (drivers, reconciler) is built at once for `serve` (`runtime`), else at a first change."""
    try:
        built = build(cfg or settings(), runtime=runtime)
    except SettingsError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    except StartupError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    except Exception as exc:
        errors.print(f"[red]error:[/] cannot open the data dir or database: {exc}")
        raise typer.Exit(1) from exc
    if kernel is not None and built.kernel:
        try:
            require_net_admin(kernel)
        finally:
            built.engine.dispose()
    try:
        yield built
    except ServiceError as exc:
        field = f" ({exc.field})" if exc.field else ""
        errors.print(f"[red]error{field}:[/] {exc.message}")
        raise typer.Exit(2 if exc.status == 422 else 1) from exc
    except ValidationError as exc:
        raise _invalid(exc) from exc
    finally:
        built.engine.dispose()


def validated(make: Callable[[], T]) -> T:
    try:
        return make()
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> typer.Exit:
    """Name each bad field, then exit with status 2 (usage error)."""
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        errors.print(f"[red]invalid {loc}:[/] {err['msg']}")
    return typer.Exit(2)


# ---- serve


ListenOpt = Annotated[
    str | None,
    typer.Option("--listen", help="HOST:PORT ([v6]:PORT) to listen on, instead of WIREWARDEN_HTTP"),
]


@app.command()
def serve(listen: ListenOpt = None) -> None:
    """Run the dashboard, the API and the reconciler (SQLite in ./data by default)."""
    cfg = settings(**({"http": listen} if listen is not None else {}))
    configure_logging(cfg.log_level)
    require_net_admin("serve")
    # Held for serve's lifetime: `restore` refuses to swap the database under a running
    # serve, and a second serve on the same data dir would fight the first over the kernel.
    owner = DataDirLock(cfg.data_dir)
    try:
        owner.acquire()
    except DataDirBusy as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    try:
        _serve(cfg)
    finally:
        owner.release()


def _serve(cfg: Settings) -> None:
    import uvicorn

    from wirewarden.cli.serving import announce, first_admin, prepare_tls
    from wirewarden.dns.runtime import SWITCH_INTERVAL
    from wirewarden.web.accesslog import server_log_config
    from wirewarden.web.app import create_app

    with container(cfg, runtime=True) as c:
        try:
            tls = prepare_tls(cfg, c.reach)
        except SettingsError as exc:
            errors.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from exc
        first = c.users.ensure_first_admin(cfg.admin_password, Actor("system", "first start"))
        c.auth.purge_expired()
        host, port = cfg.host_port
        announce(cfg, c.reach, tls)
        first_admin(c, first, from_setting=bool(cfg.admin_password))
        # The reconciler, collector and resolver threads run Python for a tenth of a second
        # at a time at 10,000 peers; a request thread back from each database or socket
        # call would wait up to the default 5 ms for the interpreter. (The resolver sets the
        # same when it starts; this covers serve without DNS.)
        sys.setswitchinterval(SWITCH_INTERVAL)
        uvicorn.run(
            create_app(c),
            host=host,
            port=port,
            log_level=cfg.log_level.lower(),
            # Forwarded headers are the app's business (web/proxy.py, from
            # WIREWARDEN_TRUSTED_PROXIES): uvicorn's own default would trust 127.0.0.1.
            proxy_headers=False,
            ssl_certfile=str(tls.cert) if tls else None,
            ssl_keyfile=str(tls.key) if tls else None,
            # Share-link tokens are redacted from the access log (web/accesslog.py).
            log_config=server_log_config(cfg.log_level),
        )


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Dashboard port on 127.0.0.1")] = 8000,
) -> None:
    """A whole VPN in network namespaces: a server running WireWarden, three clients
    making light traffic and an internet host; the dashboard on 127.0.0.1. Ctrl-C
    removes everything."""
    from wirewarden.demo.scene import Scene, port_free, preflight

    reason = preflight()
    if reason is not None:
        errors.print(f"[red]cannot run the demo:[/] {reason}")
        raise typer.Exit(1)
    if not port_free(port):
        errors.print(f"[red]127.0.0.1:{port} is in use;[/] pick another with --port")
        raise typer.Exit(1)
    Scene(port=port, say=console.print).run()


# ---- interfaces


@interface_app.command("add")
def interface_add(
    name: str,
    address: Annotated[str | None, typer.Option(help="e.g. 10.8.0.1/24,fd00:8::1/64")] = None,
    port: Annotated[int | None, typer.Option("--port", help="UDP listen port")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Public host[:port] clients dial")] = None,
    dns: Annotated[str, typer.Option(help="DNS servers for clients")] = "",
    mtu: int = 1420,
    as_json: JsonOpt = False,
) -> None:
    """Create an interface and bring it up."""
    body = validated(
        lambda: InterfaceCreate(
            name=name, address=address, listen_port=port, endpoint=endpoint, dns=dns, mtu=mtu
        )
    )
    with container(kernel="interface add") as c:
        record(c.interfaces.create(body, CLI), as_json)


@interface_app.command("set")
def interface_set(
    name: str,
    endpoint: Annotated[
        str | None, typer.Option(help="Public host[:port] clients dial ('' clears it)")
    ] = None,
    dns: Annotated[str | None, typer.Option(help="DNS servers for clients ('' clears)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="UDP listen port")] = None,
    mtu: Annotated[int | None, typer.Option(help="Link MTU")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an interface's endpoint, DNS, port or MTU (only the options given)."""
    given = {"endpoint": endpoint, "dns": dns, "listen_port": port, "mtu": mtu}
    # Only what was given is set: the schema and service tell "absent" from "cleared".
    body = validated(
        lambda: InterfaceUpdate.model_validate({k: v for k, v in given.items() if v is not None})
    )
    with container(kernel="interface set") as c:
        record(c.interfaces.update(name, body, CLI), as_json)


@interface_app.command("list")
def interface_list(as_json: JsonOpt = False) -> None:
    with container() as c:
        items = c.interfaces.list(limit=1000).items
        cols = ["name", "address", "listen_port", "endpoint", "peer_count", "enabled", "status"]
        listing(items, cols, as_json)


@interface_app.command("show")
def interface_show(name: str, as_json: JsonOpt = False) -> None:
    with container() as c:
        record(c.interfaces.get(name), as_json)


@interface_app.command("rm")
def interface_rm(name: str, yes: Annotated[bool, typer.Option("--yes", "-y")] = False) -> None:
    """Delete an interface and all its peers, tearing the link down."""
    if not yes:
        typer.confirm(f"Delete interface {name} and all its peers?", abort=True)
    with container(kernel="interface rm") as c:
        c.interfaces.delete(name, CLI)
    console.print(f"deleted {name}")


@interface_app.command("down")
def interface_down(name: str) -> None:
    """Take an interface down (kept in the database; `up` brings it back)."""
    with container(kernel="interface down") as c:
        c.interfaces.set_enabled(name, False, CLI)
    console.print(f"{name} is down")


@interface_app.command("up")
def interface_up(name: str) -> None:
    with container(kernel="interface up") as c:
        out = c.interfaces.set_enabled(name, True, CLI)
    console.print(f"{name} is up ({out.status})")


@interface_app.command("export")
def interface_export(name: str) -> None:
    """Print the server config in wg-quick form (includes the private key)."""
    with container() as c:
        sys.stdout.write(c.interfaces.export(name))


# ---- peers


@peer_app.command("add")
def peer_add(
    name: str,
    interface: IfaceOpt,
    address: Annotated[str | None, typer.Option(help="e.g. 10.8.0.5")] = None,
    allowed_ips: Annotated[str, typer.Option(help="What the client routes")] = "0.0.0.0/0, ::/0",
    keepalive: Annotated[int | None, typer.Option(help="PersistentKeepalive seconds")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a peer; it can connect as soon as this returns."""
    body = validated(
        lambda: PeerCreate(
            name=name, address=address, allowed_ips=allowed_ips, persistent_keepalive=keepalive
        )
    )
    with container(kernel="peer add") as c:
        record(c.peers.create(interface, body, CLI), as_json)


@peer_app.command("list")
def peer_list(
    interface: IfaceOpt,
    name: Annotated[str | None, typer.Option(help="Name contains")] = None,
    limit: int = 100,
    offset: int = 0,
    after: Annotated[
        str | None,
        typer.Option(help="The page after this cursor (the `next` a page printed): by key"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    with container() as c:
        page = c.peers.list(interface, name, limit, offset, after=after)
        if as_json:
            emit_json(page)
            return
        cols = [
            "id",
            "name",
            "address",
            "enabled",
            "online",
            "latest_handshake",
            "rx_bytes",
            "tx_bytes",
            "status",
        ]
        table(page.items, cols, title=f"{interface}: {page.total} peers")
        if page.next:
            console.print(f"next page: --after {page.next}", soft_wrap=True)


@peer_app.command("show")
def peer_show(name: str, interface: IfaceOpt, as_json: JsonOpt = False) -> None:
    with container() as c:
        record(c.peers.find_by_name(interface, name), as_json)


@peer_app.command("config")
def peer_config(name: str, interface: IfaceOpt) -> None:
    """Print the client's wg-quick config."""
    with container() as c:
        text, _ = c.peers.config(c.peers.find_by_name(interface, name).id)
        sys.stdout.write(text)


@peer_app.command("qr")
def peer_qr(name: str, interface: IfaceOpt) -> None:
    """Show the client's config as a QR code in the terminal."""
    import segno

    with container() as c:
        text, _ = c.peers.config(c.peers.find_by_name(interface, name).id)
    segno.make(text, error="l").terminal(compact=True)


@peer_app.command("rm")
def peer_rm(name: str, interface: IfaceOpt) -> None:
    with container(kernel="peer rm") as c:
        c.peers.delete(c.peers.find_by_name(interface, name).id, CLI)
    console.print(f"deleted {name}")


def _set_peer(name: str, interface: str, change: PeerUpdate) -> None:
    with container(kernel="peer " + ("enable" if change.enabled else "disable")) as c:
        out = c.peers.update(c.peers.find_by_name(interface, name).id, change, CLI)
    console.print(f"{name}: enabled={out.enabled} ({out.status})")


@peer_app.command("enable")
def peer_enable(name: str, interface: IfaceOpt) -> None:
    _set_peer(name, interface, PeerUpdate(enabled=True))


@peer_app.command("disable")
def peer_disable(name: str, interface: IfaceOpt) -> None:
    _set_peer(name, interface, PeerUpdate(enabled=False))


NONE = "none"  # what `peer set` takes to clear a limit (back to unlimited / the default)


def _nullable(value: str | None) -> str | None:
    return None if value is None or value.lower() == NONE else value


@peer_app.command("set")
def peer_set(
    name: str,
    interface: IfaceOpt,
    rate_down_kbit: Annotated[
        str | None, typer.Option(help="Download limit in kbit/s, or 'none'")
    ] = None,
    rate_up_kbit: Annotated[
        str | None, typer.Option(help="Upload limit in kbit/s, or 'none'")
    ] = None,
    data_cap_bytes: Annotated[str | None, typer.Option(help="Data cap in bytes, or 'none'")] = None,
    acl: Annotated[
        str | None, typer.Option(help="full, internet-only, intranet-only or a profile's name")
    ] = None,
    mesh: Annotated[
        bool | None, typer.Option("--mesh/--no-mesh", help="May reach the interface's peers")
    ] = None,
    dns_policy: Annotated[
        str | None, typer.Option(help="DNS policy's name, or 'none' for the tenant's")
    ] = None,
    block_apps: Annotated[
        str | None,
        typer.Option(help="Classes refused, comma separated (e.g. bittorrent,ssh), or 'none'"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a peer's policy: speed limits, data cap, ACL, mesh, DNS policy, blocked
    classes of traffic (as PATCH)."""
    nullable = {
        "rate_down_kbit": rate_down_kbit,
        "rate_up_kbit": rate_up_kbit,
        "data_cap_bytes": data_cap_bytes,
        "dns_policy": dns_policy,
    }
    fields: dict[str, object] = {k: _nullable(v) for k, v in nullable.items() if v is not None}
    fields.update({k: v for k, v in (("acl", acl), ("mesh", mesh)) if v is not None})
    if block_apps is not None:
        blocked = _nullable(block_apps) or ""
        fields["block_apps"] = [app.strip() for app in blocked.split(",") if app.strip()]
    if not fields:
        errors.print("[red]error:[/] nothing to change; see --help")
        raise typer.Exit(2)
    body = validated(lambda: PeerUpdate.model_validate(fields))
    with container(kernel="peer set") as c:
        record(c.peers.update(c.peers.find_by_name(interface, name).id, body, CLI), as_json)


@peer_app.command("usage")
def peer_usage(name: str, interface: IfaceOpt, as_json: JsonOpt = False) -> None:
    """This billing period's traffic of a peer, against its data cap."""
    with container() as c:
        usage = c.usage.usage(c.peers.find_by_name(interface, name).id)
    if as_json:
        emit_json(usage)
    else:
        console.print(usage_view(name, usage))


# ---- traffic


@app.command("top")
def top(
    span: Annotated[str, typer.Option("--range", "-r", help="e.g. 1h, 24h, 7d, 30d, 1y")] = "24h",
    interface: Annotated[str | None, typer.Option("--interface", "-i")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    watch: Annotated[float, typer.Option(help="Refresh every N seconds (0: once)", min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Peers that moved the most traffic over a range."""
    import time
    from datetime import UTC, datetime, timedelta

    from rich.live import Live

    from wirewarden.domain.traffic import parse_span

    try:
        seconds = parse_span(span)
    except ValueError as exc:
        errors.print(f"[red]invalid --range:[/] {exc}")
        raise typer.Exit(2) from exc
    with container() as c:

        def fetch() -> Any:
            now = datetime.now(UTC)
            return c.traffic.top(now - timedelta(seconds=seconds), None, limit, interface)

        if as_json:
            emit_json(fetch())
        elif not watch:
            console.print(top_view(fetch()))
        else:
            with Live(top_view(fetch()), console=console, auto_refresh=False) as live:
                try:
                    while True:
                        time.sleep(watch)
                        live.update(top_view(fetch()), refresh=True)
                except KeyboardInterrupt:
                    pass


# ---- tokens


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="A name to recognise the token by")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="read, write, admin")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Owner (default: the first admin)")
    ] = None,
) -> None:
    """Create an API token and print it once. It acts as its owner, within its scopes."""
    with container() as c:
        owner = user or c.users.first_admin()
        token = c.tokens.create(name, scope or ["read", "write", "admin"], CLI, owner=owner)
    print(token)


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    with container() as c:
        items = c.tokens.list()
        listing(items, ["name", "user", "prefix", "scopes", "created_at", "revoked"], as_json)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    with container() as c:
        c.tokens.revoke(name, CLI)
    console.print(f"revoked {name}")


# ---- users


RoleOpt = Annotated[str, typer.Option("--role", help="admin, tenant-admin or member")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("add")
def user_add(
    name: str,
    role: RoleOpt = "member",
    password_stdin: StdinOpt = False,
    tenant: Annotated[str | None, typer.Option(help="Tenant (tenant-admin, member)")] = None,
    device_limit: Annotated[
        int | None, typer.Option(help="Devices a member may own (default: setting)")
    ] = None,
    require_2fa: Annotated[bool, typer.Option("--require-2fa", help="Must enrol TOTP")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (the password from stdin, or asked for twice)."""
    password = _read_password(password_stdin)
    fields: dict[str, object] = {"name": name, "role": role, "password": password}
    fields |= {"tenant": tenant, "totp_required": require_2fa}
    if device_limit is not None:
        fields["device_limit"] = device_limit
    body = validated(lambda: UserCreate.model_validate(fields))
    with container() as c:
        record(c.users.create(body, CLI), as_json)


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    with container() as c:
        items = c.users.list(CLI, limit=1000).items
        cols = ["name", "role", "tenant", "device_count", "device_limit", "totp_enabled"]
        listing(items, [*cols, "disabled", "last_login_at"], as_json)


@user_app.command("passwd")
def user_passwd(name: str, password_stdin: StdinOpt = False) -> None:
    """Set a user's password; their sessions end."""
    password = _read_password(password_stdin)
    with container() as c:
        c.users.set_password(name, password, CLI)
    console.print(f"password of {name} changed")


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Lock a user out: sessions end, tokens are refused until `user enable`."""
    with container() as c:
        c.users.update(name, UserUpdate(disabled=True), CLI)
    console.print(f"{name} is disabled")


@user_app.command("enable")
def user_enable(name: str) -> None:
    with container() as c:
        c.users.update(name, UserUpdate(disabled=False), CLI)
    console.print(f"{name} is enabled")


@user_app.command("reset-2fa")
def user_reset_2fa(name: str) -> None:
    """Turn a user's 2FA off (lost phone); they enrol again at the next sign-in if required."""
    with container() as c:
        c.users.reset_2fa(name, CLI)
    console.print(f"2FA of {name} is off")


@user_app.command("rm")
def user_rm(name: str, yes: Annotated[bool, typer.Option("--yes", "-y")] = False) -> None:
    """Delete a user (their devices stay, without an owner)."""
    if not yes:
        typer.confirm(f"Delete user {name}?", abort=True)
    with container() as c:
        c.users.delete(name, CLI)
    console.print(f"deleted {name}")


# ---- import, backup, restore


@app.command("import")
def import_config(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[
        str | None, typer.Option(help="Interface name (default: the file's name)")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="Public host[:port] clients dial")] = None,
) -> None:
    """Adopt an existing wg-quick server config, running or not."""
    # Here, not at the top: the config parser is this command's alone.
    from wirewarden.services.importer import Importer

    with container(kernel="import") as c:
        result = Importer(c.interfaces, c.peers).run(
            name or file.stem, file.read_text(), endpoint, CLI
        )
    for warning in result.warnings:
        errors.print(f"[yellow]warning:[/] {warning}")
    console.print(f"imported {result.interface} with {result.peers} peers")


@app.command("backup")
def backup_cmd(file: Path) -> None:
    """Write a consistent snapshot of the database and the master key (keep it safe)."""
    cfg = settings()
    with container():
        manifest = backups.backup(cfg.db_url, cfg.master_key_path, file)
    console.print(f"backup written to {file} (schema {manifest['schema']})")


@app.command("restore")
def restore_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
) -> None:
    """Replace the database and master key with a backup's (stop serve first).

    The backup is checked first (integrity, schema, that its key opens every stored secret);
    a backup that fails a check, or a running serve, leaves the install as it was."""
    cfg = settings()
    if not yes:
        typer.confirm("Replace the current database and master key?", abort=True)
    try:
        manifest = backups.restore(
            cfg.db_url, cfg.master_key_path, file, cfg.data_dir, cfg.master_key
        )
    except ServiceError as exc:
        errors.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(
        f"restored backup of {manifest.get('created_at')} (schema {manifest.get('schema')})"
    )


def main() -> None:
    # Registered here: the dns commands use this module's helpers (container, validated).
    from wirewarden.cli.agent import agent
    from wirewarden.cli.db import db_app
    from wirewarden.cli.dns import dns_app
    from wirewarden.cli.expose import expose
    from wirewarden.cli.mappings import mapping_app
    from wirewarden.cli.nodes import node_app
    from wirewarden.cli.plans import plan_app
    from wirewarden.cli.tenants import tenant_app

    app.command("expose")(expose)
    app.command("agent")(agent)

    app.add_typer(dns_app, name="dns")
    app.add_typer(plan_app, name="plan")
    app.add_typer(tenant_app, name="tenant")
    app.add_typer(db_app, name="db")
    app.add_typer(node_app, name="node")
    app.add_typer(mapping_app, name="mapping")
    app()
