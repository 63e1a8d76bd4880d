"""The composition root: the only place that picks concrete drivers and stores."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.config import Settings, SettingsError, StartupError
from wirewarden.dataplane.hostinfo import outbound_address
from wirewarden.dns.lists import ListStore, lists_dir, local_lists_dir
from wirewarden.domain import addresses, urls
from wirewarden.domain.policy import PeerPolicy, PolicyConfig
from wirewarden.domain.state import DesiredState, HostFootprint, PeerState
from wirewarden.metrics.prometheus import NodeExporter, Telemetry
from wirewarden.runtime.fleet import FleetApplier, NodeStates
from wirewarden.services.applier import Change
from wirewarden.services.audit_log import AuditLog
from wirewarden.services.auth import AuthConfig, AuthService
from wirewarden.services.context import Allocation, Deps, ensure_defaults
from wirewarden.services.dns import DnsService, ensure_default_policy
from wirewarden.services.first_admin import InitialPassword
from wirewarden.services.interfaces import InterfaceService
from wirewarden.services.mappings import MappingService
from wirewarden.services.node_reports import NodeReports
from wirewarden.services.nodes import NodeService
from wirewarden.services.passwords import HashParams, Passwords
from wirewarden.services.peers import PeerService
from wirewarden.services.placement import PlacementService
from wirewarden.services.plans import PlanService
from wirewarden.services.policy import ProfileService, UsageService
from wirewarden.services.shares import ShareService
from wirewarden.services.tenants import TenantService
from wirewarden.services.tokens import TokenService
from wirewarden.services.traffic import TrafficService
from wirewarden.services.users import FIRST_ADMIN, UserService
from wirewarden.store import schema
from wirewarden.store.db import (
    DatabaseUnavailable,
    PoolOptions,
    make_engine,
    make_sessions,
    wait_for_database,
)
from wirewarden.store.desired import DesiredStateReader, split_csv
from wirewarden.store.fleet import Wakes, watch_commits
from wirewarden.store.tsdb import TrafficStore
from wirewarden.store.vault import Vault, load_or_create_key

if TYPE_CHECKING:
    from wirewarden.agent.agent import Agent
    from wirewarden.agent.node import NodeHost

    # The node runtime's parts are imported where it is built (build_runtime): a CLI
    # command that only reads the database never loads a driver, the resolver or the
    # collector (`wirewarden interface list` starts in well under a second).
    from wirewarden.dataplane.stats import DumpCache
    from wirewarden.dataplane.unbound import LocalUnbound
    from wirewarden.dns.runtime import DnsRuntime, Ports
    from wirewarden.dns.upstream import Upstream
    from wirewarden.domain.exposure import Forward
    from wirewarden.domain.firewall import KernelCounts, Quota
    from wirewarden.domain.state import DeviceDump
    from wirewarden.metrics.collector import Collector
    from wirewarden.reconciler.engine import Loop, Reconciler
    from wirewarden.reconciler.ports import Dataplane
    from wirewarden.relay.front import Front
    from wirewarden.runtime.applier import LocalApplier
    from wirewarden.runtime.classifier import ClassifierControl
    from wirewarden.store.copy import CopyReport, Progress

log = logging.getLogger(__name__)
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
class NodeRuntime:
    """What runs beside this host's kernel: the data plane, the reconciler and its loop,
    the traffic collector and the DNS resolver, and the applier the services hand their
    changes to. `serve` starts it; a CLI command builds it only to apply a change."""

    dataplane: Dataplane
    reader: DesiredStateReader
    reconciler: Reconciler
    loop: Loop
    stats: DumpCache
    # The live counters as the services read them (their error is ApplyFailed).
    live_stats: Callable[[], dict[str, DeviceDump]]
    collector: Collector
    applier: LocalApplier
    # The resolver `serve` runs (started by the web app's lifespan); None when disabled.
    dns_runtime: DnsRuntime | None
    # Built with the real data plane: its changes need CAP_NET_ADMIN.
    kernel: bool
    # The classifier's queue rules and reader (None with a test's fake data plane).
    classifier: ClassifierControl | None = None


class RuntimeHandle:
    """The node runtime, built on first use: a command that only reads the database (most
    of the CLI) never loads a driver nor looks at the kernel."""

    def __init__(self, factory: Callable[[], NodeRuntime]) -> None:
        self._factory = factory
        self._built: NodeRuntime | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> NodeRuntime | None:
        return self._built

    def get(self) -> NodeRuntime:
        with self._lock:
            if self._built is None:
                self._built = self._factory()
            return self._built


class DeferredApplier:
    """The services' applier before the runtime exists: builds it at the first change."""

    def __init__(self, handle: RuntimeHandle) -> None:
        self.handle = handle

    def _to(self) -> LocalApplier:
        return self.handle.get().applier

    def turn(self) -> AbstractContextManager[object]:
        return self._to().turn()

    def set_peer(self, interface: str, peer: PeerState) -> None:
        self._to().set_peer(interface, peer)

    def remove_peer(self, interface: str, public_key: str) -> None:
        self._to().remove_peer(interface, public_key)

    def set_policy(self, old: PeerPolicy | None, new: PeerPolicy | None, leaf: str) -> None:
        self._to().set_policy(old, new, leaf)

    def set_forwards(self, interface: str, old: Sequence[Forward], new: Sequence[Forward]) -> None:
        self._to().set_forwards(interface, old, new)

    def remove_interface(self, name: str) -> None:
        self._to().remove_interface(name)

    def apply(self, change: Change) -> None:
        self._to().apply(change)

    def changed(self, change: Change) -> None:
        self._to().changed(change)

    def quotas(self, prefix: str) -> dict[str, Quota]:
        return self._to().quotas(prefix)

    def kernel_counts(self) -> KernelCounts:
        return self._to().kernel_counts()

    def host_footprint(self, ours: frozenset[str]) -> HostFootprint:
        return self._to().host_footprint(ours)


