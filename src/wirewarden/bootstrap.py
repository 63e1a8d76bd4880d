"""The composition root: the only place that picks concrete drivers and stores."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, make_url

from wirewarden.config import Settings, SettingsError, StartupError
from wirewarden.dataplane.hostinfo import outbound_address
from wirewarden.dataplane.linux import LinuxDataplane
from wirewarden.dataplane.lock import HostLock
from wirewarden.dataplane.stats import DumpCache
from wirewarden.dataplane.unbound import ROOT_HINTS, LocalUnbound, UnboundOptions, find_binary
from wirewarden.dataplane.wireguard import WireGuard
from wirewarden.dns.cache import CacheLimits
from wirewarden.dns.doh import load_doh_addresses, system_upstreams
from wirewarden.dns.lists import ListStore
from wirewarden.dns.prometheus import DnsExporter
from wirewarden.dns.runtime import DnsConfig, DnsRuntime, Helper, Ports, lists_dir, local_lists_dir
from wirewarden.dns.upstream import UNBOUND, Upstream, UpstreamSet, parse_upstreams
from wirewarden.domain import addresses, urls
from wirewarden.domain.policy import PolicyConfig
from wirewarden.domain.state import DesiredState
from wirewarden.metrics.collector import Collector
from wirewarden.metrics.prometheus import Telemetry
from wirewarden.reconciler.engine import Loop, Reconciler
from wirewarden.reconciler.executor import Report
from wirewarden.reconciler.ports import Dataplane
from wirewarden.services.audit_log import AuditLog
from wirewarden.services.auth import AuthConfig, AuthService
from wirewarden.services.context import Allocation, Deps, ensure_defaults
from wirewarden.services.dns import DnsService, ensure_default_policy
from wirewarden.services.first_admin import InitialPassword
from wirewarden.services.interfaces import InterfaceService
from wirewarden.services.passwords import HashParams, Passwords
from wirewarden.services.peers import PeerService
from wirewarden.services.plans import PlanService
from wirewarden.services.policy import ProfileService, UsageRecorder, UsageService
from wirewarden.services.shares import ShareService
from wirewarden.services.sync_status import SyncStatusWriter
from wirewarden.services.tenants import TenantService
from wirewarden.services.tokens import TokenService
from wirewarden.services.traffic import TrafficService
from wirewarden.services.users import FIRST_ADMIN, UserService
from wirewarden.store import schema
from wirewarden.store.copy import CopyReport, Progress, copy_database
from wirewarden.store.db import (
    DatabaseUnavailable,
    PoolOptions,
    make_engine,
    make_sessions,
    wait_for_database,
)
from wirewarden.store.desired import DesiredStateReader, split_csv
from wirewarden.store.dns import DnsStore, dns_guard, log_ports, shared_database
from wirewarden.store.tsdb import TrafficStore
from wirewarden.store.vault import Vault, load_or_create_key

TlsMode = Literal["off", "files", "self-signed"]


@dataclass(frozen=True)
class Reach:
    """How the dashboard is reached: its public URL, whether serve speaks TLS itself (and
    with which certificate), HSTS, and the proxies whose forwarded headers count."""

    public_url: str
    tls: TlsMode
    hsts: bool
    trusted_proxies: tuple[str, ...]


LOCAL = Reach("http://127.0.0.1:8000", "off", hsts=False, trusted_proxies=())


def reach(settings: Settings) -> Reach:
    host, port = settings.host_port
    if settings.tls_cert is not None:
        tls: TlsMode = "files"
    elif urls.is_loopback(host) or not settings.tls_self_signed:
        # On loopback only this host (or a proxy on it, which does TLS) can connect.
        tls = "off"
    else:
        tls = "self-signed"
    public = settings.public_url
    if public is None:
        if urls.is_unspecified(host):
            # Listening everywhere: the name clients already dial, else the address
            # this host goes out by (a VPS's public address).
            # (public_host may carry a port; the dashboard keeps its own.)
            named = settings.public_host or outbound_address() or "127.0.0.1"
            host = addresses.endpoint(named)[0]
        public = urls.base("http" if tls == "off" else "https", host, port)
    hsts = settings.hsts if settings.hsts is not None else tls == "files"
    return Reach(public, tls, hsts, tuple(settings.proxies))


@dataclass
class Container:
    settings: Settings
    engine: Engine
    deps: Deps
    reconciler: Reconciler
    loop: Loop
    interfaces: InterfaceService
    peers: PeerService
    tokens: TokenService
    profiles: ProfileService
    usage: UsageService
    dns: DnsService
    collector: Collector
    traffic: TrafficService
    telemetry: Telemetry
    users: UserService
    auth: AuthService
    audit_log: AuditLog
    shares: ShareService
    plans: PlanService
    tenants: TenantService
    # The resolver `serve` runs (started by the web app's lifespan); None when disabled.
    dns_runtime: DnsRuntime | None = None
    reach: Reach = LOCAL
    initial_password: InitialPassword | None = None
    # Built with the real data plane: its changes need CAP_NET_ADMIN.
    kernel: bool = False


def prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    # Local blocklists are read from here only (dns/lists.py), so it exists from the start.
    local_lists_dir(settings.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.database_url is None:
        # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
        db_file = settings.data_dir / "wirewarden.db"
        os.close(os.open(db_file, os.O_CREAT | os.O_WRONLY, 0o600))


def allocation_of(settings: Settings) -> Allocation:
    first, _, last = settings.interface_ports.partition("-")
    if not 1 <= int(first) <= int(last) <= 65535:
        raise SettingsError("WIREWARDEN_INTERFACE_PORTS: give a range like 51820-52819")
    return Allocation(settings.interface_pool, int(first), int(last))


def tenant_allocation_of(settings: Settings) -> Allocation:
    first, _, last = settings.tenant_ports.partition("-")
    if not 1 <= int(first) <= int(last) <= 65535:
        raise SettingsError("WIREWARDEN_TENANT_PORTS: give a range like 52820-53819")
    return Allocation(settings.tenant_pool, int(first), int(last), settings.tenant_pool6)


def hash_params(settings: Settings) -> HashParams:
    if settings.argon2_memory_kib < 8 * settings.argon2_parallelism:
        # Argon2 needs 8 KiB per lane; said here, not as argon2's error at the first hash.
        raise SettingsError(
            "WIREWARDEN_ARGON2_MEMORY_KIB: at least 8 KiB per lane "
            f"(WIREWARDEN_ARGON2_PARALLELISM={settings.argon2_parallelism})"
        )
    return HashParams(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )


def build(
    settings: Settings,
    dataplane: Dataplane | None = None,
    stats_max_age: float = 2.0,
) -> Container:
    """The whole control plane. `dataplane` and `stats_max_age` are for tests: a fake
    kernel, and no stats caching."""
    prepare_data_dir(settings)
    kernel = dataplane is None
    reached = reach(settings)
    engine = open_database(settings)
    schema.upgrade(engine)
    sessions = make_sessions(engine)
    ensure_defaults(sessions, settings.node_name)
    vault = Vault(load_or_create_key(settings.master_key_path, settings.master_key))
    if dataplane is None:
        (settings.data_dir / "logs").mkdir(exist_ok=True)
        wireguard = WireGuard(settings.wg_implementation, settings.data_dir / "logs")
        dataplane = LinuxDataplane(wireguard)
    with sessions.begin() as db:
        ensure_default_policy(db)
    guard = None
    if settings.dns_enabled:
        doh = load_doh_addresses(settings.data_dir)
        node = settings.node_name
        guard = lambda db: dns_guard(db, node, doh)  # noqa: E731
    source = DesiredStateReader(
        sessions,
        vault,
        settings.node_name,
        settings.uplink,
        policy=policy_config(settings),
        dns_guard=guard,
    )
    lock = HostLock(settings.data_dir / "dataplane.lock")
    telemetry = Telemetry()
    status = SyncStatusWriter(sessions, settings.node_name)
    timing = telemetry.reconcile_sink(lambda: reconciler.last_duration)

    def sink(desired: DesiredState, report: Report) -> None:
        status(desired, report)
        timing(desired, report)

    reconciler = Reconciler(source, dataplane, sink, lock)
    loop = Loop(reconciler, settings.reconcile_period)
    # Fresh enough that every collection pass gets a dump of its own.
    stats = DumpCache(dataplane.dump_all, min(stats_max_age, settings.metrics_period / 2))
    deps = Deps(
        sessions=sessions,
        vault=vault,
        reconciler=reconciler,
        node=settings.node_name,
        public_host=settings.public_host,
        stats=stats,
        trigger=loop.trigger,
        policy=policy_config(settings),
        allocation=allocation_of(settings),
        tenant_allocation=tenant_allocation_of(settings),
        uplink_address=outbound_address if kernel else lambda: None,
    )
    interfaces = InterfaceService(deps)
    peers = PeerService(deps, interfaces)
    passwords = Passwords(
        settings.password_min_length,
        params=hash_params(settings),
        concurrency=settings.password_hash_concurrency,
    )
    reconciler.usage_sink = UsageRecorder(deps)
    lists = ListStore(
        lists_dir(settings.data_dir),
        local_dir=local_lists_dir(settings.data_dir),
        allow_private=settings.dns_lists_allow_private,
        max_bytes=settings.dns_list_max_mb * 2**20,
    )
    runtime = build_dns(settings, DnsStore(sessions, settings.node_name), lists)
    if runtime is not None:
        telemetry.registry.register(DnsExporter(runtime))
    reload = runtime.reload_lists if runtime else (lambda: None)
    store = TrafficStore(engine)
    collector = Collector(stats.timed, store, settings.node_name, settings.metrics_period)
    telemetry.watch(collector)
    traffic = TrafficService(sessions, store, settings.node_name)
    initial = InitialPassword(settings.data_dir, FIRST_ADMIN)
    auth = AuthService(
        sessions, vault, passwords, auth_config(settings), on_sign_in=initial.signed_in
    )
    dns = DnsService(deps, lists, reload)
    return Container(
        settings,
        engine,
        deps,
        reconciler,
        loop,
        interfaces,
        peers,
        TokenService(sessions),
        ProfileService(deps),
        UsageService(deps, traffic),
        dns,
        collector,
        traffic,
        telemetry,
        users=UserService(sessions, passwords, settings.default_device_limit),
        auth=auth,
        audit_log=AuditLog(sessions),
        shares=ShareService(sessions, peers, reached.public_url, settings.share_link_hours),
        plans=PlanService(deps),
        tenants=TenantService(deps, interfaces, dns, traffic),
        dns_runtime=runtime,
        reach=reached,
        initial_password=initial,
        kernel=kernel,
    )


def open_database(settings: Settings) -> Engine:
    """The engine, once the database answers (it may be starting beside us)."""
    engine = make_engine(
        settings.db_url,
        PoolOptions(
            size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            timeout=settings.database_pool_timeout,
            recycle=settings.database_pool_recycle,
            connect_timeout=settings.database_connect_timeout,
        ),
    )
    try:
        wait_for_database(engine, settings.database_wait)
    except DatabaseUnavailable as exc:
        engine.dispose()
        named = "WIREWARDEN_DATABASE_URL" if settings.database_url else "WIREWARDEN_DATA_DIR"
        raise StartupError(f"{named}: {exc}") from exc
    return engine


def copy_database_to(settings: Settings, url: str, progress: Progress | None = None) -> CopyReport:
    """`wirewarden db copy --to URL`: this install's database into another (store/copy.py)."""
    if make_url(url) == make_url(settings.db_url):
        raise StartupError("--to names the database this install already uses")
    source = open_database(settings)
    target = make_engine(url)
    try:
        try:
            wait_for_database(target, settings.database_wait)
        except DatabaseUnavailable as exc:
            raise StartupError(f"--to: {exc}") from exc
        return copy_database(source, target, progress)
    finally:
        source.dispose()
        target.dispose()


