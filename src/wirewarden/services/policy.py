"""Use cases of network policy: custom ACL profiles, a peer's data usage and its reset."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from wirewarden.domain.addresses import host_of
from wirewarden.domain.classify.steering import app_of
from wirewarden.domain.firewall import AppCount, ObservedFirewall
from wirewarden.domain.names import check_name
from wirewarden.domain.policy import (
    BUILTIN_PROFILES,
    PolicyError,
    cap_period,
    check_rules,
    parse_rule,
)
from wirewarden.domain.state import DesiredState
from wirewarden.services import access
from wirewarden.services.applier import FIREWALL, ApplyFailed, Change
from wirewarden.services.context import (
    SYSTEM,
    Actor,
    Deps,
    audit,
    bump_all,
    bump_revision,
    node_name_of,
)
from wirewarden.services.errors import Conflict, Invalid, NotFound
from wirewarden.services.schemas import (
    AclRuleIn,
    AppName,
    AppsOut,
    AppUsage,
    ProfileIn,
    ProfileOut,
    UsageOut,
)
from wirewarden.services.traffic import TrafficService
from wirewarden.store import scoped
from wirewarden.store.db import retry_on_busy
from wirewarden.store.tables import AclProfile, Interface, Peer


def host_tz(deps: Deps) -> tzinfo:
    return deps.policy.tz or datetime.now().astimezone().tzinfo or UTC


class ProfileService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def list(self) -> list[ProfileOut]:
        with self.deps.sessions() as db:
            counted = db.execute(select(Peer.acl, func.count()).group_by(Peer.acl)).all()
            counts = {acl: count for acl, count in counted}
            builtin = [
                ProfileOut(
                    name=n, rules=[], default="allow", builtin=True, peer_count=counts.get(n, 0)
                )
                for n in BUILTIN_PROFILES
            ]
            global_ = scoped.owned_by(AclProfile, None)
            rows = db.scalars(select(AclProfile).where(global_).order_by(AclProfile.name)).all()
            return builtin + [_out(p, counts.get(p.name, 0)) for p in rows]

    def get(self, name: str) -> ProfileOut:
        for profile in self.list():
            if profile.name == name:
                return profile
        raise NotFound(f"ACL profile {name!r} not found")

    def put(self, name: str, data: ProfileIn, actor: Actor) -> tuple[ProfileOut, bool]:
        """Create or replace a custom profile; returns it and whether it was created."""
        access.require_admin(actor)  # profiles are shared by every tenant
        try:
            check_name(name)
        except ValueError as exc:
            raise Invalid(str(exc), "name") from exc
        if name in BUILTIN_PROFILES:
            raise Conflict(f"{name!r} is a built-in profile", "name")
        rules = [r.model_dump(exclude_none=True) for r in data.rules]
        try:
            parsed = tuple(parse_rule(r, f"rules[{i}]") for i, r in enumerate(rules))
            check_rules(parsed)
        except PolicyError as exc:
            raise Invalid(str(exc), exc.field or "rules") from exc
        with self.deps.sessions() as db:
            row = scoped.find(db, AclProfile, name, None)
            created = row is None
            if row is None:
                row = AclProfile(name=name)
                db.add(row)
            row.rules, row.default_action = rules, data.default
            bump_all(db)
            audit(db, actor, "acl_profile.put", name, rules=len(rules), default=data.default)
            db.commit()
            count = db.scalar(select(func.count()).where(Peer.acl == name)) or 0
            out = _out(row, count)
        # The profile's chain is part of the table skeleton.
        self.deps.applier.changed(Change.of(self.deps.node, None, FIREWALL))
        return out, created

    def delete(self, name: str, actor: Actor) -> None:
        access.require_admin(actor)
        with self.deps.sessions() as db:
            row = scoped.find(db, AclProfile, name, None)
            if row is None:
                raise NotFound(f"ACL profile {name!r} not found")
            used = db.scalar(select(func.count()).where(Peer.acl == name)) or 0
            if used:
                raise Conflict(f"{used} peer(s) use profile {name!r}", "name")
            db.delete(row)
            bump_all(db)
            audit(db, actor, "acl_profile.delete", name)
            db.commit()
        self.deps.applier.changed(Change.of(self.deps.node, None, FIREWALL))


def _out(row: AclProfile, count: int) -> ProfileOut:
    rules = [AclRuleIn.model_validate(r) for r in row.rules]
    return ProfileOut(name=row.name, rules=rules, default=row.default_action, peer_count=count)


def _seen_peer(db: Session, peer_id: int, actor: Actor) -> tuple[Peer, Interface]:
    """The peer and its interface, if the actor may see them (else 404 or 403)."""
    row = db.execute(select(Peer, Interface).join(Interface).where(Peer.id == peer_id)).first()
    if row is None:
        raise NotFound(f"peer {peer_id} not found")
    peer, iface = row
    access.check_peer(actor, peer, iface)
    return peer, iface


class UsageService:
    """A peer's bytes this cap period: what its nftables quota counted (or what was saved of
    it) for a capped peer, and what the traffic history recorded for every peer."""

    def __init__(
        self, deps: Deps, traffic: TrafficService | None = None, names: bool = False
    ) -> None:
        self.deps = deps
        self.traffic = traffic
        # Server names of classified flows are kept (WIREWARDEN_CLASSIFY_NAMES).
        self.names = names

    def used(self, peer: Peer, period_start: int) -> int:
        saved = peer.cap_used_bytes if peer.cap_used_period == period_start else 0
        prefix = f"cap_{peer.id}_{period_start}_"
        try:
            seen = self.deps.applier.quotas(prefix)
        except ApplyFailed:
            seen = {}
        return max([saved, *(q.used for q in seen.values())])

    def usage(self, peer_id: int, actor: Actor = SYSTEM) -> UsageOut:
        with self.deps.sessions() as db:
            peer, _ = _seen_peer(db, peer_id, actor)
            now = datetime.now(UTC)
            start, end = cap_period(now, peer.cap_reset_day, host_tz(self.deps), peer.cap_reset_at)
            rx, tx = self.traffic.between(peer.id, start, now) if self.traffic else (0, 0)
            cap = peer.data_cap_bytes
            # A capped peer is held to what its quota counts; others see their history.
            used = self.used(peer, int(start.timestamp())) if cap else rx + tx
            return UsageOut(
                peer_id=peer.id,
                used_bytes=used,
                cap_bytes=cap,
                over=cap is not None and used >= cap,
                period_start=start,
                period_end=end,
                cap_reset_day=peer.cap_reset_day,
                cap_action=self.deps.policy.cap_action,
                rx_bytes=rx,
                tx_bytes=tx,
                traffic_bytes=rx + tx,
            )

    def apps(self, peer_id: int, actor: Actor = SYSTEM, since: datetime | None = None) -> AppsOut:
        """The peer's classified traffic by class: since `since` from the metrics store,
        else as its node's kernel counts it now."""
        with self.deps.sessions() as db:
            peer, iface = _seen_peer(db, peer_id, actor)
            addresses = {host_of(a) for a in (peer.ipv4, peer.ipv6) if a}
            # Another node's kernel counts its peers: live, only this node's are read.
            here = node_name_of(db, iface.node_id) == self.deps.node
        names = self._names(peer_id, since)
        if since is not None and self.traffic is not None:
            stored = self.traffic.apps_between(peer_id, since, datetime.now(UTC))
            found = [
                AppUsage(app=a, packets=p, bytes=b, flows=f) for a, (b, p, f) in stored.items()
            ]
            found.sort(key=lambda c: (-c.bytes, c.app))
            # Every node's counts reach the store (agents report them): counted.
            return AppsOut(peer_id=peer_id, classes=found, counting=True, since=since, names=names)
        counts: tuple[AppCount, ...] = ()
        counting = False
        if here:
            # Unreadable (no table yet, nft refused): nothing counted, said so.
            with contextlib.suppress(ApplyFailed):
                counts, counting = self.deps.applier.kernel_counts().apps, True
        totals: dict[str, list[int]] = {}
        for count in counts:
            app = app_of(count.mark)
            if count.address in addresses and app is not None:
                sums = totals.setdefault(app, [0, 0, 0])
                sums[0] += count.packets
                sums[1] += count.bytes
                sums[2] += count.flows
        classes = [AppUsage(app=a, packets=p, bytes=b, flows=f) for a, (p, b, f) in totals.items()]
        classes.sort(key=lambda c: (-c.bytes, c.app))
        return AppsOut(peer_id=peer_id, classes=classes, counting=counting, names=names)

    def _names(self, peer_id: int, since: datetime | None) -> list[AppName] | None:
        """The peer's top server names (the caller may see the peer), or None when names
        are not kept."""
        if not self.names or self.traffic is None:
            return None
        start = since or datetime.now(UTC) - timedelta(days=1)
        return [
            AppName(app=n.app, name=n.name, flows=n.flows)
            for n in self.traffic.names_since(peer_id, start)
        ]

    def restore_from_history(self) -> int:
        """At start: each capped peer's count this period is at least what the traffic history
        recorded, so a quota the kernel lost (a reboot) comes back with it. Returns how many
        peers were raised."""
        if self.traffic is None:
            return 0
        now, tz, raised = datetime.now(UTC), host_tz(self.deps), 0
        with self.deps.sessions.begin() as db:
            for peer in db.scalars(select(Peer).where(Peer.data_cap_bytes.is_not(None))):
                start = cap_period(now, peer.cap_reset_day, tz, peer.cap_reset_at)[0]
                period = int(start.timestamp())
                saved = peer.cap_used_bytes if peer.cap_used_period == period else 0
                rx, tx = self.traffic.between(peer.id, start, now)
                if rx + tx > saved:
                    peer.cap_used_bytes, peer.cap_used_period = rx + tx, period
                    raised += 1
        return raised

    @retry_on_busy
    def reset(self, peer_id: int, actor: Actor) -> UsageOut:
        """Start a new cap period now: the peer gets its whole allowance back."""
        with self.deps.sessions() as db:
            row = db.execute(
                select(Peer, Interface).join(Interface).where(Peer.id == peer_id)
            ).first()
            if row is None:
                raise NotFound(f"peer {peer_id} not found")
            peer, iface = row[0], row[1]
            access.check_peer(actor, peer, iface)
            access.require_manager(actor)  # a member resetting their own cap would lift it
            peer.cap_reset_at = datetime.now(UTC)
            db.execute(update(Peer).where(Peer.id == peer.id).values(cap_used_bytes=0))
            revision = bump_revision(db, iface.node_id)
            audit(db, actor, "peer.usage_reset", f"{iface.name}/{peer.name}", iface.tenant_id)
            node = node_name_of(db, iface.node_id)
            db.commit()
        self.deps.applier.changed(Change.of_peers(node, revision, [peer_id]))
        return self.usage(peer_id, actor)


class UsageRecorder:
    """Saves what each capped peer's quota counted, so a lost quota (reboot) is restored."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._saved: dict[int, tuple[int, int]] = {}

    @retry_on_busy
    def __call__(self, desired: DesiredState, seen: ObservedFirewall | None) -> None:
        if seen is None:
            return
        changes: list[tuple[int, int, int]] = []
        for peer in desired.policy.peers:
            name = peer.quota_name
            if peer.cap is None or name is None or name not in seen.quotas:
                continue
            used = seen.quotas[name].used
            value = (used, peer.cap.period_start)
            if used > peer.cap.used_floor and self._saved.get(peer.peer_id) != value:
                changes.append((peer.peer_id, *value))
        if not changes:
            return
        with self.sessions.begin() as db:
            for peer_id, used, period in changes:
                db.execute(
                    update(Peer)
                    .where(Peer.id == peer_id)
                    .values(cap_used_bytes=used, cap_used_period=period)
                    .execution_options(synchronize_session=False)
                )
        self._saved.update({p: (u, s) for p, u, s in changes})