@dataclass
class ControlPlane:
    """The store, the use cases and what the web serves; the node runtime beside it."""

    settings: Settings
    engine: Engine
    deps: Deps
    interfaces: InterfaceService
    peers: PeerService
    tokens: TokenService
    profiles: ProfileService
    usage: UsageService
    dns: DnsService
    traffic: TrafficService
    telemetry: Telemetry
    users: UserService
    auth: AuthService
    audit_log: AuditLog
    shares: ShareService
    plans: PlanService
    tenants: TenantService
    mappings: MappingService
    runtime: RuntimeHandle
    nodes: NodeService
    # Node names whose desired state moved on (commits here; NOTIFYs of other replicas).
    wakes: Wakes
    # Remote nodes' desired state, as their agents are sent it.
    states: NodeStates
    reports: NodeReports
    placement: PlacementService
    reach: Reach = LOCAL
    initial_password: InitialPassword | None = None
    # Changes go to the real data plane (they need CAP_NET_ADMIN), not a test's fake.
    kernel: bool = False

    @property
    def node(self) -> NodeRuntime:
        return self.runtime.get()

    @property
    def reconciler(self) -> Reconciler:
        return self.node.reconciler

    @property
    def loop(self) -> Loop:
        return self.node.loop

    @property
    def collector(self) -> Collector:
        return self.node.collector

    @property
    def dns_runtime(self) -> DnsRuntime | None:
        return self.node.dns_runtime


# The name the web app, the CLI and the tests know the control plane by.
Container = ControlPlane