def policy_config(settings: Settings) -> PolicyConfig:
    lans = settings.lan_networks
    return PolicyConfig(
        lan_networks=None if lans is None else tuple(split_csv(lans)),
        cap_action=settings.cap_action,
        throttle_kbit=settings.cap_throttle_kbit,
        tz=ZoneInfo(settings.timezone) if settings.timezone else None,
        leaf_qdisc=settings.tc_leaf,
    )


def build_dns(settings: Settings, store: DnsStore, lists: ListStore) -> DnsRuntime | None:
    if not settings.dns_enabled:
        return None
    try:
        upstreams = parse_upstreams(settings.dns_upstreams or system_upstreams())
    except ValueError as exc:
        raise SettingsError(f"WIREWARDEN_DNS_UPSTREAMS: {exc}") from exc
    helpers: list[Helper] = [local_unbound(settings, u) for u in upstreams if u.scheme == UNBOUND]
    config = DnsConfig(
        port=settings.dns_port,
        extra_listen=tuple(a.strip() for a in settings.dns_listen.split(",") if a.strip()),
        refresh_seconds=settings.dns_refresh_hours * 3600,
        retention_seconds=settings.dns_log_retention_days * 86400,
        max_log_rows=settings.dns_log_max_rows,
        cache=CacheLimits(
            max_entries=settings.dns_cache_entries,
            stale_seconds=settings.dns_serve_stale_seconds,
        ),
    )
    ports = Ports(store.revision, store.directory, store.write_log, store.prune_log)
    if shared_database(settings.db_url):
        ports.log_process = partial(log_ports, settings.db_url, settings.node_name)
    return DnsRuntime(config, UpstreamSet(upstreams), lists, ports, helpers)


