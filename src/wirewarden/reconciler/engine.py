"""The reconciler: one lock around observe -> plan -> apply, and targeted single-peer applies."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Protocol

from wirewarden.domain import firewall, tcplan
from wirewarden.domain.exposure import Forward
from wirewarden.domain.policy import PeerPolicy, PolicyState
from wirewarden.domain.state import DesiredState, HostFootprint, PeerState
from wirewarden.reconciler.actions import Action, ApplyFirewall
from wirewarden.reconciler.executor import Report, execute
from wirewarden.reconciler.plan import diff
from wirewarden.reconciler.ports import Dataplane

log = logging.getLogger(__name__)


class Pin(Protocol):
    """The desired state pinned at one instant of the database."""

    def begin(self) -> frozenset[str]:
        """Take the snapshot now; the names of the interfaces we manage."""
        ...

    def read(self) -> DesiredState:
        """The desired state as of begin(), however long after it this runs."""
        ...


class DesiredSource(Protocol):
    def __call__(self) -> DesiredState: ...
    def revision(self) -> int: ...
    def pinned(self) -> AbstractContextManager[Pin]: ...


Lock = AbstractContextManager[object]
# Plans made outside the lock that a concurrent change made stale, before one under it.
STALE_RETRIES = 3


ReportSink = Callable[[DesiredState, Report], None]
UsageSink = Callable[[DesiredState, "firewall.ObservedFirewall | None"], None]


class Reconciler:
    def __init__(
        self,
        source: DesiredSource,
        dataplane: Dataplane,
        sink: ReportSink | None = None,
        lock: Lock | None = None,
        usage_sink: UsageSink | None = None,
    ) -> None:
        self.source = source
        self.dataplane = dataplane
        self.sink = sink
        # One writer to the data plane at a time: the loop, API calls and CLI calls share it.
        self.lock: Lock = lock if lock is not None else threading.RLock()
        self.last_duration = 0.0
        self.last_firewall: firewall.ObservedFirewall | None = None
        self.last_desired: DesiredState | None = None  # its interfaces' slow looks are prefetched
        # Told what the quotas counted after each pass (to save data usage).
        self.usage_sink = usage_sink

    def desired(self) -> DesiredState:
        return self._complete(self.source())

    def _complete(self, desired: DesiredState) -> DesiredState:
        """What the database leaves open, from the host: the uplink and the local networks."""
        if desired.uplink is None and desired.interfaces:
            desired = replace(desired, uplink=self.dataplane.default_uplink())
        if desired.policy.lan_networks is None and desired.interfaces:
            skip = desired.managed | {desired.uplink or ""}
            lans = self.dataplane.local_networks(frozenset(skip))
            desired = replace(desired, policy=replace(desired.policy, lan_networks=lans))
        return desired

    def plan(self) -> tuple[DesiredState, list[Action]]:
        # The database is pinned and the kernel observed at one instant, under the lock that
        # every change holds while it writes both: a peer added meanwhile then can't look
        # like a zombie (nor a removed one like a missing peer), so under steady changes a
        # pass without drift plans nothing. Reading 10,000 peers happens after the lock.
        last = self.last_desired
        self.dataplane.prefetch(last.managed if last else ())
        with self.source.pinned() as pin:
            with self.lock:
                managed = pin.begin()
                captured = self.dataplane.capture(managed)
            observed = captured()
            desired = self._complete(pin.read())
        actions = diff(desired, observed)
        if any(isinstance(a, ApplyFirewall) for a in actions) and observed.firewall is not None:
            # A whole-table rewrite carries the quotas' counts over: take them fresh.
            observed = replace(observed, firewall=self.dataplane.observe_firewall())
            actions = diff(desired, observed)
        self.last_firewall = observed.firewall
        self.last_desired = desired
        return desired, actions

    def reconcile(self) -> Report:
        started = time.perf_counter()
        desired, report = self._reconcile()
        self.last_duration = report.duration = time.perf_counter() - started
        if self.sink is not None:
            self.sink(desired, report)
        if self.usage_sink is not None:
            self.usage_sink(desired, self.last_firewall)
        return report

    def _reconcile(self) -> tuple[DesiredState, Report]:
        # Observing and planning happen outside the lock so API calls are not held up. A
        # change committed meanwhile bumps the revision: the plan may be stale (a peer just
        # added looks like a zombie), so plan again, still outside the lock. Under steady
        # churn, the last attempt plans under the lock so the pass always ends.
        for _ in range(STALE_RETRIES):
            desired, actions = self.plan()
            if not actions:
                return desired, Report()
            with self.lock:
                if self.source.revision() == desired.revision:
                    return desired, execute(self.dataplane, actions)
        with self.lock:
            desired, actions = self.plan()
            return desired, execute(self.dataplane, actions)

    def apply_peer(self, interface: str, peer: PeerState) -> None:
        """Add or update one peer now; raises the driver's error so the caller can record it."""
        with self.lock:
            self.dataplane.set_peers(interface, [peer])

    def apply_policy(
        self, old: PeerPolicy | None, new: PeerPolicy | None, leaf: str = "fq_codel"
    ) -> None:
        """One peer's policy change alone: its set elements and quota in one `nft -f`
        transaction, then its tc classes. Raises the driver's error; a failed transaction
        leaves the previous rules in force."""
        before = firewall.peer_layer(PolicyState(peers=(old,) if old else ()))
        after = firewall.peer_layer(PolicyState(peers=(new,) if new else ()))
        some = new or old
        with self.lock:
            if before != after:
                # The bytes an old quota counted are carried into a new one (new limit or a
                # reset); listing quotas loads the whole table, so only when one goes.
                going = set(before.quotas) - set(after.quotas)
                seen: dict[str, firewall.Quota] = {}
                for prefix in {n.rsplit("_", 2)[0] + "_" for n in going}:
                    seen.update(self.dataplane.observe_quotas(prefix))
                have = {k: q for k, q in seen.items() if k in before.quotas}
                script = firewall.delta_script(
                    before.elements, after.elements, have, after.quotas, after.floors
                )
                if script:
                    self.dataplane.update_peer_firewall(
                        script, before.elements, after.elements, dict(after.quotas)
                    )
            if some is not None:
                self._apply_peer_tc(some.interface, old, new, leaf)

    def apply_forwards(self, old: Iterable[Forward], new: Iterable[Forward]) -> None:
        """One peer's published ports from `old` to `new` alone, in one `nft -f`
        transaction (its forwards before and after: the SNAT element is the peer's).
        Raises the driver's error; a failed transaction leaves the previous rules."""
        before, after = firewall.expose_elements(old), firewall.expose_elements(new)
        if before == after:
            return
        with self.lock:
            script = firewall.delta_script(before, after, {}, {})
            self.dataplane.update_peer_firewall(script, before, after, {})

    def _apply_peer_tc(
        self, interface: str, old: PeerPolicy | None, new: PeerPolicy | None, leaf: str
    ) -> None:
        limited = any(p and (p.rate_down_kbit or p.rate_up_kbit) for p in (old, new))
        # A capped tenant's first peer brings its tenant's classes along, limit of its own
        # or not: its traffic is shaped from its first packet, not from the next pass.
        capped = new is not None and bool(new.total_down_kbit or new.total_up_kbit)
        if not (limited or capped):
            return
        peers = [p for p in (old, new) if p is not None]
        minors = tcplan.peer_minors(peers)
        handles = {tcplan.filter_handle(a)[1] for p in peers for a in p.addresses}
        have = self.dataplane.observe_peer_tc(interface, minors, handles)
        changes = tcplan.plan_peer(interface, old, new, have, leaf)
        if changes.empty:
            return
        down, up = tcplan.wanted([new] if new else [], interface)
        touched = frozenset(tcplan.minor_of(p.index) for p in (old, new) if p)
        self.dataplane.apply_tc(changes, down, up, touched)

    def remove_peer(self, interface: str, public_key: str) -> None:
        with self.lock:
            self.dataplane.remove_peers(interface, [public_key])

    def teardown(self, interface: str) -> None:
        with self.lock:
            self.dataplane.remove_interface(interface)

    # Reads for the services, which see the data plane only through the reconciler (the
    # services-do-not-import-dataplane contract). Neither takes the lock: a read changes
    # nothing, and a usage page must not wait behind a long pass.
    def observe_quotas(self, prefix: str) -> dict[str, firewall.Quota]:
        """What the kernel's quotas named `prefix*` have counted; raises DataplaneError."""
        return self.dataplane.observe_quotas(prefix)

    def observe_kernel_counts(self) -> firewall.KernelCounts:
        """Classified and published traffic counters; raises DataplaneError."""
        return self.dataplane.observe_kernel_counts()

    def host_footprint(self, ours: frozenset[str]) -> HostFootprint:
        """What of the host is not ours (networks, UDP ports, links) outside `ours`."""
        return self.dataplane.host_footprint(ours)


class Backoff:
    """Exponential retry delay after failed passes, back to the period after a good one."""

    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap = first, cap
        self.current = 0.0

    def failed(self) -> float:
        self.current = min(self.cap, self.current * 2 if self.current else self.first)
        return self.current

    def succeeded(self) -> None:
        self.current = 0.0


class Loop:
    """Runs a pass every `period` seconds, at once when triggered, sooner after a failure."""

    def __init__(self, reconciler: Reconciler, period: float) -> None:
        self.reconciler = reconciler
        self.period = period
        self.backoff = Backoff(first=0.5, cap=period)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def trigger(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            delay = self._pass()

    def _pass(self) -> float:
        try:
            report = self.reconciler.reconcile()
        except Exception:  # a broken pass (database gone, tool missing) must not end the loop
            log.exception("reconcile pass failed")
            return self.backoff.failed()
        if report.ok:
            self.backoff.succeeded()
            return self.period
        return self.backoff.failed()