def prepare_data_dir(settings: Settings, database: bool = True) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    # Local blocklists are read from here only (dns/lists.py), so it exists from the start.
    local_lists_dir(settings.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    if database and settings.database_url is None:
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


@dataclass(frozen=True)
class _Shared:
    """What the control plane and the node runtime of one process both use."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    telemetry: Telemetry
    lists: ListStore


def build_runtime(
    shared: _Shared, dataplane: Dataplane | None = None, stats_max_age: float = 2.0
) -> NodeRuntime:
    """This host's node runtime (not started): the drivers, the reconciler, the collector
    and the resolver, on the database of `shared`."""
    from wirewarden.dataplane.linux import LinuxDataplane
    from wirewarden.dataplane.lock import HostLock
    from wirewarden.dataplane.stats import DumpCache
    from wirewarden.dataplane.wireguard import WireGuard
    from wirewarden.dns.doh import load_doh_addresses
    from wirewarden.dns.prometheus import DnsExporter
    from wirewarden.metrics.collector import Collector
    from wirewarden.reconciler.engine import Loop, Reconciler
    from wirewarden.reconciler.executor import Report
    from wirewarden.runtime.applier import LocalApplier, guarded_stats
    from wirewarden.services.policy import UsageRecorder
    from wirewarden.services.sync_status import SyncStatusWriter
    from wirewarden.store.dns import dns_guard

    settings, sessions, telemetry = shared.settings, shared.sessions, shared.telemetry
    kernel = dataplane is None
    if dataplane is None:
        (settings.data_dir / "logs").mkdir(exist_ok=True)
        wireguard = WireGuard(settings.wg_implementation, settings.data_dir / "logs")
        dataplane = LinuxDataplane(wireguard)
    guard = None
    if settings.dns_enabled:
        doh = load_doh_addresses(settings.data_dir)
        guard = partial(dns_guard, node=settings.node_name, doh=doh)
    reader = DesiredStateReader(
        sessions,
        shared.vault,
        settings.node_name,
        settings.uplink,
        policy=policy_config(settings),
        dns_guard=guard,
        expose_listen=split_csv(settings.expose_listen),
    )
    status = SyncStatusWriter(sessions, settings.node_name)
    timing = telemetry.reconcile_sink()

    classifier = classifier_control(settings) if kernel else None

    def sink(desired: DesiredState, report: Report) -> None:
        status(desired, report)
        timing(desired, report)
        if classifier is not None:
            try:
                classifier(desired)
            except Exception:  # the tunnels matter more: logged, retried next pass
                log.exception("classification could not follow the desired state")

    lock = HostLock(settings.data_dir / "dataplane.lock")
    reconciler = Reconciler(reader, dataplane, sink, lock, usage_sink=UsageRecorder(sessions))
    loop = Loop(reconciler, settings.reconcile_period)
    # Fresh enough that no collection pass counts one dump twice.
    stats = DumpCache(dataplane.dump_all, min(stats_max_age, settings.metrics_period / 2))
    fresh = None
    if isinstance(dataplane, LinuxDataplane):
        # Each reconcile pass's dump serves the collection of that moment and the pages;
        # the collector waits for one only where passes come at least as often as it.
        dataplane.dumped = stats.offer
        if settings.reconcile_period <= settings.metrics_period:
            fresh = stats.wait_fresh
    resolver = build_dns(settings, shared.lists, store_ports(settings, sessions))
    if resolver is not None:
        telemetry.registry.register(DnsExporter(resolver))
    collector = Collector(
        stats.timed,
        TrafficStore(shared.engine, names_keep(settings)),
        settings.node_name,
        settings.metrics_period,
        dataplane.observe_kernel_counts,
        classifier.drain_names if classifier is not None and classifier.names else None,
        fresh,
    )
    telemetry.watch(collector)
    applier = LocalApplier(reconciler, loop, settings.node_name, reader.note)
    return NodeRuntime(
        dataplane,
        reader,
        reconciler,
        loop,
        stats,
        guarded_stats(stats),
        collector,
        applier,
        resolver,
        kernel,
        classifier,
    )


def names_keep(settings: Settings) -> int:
    """How long server names of classified flows are kept: as long as the DNS query log."""
    return int(settings.dns_log_retention_days * 86400)


def classifier_control(settings: Settings) -> ClassifierControl:
    import sys

    from wirewarden.dataplane import steering
    from wirewarden.dataplane.supervise import Supervised
    from wirewarden.runtime.classifier import ClassifierControl

    queue = settings.classify_queue
    argv = [sys.executable, "-m", "wirewarden.dataplane.nfqueue", "--queue", str(queue)]
    names = None
    if settings.classify_names:
        from wirewarden.dataplane.namesink import NameSink

        names = NameSink(settings.data_dir / "classify-names.sock")
        argv += ["--names", str(names.path)]
    reader = Supervised("classifier", argv, partial(steering.queue_bound, queue))
    return ClassifierControl(
        settings.classify, queue, reader, steering.apply, steering.remove, names
    )


def node_states(shared: _Shared) -> NodeStates:
    """Each remote node's state as this control plane reads it for its agent."""
    from wirewarden.store.dns import dns_guard, read_directory

    settings = shared.settings
    doh: list[str] = []
    if settings.dns_enabled:
        from wirewarden.dns.doh import load_doh_addresses

        doh = load_doh_addresses(settings.data_dir)

    def reader(node: str) -> DesiredStateReader:
        guard = partial(dns_guard, node=node, doh=doh) if settings.dns_enabled else None
        # The node's uplink and public addresses are its agent's to know: none here.
        return DesiredStateReader(
            shared.sessions,
            shared.vault,
            node,
            None,
            policy=policy_config(settings),
            dns_guard=guard,
            names=settings.name_zone(),
        )

    return NodeStates(reader, read_directory if settings.dns_enabled else None)


def build(
    settings: Settings,
    dataplane: Dataplane | None = None,
    stats_max_age: float = 2.0,
    runtime: bool = True,
) -> ControlPlane:
    """The control plane, with this host's node runtime built now (`serve`, tests) or at
    its first use (`runtime=False`: CLI commands). `dataplane` and `stats_max_age` are for
    tests: a fake kernel, and no stats caching."""
    prepare_data_dir(settings)
    reached = reach(settings)
    engine = open_database(settings)
    schema.upgrade(engine)
    sessions = make_sessions(engine)
    wakes = Wakes()
    watch_commits(sessions, wakes)
    ensure_defaults(sessions, settings.node_name)
    with sessions.begin() as db:
        ensure_default_policy(db)
    lists = list_store(settings)
    vault = Vault(load_or_create_key(settings.master_key_path, settings.master_key))
    shared = _Shared(settings, engine, sessions, vault, Telemetry(), lists)
    handle = RuntimeHandle(partial(build_runtime, shared, dataplane, stats_max_age))
    if runtime:
        handle.get()
    states = node_states(shared)
    # Bound below, once the node service exists (it answers the applier's look-ups).
    nodes_ref: list[NodeService] = []
    applier = FleetApplier(
        DeferredApplier(handle),
        settings.node_name,
        lambda interface: nodes_ref[0].node_of_interface(interface),
        states,
        lambda prefix: nodes_ref[0].quotas_reported(prefix),
    )
    deps = Deps(
        sessions=sessions,
        vault=vault,
        applier=applier,
        desired=lambda: handle.get().reader(),
        node=settings.node_name,
        public_host=settings.public_host,
        stats=lambda: handle.get().live_stats(),
        policy=policy_config(settings),
        allocation=allocation_of(settings),
        tenant_allocation=tenant_allocation_of(settings),
        uplink_address=outbound_address if dataplane is None else lambda: None,
    )
    interfaces = InterfaceService(deps)
    peers = PeerService(deps, interfaces)
    nodes_ref.append(NodeService(deps))
    shared.telemetry.registry.register(NodeExporter(nodes_ref[0].gauges))
    passwords = Passwords(
        settings.password_min_length,
        params=hash_params(settings),
        concurrency=settings.password_hash_concurrency,
    )

    def reload_lists() -> None:
        # Only a resolver this process runs has lists loaded to refresh.
        node = handle.built
        if node is not None and node.dns_runtime is not None:
            node.dns_runtime.reload_lists()

    traffic = TrafficService(
        sessions, TrafficStore(engine, names_keep(settings)), settings.node_name
    )
    initial = InitialPassword(settings.data_dir, FIRST_ADMIN)
    auth = AuthService(
        sessions, vault, passwords, auth_config(settings), on_sign_in=initial.signed_in
    )
    dns = DnsService(deps, lists, reload_lists)
    return ControlPlane(
        settings,
        engine,
        deps,
        interfaces,
        peers,
        TokenService(sessions),
        ProfileService(deps),
        UsageService(deps, traffic, settings.classify_names),
        dns,
        traffic,
        shared.telemetry,
        users=UserService(sessions, passwords, settings.default_device_limit),
        auth=auth,
        audit_log=AuditLog(sessions),
        shares=ShareService(sessions, peers, reached.public_url, settings.share_link_hours),
        plans=PlanService(deps),
        tenants=TenantService(deps, interfaces, dns, traffic),
        mappings=MappingService(
            deps,
            host_ports if dataplane is None else lambda _: frozenset(),
            settings.name_zone(),
        ),
        runtime=handle,
        nodes=nodes_ref[0],
        wakes=wakes,
        states=states,
        reports=NodeReports(sessions, TrafficStore(engine, names_keep(settings))),
        placement=PlacementService(deps, peers),
        reach=reached,
        initial_password=initial,
        kernel=dataplane is None,
    )


def list_store(settings: Settings) -> ListStore:
    return ListStore(
        lists_dir(settings.data_dir),
        local_dir=local_lists_dir(settings.data_dir),
        allow_private=settings.dns_lists_allow_private,
        max_bytes=settings.dns_list_max_mb * 2**20,
    )


def build_agent(
    settings: Settings, dataplane: Dataplane | None = None, version: str = ""
) -> tuple[Agent, NodeHost]:
    """A fleet node's agent (`wirewarden agent`) and the host it drives: the reconciler,
    resolver and classifier of `serve`, fed by the state the agent holds instead of a
    database. `dataplane` is for tests (a fake kernel)."""
    from wirewarden import __version__
    from wirewarden.agent.agent import Agent, Timing, TunnelSetup
    from wirewarden.agent.dnslog import rows_of
    from wirewarden.agent.files import SealedFiles
    from wirewarden.agent.held import HeldState
    from wirewarden.agent.host import Pass
    from wirewarden.agent.node import NodeHost
    from wirewarden.agent.outbox import Outbox
    from wirewarden.agent.telemetry import QuotaWatch
    from wirewarden.dataplane.hostinfo import cpu_times
    from wirewarden.dataplane.linux import LinuxDataplane
    from wirewarden.dataplane.lock import HostLock
    from wirewarden.dataplane.stats import DumpCache
    from wirewarden.dataplane.wireguard import WireGuard
    from wirewarden.dns.runtime import Ports
    from wirewarden.domain.dnsstate import DnsDirectory
    from wirewarden.fleet.client import Server
    from wirewarden.reconciler.engine import Loop, Reconciler
    from wirewarden.reconciler.executor import Report

    if settings.agent_server is None:
        raise SettingsError("WIREWARDEN_AGENT_SERVER: give the control plane's URL (--server)")
    try:
        server = Server(settings.agent_server, settings.agent_ca_file)
    except ValueError as exc:
        raise SettingsError(f"WIREWARDEN_AGENT_SERVER: {exc}") from exc
    if settings.agent_ca_file is not None and not settings.agent_ca_file.is_file():
        raise SettingsError(f"WIREWARDEN_AGENT_CA_FILE: {settings.agent_ca_file} is not a file")
    prepare_data_dir(settings, database=False)
    files = SealedFiles(settings.data_dir / "agent")
    held = HeldState(files, settings.uplink, tuple(split_csv(settings.expose_listen)))
    batches = max(1, int(settings.agent_buffer_hours * 3600 / settings.metrics_period))
    outbox = Outbox(files, batches)
    kernel = dataplane is None
    heartbeat = 10.0
    # Only the kernel's data plane offers its passes' dumps (LinuxDataplane.dumped).
    align = kernel and settings.reconcile_period <= min(heartbeat, settings.metrics_period)
    timing = Timing(heartbeat=heartbeat, report=settings.metrics_period, align=align)
    tunnel = TunnelSetup(settings.tunnel_api_port, host_ports) if kernel else None
    agent = Agent(
        files,
        held,
        outbox,
        server,
        version or __version__,
        settings.agent_join_token,
        timing,
        tunnel=tunnel,
    )
    if dataplane is None:
        (settings.data_dir / "logs").mkdir(exist_ok=True)
        logs = settings.data_dir / "logs"
        dataplane = LinuxDataplane(WireGuard(settings.wg_implementation, logs))
    classifier = classifier_control(settings) if kernel else None

    def passed(desired: DesiredState, report: Report) -> None:
        errors = "; ".join(f"{k or 'host'}: {v}" for k, v in sorted(report.errors.items()))
        agent.passed(Pass(desired.revision, report.ok, errors or None))
        if classifier is not None:
            try:
                classifier(desired)
            except Exception:  # the tunnels matter more: logged, retried next pass
                log.exception("classification could not follow the desired state")

    quotas = QuotaWatch()
    reconciler = Reconciler(
        held,
        dataplane,
        passed,
        HostLock(settings.data_dir / "dataplane.lock"),
        usage_sink=lambda desired, seen: outbox.add(quotas=quotas.moved(desired, seen)),
    )
    loop = Loop(reconciler, settings.reconcile_period)

    def directory() -> DnsDirectory:
        found = held.held
        if found is None or found.state.dns is None:
            return DnsDirectory(held.revision(), (), ())
        return found.state.dns

    ports = Ports(
        held.revision,
        directory,
        lambda records: outbox.add(dns_log=rows_of(records)),
        # The control plane keeps the query log; nothing is kept here to prune.
        lambda _before, _rows: 0,
    )
    resolver = build_dns(settings, list_store(settings), ports)
    stats = DumpCache(dataplane.dump_all, 2.0)
    if isinstance(dataplane, LinuxDataplane):
        dataplane.dumped = stats.offer
    host = NodeHost(reconciler, loop, stats, cpu_times, resolver, classifier)
    return agent, host


def name_front(container: Container) -> Front | None:
    """The front listener of HTTP services by name, when this server publishes names."""
    from wirewarden.relay.front import Front

    zone = container.mappings.names
    if zone is None:
        return None
    hosts = split_csv(container.settings.expose_listen) or None
    front = Front(container.mappings.routes, hosts, zone.http_port, zone.https_port)
    container.mappings.names_changed = front.changed
    container.mappings.name_traffic = lambda: dict(front.traffic)
    return front


def host_ports(proto: str) -> frozenset[int]:
    """The ports this host's sockets hold (expose never takes one over)."""
    from wirewarden.dataplane.links import listening_ports

    return listening_ports(proto)


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
    from wirewarden.store.copy import copy_database

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


def store_ports(settings: Settings, sessions: sessionmaker[Session]) -> Ports:
    """The resolver's directory and query log in this install's database."""
    from wirewarden.dns.runtime import Ports
    from wirewarden.store.dns import DnsStore, log_ports, shared_database

    store = DnsStore(sessions, settings.node_name)
    ports = Ports(store.revision, store.directory, store.write_log, store.prune_log)
    if shared_database(settings.db_url):
        ports.log_process = partial(log_ports, settings.db_url, settings.node_name)
    return ports


def build_dns(settings: Settings, lists: ListStore, ports: Ports) -> DnsRuntime | None:
    if not settings.dns_enabled:
        return None
    from wirewarden.dns.cache import CacheLimits
    from wirewarden.dns.doh import system_upstreams
    from wirewarden.dns.runtime import DnsConfig, DnsRuntime, Helper
    from wirewarden.dns.upstream import UNBOUND, UpstreamSet, parse_upstreams

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
    return DnsRuntime(config, UpstreamSet(upstreams), lists, ports, helpers)


def local_unbound(settings: Settings, upstream: Upstream) -> LocalUnbound:
    """The Unbound an `unbound` upstream names, run by the resolver (not started here)."""
    from wirewarden.dataplane.unbound import ROOT_HINTS, LocalUnbound, UnboundOptions, find_binary

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
