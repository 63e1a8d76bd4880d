"""What the DNS resolver reads from and writes to the database."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain import dnswire
from wirewarden.domain.addresses import host_of
from wirewarden.domain.dnsstate import DEFAULT_POLICY, Client, DnsDirectory, DnsGuard, PolicySpec
from wirewarden.store.db import (
    bulk_insert,
    engine_of,
    make_engine,
    make_sessions,
    stores_datetime_as_text,
)
from wirewarden.store.fleet import revision_of
from wirewarden.store.scoped import NameMap
from wirewarden.store.tables import DnsPolicy, DnsQuery, Interface, Node, Peer, Tenant

_LOG_COLUMNS = (
    ("at", "TIMESTAMP WITH TIME ZONE"),
    ("peer_id", "INTEGER"),
    ("peer", "TEXT"),
    ("client", "TEXT"),
    ("policy", "TEXT"),
    ("name", "TEXT"),
    ("qtype", "TEXT"),
    ("status", "TEXT"),
    ("reason", "TEXT"),
    ("rcode", "TEXT"),
    ("upstream", "TEXT"),
    ("latency_ms", "DOUBLE PRECISION"),
    ("count", "INTEGER"),
)
# Rows through the driver's executemany (SQLite) or as arrays in one statement (PostgreSQL).
_INSERT = bulk_insert("dns_queries", [(c, c, kind) for c, kind in _LOG_COLUMNS], cast_rows=False)
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def policy_spec(row: DnsPolicy, name: str | None = None) -> PolicySpec:
    """`name`: the policy's fleet-wide name where it differs from its own (store.scoped)."""
    return PolicySpec(
        name=name or row.name,
        blocklists=tuple(row.blocklists or ()),
        deny=tuple(row.deny or ()),
        allow=tuple(row.allow or ()),
        block_answer=row.block_answer,
        anti_bypass=row.anti_bypass,
    )


def _host(cidr: str | None) -> str | None:
    return host_of(cidr) if cidr else None


def _network(cidr: str | None) -> str | None:
    return str(ipaddress.ip_interface(cidr).network) if cidr else None


def read_directory(
    db: Session,
    node: str,
    since: DnsDirectory | None = None,
    peers: frozenset[int] | None = None,
) -> DnsDirectory:
    """What the node's resolver serves. Given the directory of an earlier read (`since`)
    and the peers changed after it (`peers`, as the desired state's reader noted them),
    only those peers' rows are read again: the rest is the earlier directory's, when the
    gateways, networks and policies it holds are the same (else all is read)."""
    revision = revision_of(db, node)
    names = NameMap(db, DnsPolicy)
    # Keyed by fleet-wide name: a tenant's own policy may share its name with another's.
    specs = (
        policy_spec(r, names.of_row(r.tenant_id, r.name)) for r in db.scalars(select(DnsPolicy))
    )
    policies = {spec.name: spec for spec in specs}
    ifaces = db.execute(
        select(
            Interface.id,
            Interface.name,
            Interface.ipv4,
            Interface.ipv6,
            Interface.tenant_id,
            Tenant.dns_policy,
        )
        .join(Node, Interface.node_id == Node.id)
        .join(Tenant, Interface.tenant_id == Tenant.id)
        .where(Node.name == node, Interface.enabled.is_(True))
    ).all()
    listen: list[str] = []
    networks: list[str] = []
    tenant_policy: dict[int, tuple[str, int, str | None]] = {}
    for iface_id, name, ipv4, ipv6, tenant, tenant_dns in ifaces:
        listen += [h for h in (_host(ipv4), _host(ipv6)) if h]
        networks += [n for n in (_network(ipv4), _network(ipv6)) if n]
        tenant_policy[iface_id] = (name, tenant, tenant_dns)
    frame = (tuple(listen), tuple(networks), policies)
    same = since is not None and frame == (since.listen, since.networks, since.policies)
    query = select(
        Peer.id, Peer.name, Peer.interface_id, Peer.ipv4, Peer.ipv6, Peer.dns_policy
    ).where(Peer.interface_id.in_(tenant_policy))
    clients: dict[str, Client] = {}
    if same and since is not None and peers is not None:
        clients = {a: c for a, c in since.clients.items() if c.peer_id not in peers}
        query = query.where(Peer.id.in_(peers))
    # Through the connection: the ORM's row handling would cost more than the rows.
    for peer_id, peer, iface_id, ipv4, ipv6, own in db.connection().execute(query).all():
        iface, tenant, tenant_dns = tenant_policy[iface_id]
        policy = _effective(own, tenant_dns, tenant, names, policies)
        client = Client(peer_id, peer, iface, policy)
        for addr in (ipv4, ipv6):
            if addr:
                clients[addr] = client
    return DnsDirectory(revision, tuple(listen), tuple(networks), clients, policies)


def _effective(
    own: str | None,
    tenant_dns: str | None,
    tenant: int,
    names: NameMap,
    policies: dict[str, PolicySpec],
) -> str:
    for name in (own, tenant_dns):
        key = names.kernel_name(name, tenant) if name else None
        if key and key in policies:
            return key
    return DEFAULT_POLICY