def local_unbound(settings: Settings, upstream: Upstream) -> LocalUnbound:
    """The Unbound an `unbound` upstream names, run by the resolver (not started here:
    every CLI command builds the container)."""
    options = UnboundOptions(
        settings.data_dir / "dns" / "unbound",
        host=upstream.host,
        port=upstream.port,
        dnssec=settings.dns_unbound_dnssec,
        root_hints=settings.dns_unbound_root_hints or ROOT_HINTS,
    )
    if find_binary(options.binary) is None:
        raise SettingsError(
            f"WIREWARDEN_DNS_UPSTREAMS names {upstream.label}, but the unbound binary is not "
            "installed (apt install unbound dns-root-data), or drop it from the list"
        )
    return LocalUnbound(options)


def auth_config(settings: Settings) -> AuthConfig:
    return AuthConfig(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_max_hours),
        totp_required_for_admins=settings.totp_required_for_admins,
        max_failures=settings.login_max_failures,
        max_failures_per_source=settings.login_max_failures_per_source,
        window=timedelta(minutes=settings.login_window_minutes),
        lockout=timedelta(minutes=settings.login_lockout_minutes),
    )


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic says "Context impl SQLiteImpl" and each step at INFO on every start: only
    # worth seeing when debugging.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("alembic").setLevel(logging.WARNING)