def dns_guard(db: Session, node: str, doh: Sequence[str]) -> DnsGuard:
    """The nftables part: gateways per interface, peers exempt from anti-bypass."""
    gateways: dict[str, tuple[str, ...]] = {}
    ifaces = db.execute(
        select(Interface.name, Interface.ipv4, Interface.ipv6)
        .join(Node, Interface.node_id == Node.id)
        .where(Node.name == node, Interface.enabled.is_(True))
    ).all()
    for name, ipv4, ipv6 in ifaces:
        gateways[name] = tuple(h for h in (_host(ipv4), _host(ipv6)) if h)
    return DnsGuard(gateways, _exempt(db, node), tuple(doh))


def _exempt(db: Session, node: str) -> tuple[str, ...]:
    """Addresses of peers whose policy has anti-bypass off. Usually no policy does, and then
    the peers need not be read at all (the reconciler asks on every pass with a change)."""
    off = db.scalar(select(DnsPolicy.id).where(DnsPolicy.anti_bypass.is_(False)).limit(1))
    if off is None:
        return ()
    directory = read_directory(db, node)
    return tuple(
        sorted(
            addr
            for addr, client in directory.clients.items()
            if not directory.policies.get(client.policy, PolicySpec(DEFAULT_POLICY)).anti_bypass
        )
    )


class DnsStore:
    """The resolver's ports onto the database."""

    def __init__(self, sessions: sessionmaker[Session], node: str) -> None:
        self.sessions, self.node = sessions, node

    def revision(self) -> int:
        with self.sessions() as db:
            return revision_of(db, self.node)

    def directory(self) -> DnsDirectory:
        with self.sessions() as db:
            return read_directory(db, self.node)

    def write_log(self, records: Sequence[tuple[Any, ...]]) -> None:
        """Insert a batch of records (resolver.Record, the count last) with the driver's
        executemany: at thousands of rows a second, SQLAlchemy's per-row bind processing
        would cost more than the resolver itself."""
        if not records:
            return
        engine = engine_of(self.sessions)
        # The rows skip SQLAlchemy's type processing (see Bulk), so the timestamp goes in
        # the form the column's type would have stored.
        as_text = stores_datetime_as_text(engine.dialect)
        names: dict[bytes, str] = {}
        seconds: dict[int, str] = {}  # a batch spans about a second: format each once
        rows = []
        for (
            at,
            peer_id,
            peer,
            client,
            policy,
            name,
            qtype,
            status,
            reason,
            rcode,
            up,
            ms,
            count,
        ) in records:
            if as_text:
                whole = int(at)
                prefix = seconds.get(whole) or seconds.setdefault(
                    whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%d %H:%M:%S")
                )
                stamp: object = f"{prefix}.{int((at - whole) * 1e6):06d}"
            else:
                stamp = datetime.fromtimestamp(at, UTC)
            if not isinstance(name, str):
                name = names.get(name) or names.setdefault(name, dnswire.wire_to_text(name))
            rows.append(
                {
                    "at": stamp,
                    "peer_id": peer_id,
                    "peer": peer,
                    "client": client,
                    "policy": policy,
                    "name": name,
                    "qtype": dnswire.type_name(qtype),
                    "status": status,
                    "reason": reason,
                    "rcode": RCODES.get(rcode) or str(rcode),
                    "upstream": up,
                    "latency_ms": ms,
                    "count": count,
                }
            )
        with engine.begin() as conn:
            _INSERT.execute(conn, rows)

    def prune_log(self, before: float, max_rows: int) -> int:
        """Remove entries older than `before` and all but the newest `max_rows`."""
        cutoff = datetime.fromtimestamp(before, UTC)
        with self.sessions.begin() as db:
            gone = _count(db.execute(delete(DnsQuery).where(DnsQuery.at < cutoff)))
            # Ids have gaps after the age prune (and rolled-back inserts), so the cut is the
            # max_rows-th newest id that exists, not max(id) - max_rows.
            if max_rows <= 0:
                return gone + _count(db.execute(delete(DnsQuery)))
            kept = select(DnsQuery.id).order_by(DnsQuery.id.desc()).offset(max_rows - 1).limit(1)
            oldest_kept = db.scalar(kept)
            if oldest_kept is not None:
                gone += _count(db.execute(delete(DnsQuery).where(DnsQuery.id < oldest_kept)))
            return gone


def log_ports(
    url: str, node: str
) -> tuple[Callable[[list[Any]], None], Callable[[float, int], int]]:
    """The query log's write and prune on an engine of their own: what the resolver's log
    writer process runs (dns/logwriter.py)."""
    store = DnsStore(make_sessions(make_engine(url)), node)
    return store.write_log, store.prune_log


def shared_database(url: str) -> bool:
    """Whether another process can open the same database (not an in-memory SQLite)."""
    parsed = make_url(url)
    in_memory = parsed.database in (None, "", ":memory:")
    return parsed.get_backend_name() != "sqlite" or not in_memory


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
