"""One set of cases for the data plane port, run against the in-memory FakeDataplane and
against the real LinuxDataplane (wireguard-go, `wg`, `ip`) in a fresh network namespace.

The API and reconciler suites trust the fake; these cases are what that trust rests on:
each says what a caller sees after a call, and the fake must see the same as the kernel.
The Linux run needs root and wireguard-go; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain import tcplan
from wirewarden.domain.errors import DataplaneError
from wirewarden.domain.firewall import Ruleset, delta_script, full_script, ruleset
from wirewarden.domain.keys import generate_keypair, generate_preshared_key
from wirewarden.domain.policy import Cap, PeerPolicy, PolicyState
from wirewarden.domain.state import PeerState, PeerStats

CLONE_NEWNET = 0x40000000
WG_RUN = Path("/var/run/wireguard")


def linux_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the Linux data plane's contract run needs root (a network namespace)"
    missing = [t for t in ("ip", "wg", "wireguard-go", "nft", "tc") if shutil.which(t) is None]
    return f"the Linux data plane's contract run needs {', '.join(missing)}" if missing else None


class InNamespace:
    """Every call of the wrapped data plane runs on one thread that has entered the test's
    namespace (a network namespace is per thread; the tools it starts inherit it), so the
    host's own links are never touched."""

    def __init__(self, target: Any, netns: str) -> None:
        self._target = target
        self._pool = ThreadPoolExecutor(1, initializer=_enter, initargs=(netns,))
        # Fail here, before any change, unless the tools this thread starts see the fresh
        # namespace (only `lo`), never the host's links and firewall.
        links = self._pool.submit(_links).result()
        if links != ["lo"]:
            raise RuntimeError(f"not in a fresh namespace: links {links}")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._target, name)
        return lambda *args, **kwargs: self._pool.submit(method, *args, **kwargs).result()

    def close(self) -> None:
        self._pool.shutdown()


def _enter(netns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns}")
    finally:
        os.close(fd)


def _links() -> list[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=30)


@pytest.fixture(params=["fake", "linux"])
def dp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeDataplane()
        return
    why = linux_unavailable()
    if why:
        pytest.skip(why)
    from wirewarden.dataplane.linux import LinuxDataplane
    from wirewarden.dataplane.wireguard import WireGuard

    token = secrets.token_hex(3)
    netns = f"wwct{token}"
    _ip("netns", "add", netns)
    made: list[str] = []
    wrapped: InNamespace | None = None
    try:
        (tmp_path / "logs").mkdir()
        real = LinuxDataplane(WireGuard("wireguard-go", tmp_path / "logs"))
        wrapped = InNamespace(real, netns)
        wrapped.names = made  # the cases name their interfaces through `ifname` below
        wrapped.token = token
        yield wrapped
    finally:
        if wrapped is not None:
            for name in made:
                with contextlib.suppress(DataplaneError):
                    wrapped.remove_interface(name)
            wrapped.close()
        # wireguard-go outlives its caller by design: end whatever still runs in there.
        pids = subprocess.run(
            ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        for name in made:
            for suffix in (".sock", ".name"):
                (WG_RUN / f"{name}{suffix}").unlink(missing_ok=True)


def ifname(dp: Any, n: int = 0) -> str:
    """An interface name unique on the host (UAPI sockets are shared by all namespaces)."""
    if isinstance(dp, FakeDataplane):
        return f"wgc{n}"
    name = f"wc{dp.token}{n}"
    dp.names.append(name)
    return name


def peer(allowed: tuple[str, ...], psk: bool = False, keepalive: int | None = None) -> PeerState:
    key = generate_keypair().public_key
    return PeerState(key, allowed, generate_preshared_key() if psk else None, keepalive)


def ours(addresses: tuple[str, ...]) -> tuple[str, ...]:
    """The addresses we set: the kernel adds an IPv6 link-local one to a link going up
    (the fake does not), which the reconciler's plan leaves alone by design."""
    return tuple(a for a in addresses if not ipaddress.ip_interface(a).ip.is_link_local)


def up(dp: Any, name: str, address: str = "10.77.0.1/24", port: int = 51901) -> str:
    private = generate_keypair().private_key
    dp.create_interface(name)
    dp.configure_device(name, private, port)
    dp.configure_link(name, 1420, (address,), (), True)
    return private


def test_a_new_interface_is_seen_as_configured(dp: Any) -> None:
    name = ifname(dp)
    private = up(dp, name)
    seen = dp.observe([name]).interfaces[name]
    assert seen.link.up is True
    assert seen.link.mtu == 1420
    assert ours(seen.link.addresses) == ("10.77.0.1/24",)
    assert (seen.private_key, seen.listen_port, seen.peers) == (private, 51901, {})


def test_creating_an_interface_again_keeps_it_as_it_is(dp: Any) -> None:
    name = ifname(dp)
    private = up(dp, name)
    dp.create_interface(name)
    seen = dp.observe([name]).interfaces[name]
    assert (seen.private_key, seen.listen_port) == (private, 51901)
    assert ours(seen.link.addresses) == ("10.77.0.1/24",)


def test_link_addresses_are_added_and_removed(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)
    dp.configure_link(name, 1380, ("fd77::1/64",), ("10.77.0.1/24",), True)
    link = dp.observe([name]).interfaces[name].link
    assert (link.mtu, ours(link.addresses)) == (1380, ("fd77::1/64",))


def test_peers_are_added_replaced_and_removed_one_by_one(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)
    a = peer(("10.77.0.2/32",), psk=True, keepalive=25)
    b = peer(("10.77.0.3/32", "fd77::3/128"))
    dp.set_peers(name, [a, b])
    assert dp.observe([name]).interfaces[name].peers == {a.public_key: a, b.public_key: b}
    # A peer set again is replaced, not merged: its old allowed IPs and keepalive go.
    moved = PeerState(a.public_key, ("10.77.0.9/32",), a.preshared_key, None)
    dp.set_peers(name, [moved])
    assert dp.observe([name]).interfaces[name].peers == {a.public_key: moved, b.public_key: b}
    dp.remove_peers(name, [a.public_key])
    assert dp.observe([name]).interfaces[name].peers == {b.public_key: b}
    dp.remove_peers(name, [a.public_key])  # already gone: nothing to do, no error
    assert list(dp.observe([name]).interfaces[name].peers) == [b.public_key]


def test_an_allowed_ip_moves_to_the_peer_that_takes_it(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)
    a = peer(("10.77.0.2/32",))
    dp.set_peers(name, [a])
    b = PeerState(generate_keypair().public_key, ("10.77.0.2/32",))
    dp.set_peers(name, [b])
    peers = dp.observe([name]).interfaces[name].peers
    # WireGuard's cryptokey routing: one owner per address; a caller re-sends the loser.
    assert peers[b.public_key].allowed_ips == ("10.77.0.2/32",)
    assert peers[a.public_key].allowed_ips == ()


def test_the_dump_lists_devices_peers_and_zero_counters_before_a_handshake(dp: Any) -> None:
    name = ifname(dp)
    private = up(dp, name)
    a = peer(("10.77.0.2/32",))
    dp.set_peers(name, [a])
    dump = dp.dump_all()[name]
    assert (dump.private_key, dump.listen_port) == (private, 51901)
    assert dump.peers == {a.public_key: a}
    assert dump.stats == {a.public_key: PeerStats(None, 0, 0, 0)}


def test_a_pass_hands_on_the_whole_dump_it_took(dp: Any) -> None:
    if isinstance(dp, FakeDataplane):
        pytest.skip("only the kernel's pass takes a dump, for the collector to reuse")
    name = ifname(dp)
    up(dp, name)
    dp.set_peers(name, [peer(("10.77.0.2/32",))])
    offered: list[tuple[dict[str, Any], float, float]] = []
    dp._target.dumped = lambda dumps, at, taken: offered.append((dumps, at, taken))
    before = time.monotonic()
    dp.observe([name])
    [(dumps, at, taken)] = offered
    assert dumps == dp.dump_all()  # what the collector would have asked for itself
    assert before <= at <= time.monotonic() and abs(taken - time.time()) < 5


def test_observe_sees_only_the_interfaces_asked_for(dp: Any) -> None:
    first, second = ifname(dp, 0), ifname(dp, 1)
    up(dp, first)
    up(dp, second, "10.78.0.1/24", 51902)
    assert set(dp.observe([first, "wcnothere0"]).interfaces) == {first}


def test_changing_a_missing_interface_is_a_dataplane_error(dp: Any) -> None:
    missing = ifname(dp, 7)
    with pytest.raises(DataplaneError):
        dp.configure_device(missing, generate_keypair().private_key, 51903)
    with pytest.raises(DataplaneError):
        dp.configure_link(missing, 1420, ("10.79.0.1/24",), (), True)
    assert missing not in dp.observe([missing]).interfaces


def test_a_removed_interface_is_gone_and_removing_it_again_is_fine(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)
    dp.set_peers(name, [peer(("10.77.0.2/32",))])
    dp.remove_interface(name)
    assert name not in dp.observe([name]).interfaces
    assert name not in dp.dump_all()
    dp.remove_interface(name)
    up(dp, name)  # and the name can be used again at once
    assert dp.observe([name]).interfaces[name].peers == {}


def policy_for(name: str, mesh: bool, cap: int | None) -> Ruleset:
    peer_policy = PeerPolicy(
        name, 41, 2, "10.77.0.2", mesh=mesh, cap=Cap(cap, 1_800_000_000) if cap else None
    )
    return ruleset([], None, PolicyState(peers=(peer_policy,), interfaces=(name,)))


def test_the_firewall_is_seen_as_applied_changed_per_peer_and_removed(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)
    assert dp.observe_firewall() is None
    rs = policy_for(name, mesh=True, cap=5_000_000)
    dp.apply_firewall(full_script(rs), rs.layer.elements, dict(rs.layer.quotas))
    seen = dp.observe_firewall()
    assert seen is not None and seen.digest == rs.skeleton_digest
    assert seen.elements == rs.layer.elements
    assert {q: (v.limit, v.used) for q, v in seen.quotas.items()} == {
        q: (limit, 0) for q, limit in rs.layer.quotas.items()
    }
    # One peer's change as a delta: no mesh, a new cap (a new quota, the old one dropped).
    new = policy_for(name, mesh=False, cap=9_000_000)
    script = delta_script(seen.elements, new.layer.elements, seen.quotas, dict(new.layer.quotas))
    removed, added = seen.elements - new.layer.elements, new.layer.elements - seen.elements
    dp.update_peer_firewall(script, removed, added, dict(new.layer.quotas))
    after = dp.observe_firewall()
    assert after is not None and after.digest == rs.skeleton_digest  # the skeleton stayed
    assert after.elements == new.layer.elements
    assert {q: v.limit for q, v in after.quotas.items()} == dict(new.layer.quotas)
    assert set(dp.observe_quotas("cap_41_")) == set(new.layer.quotas)
    dp.remove_firewall()
    assert dp.observe_firewall() is None


def limited(name: str, index: int, down: int | None, up_: int | None) -> PeerPolicy:
    return PeerPolicy(
        name, 50 + index, index, f"10.77.0.{index + 1}", rate_down_kbit=down, rate_up_kbit=up_
    )


def shaped(dp: Any, name: str, peers: list[PeerPolicy]) -> tcplan.ObservedTc:
    """Plan the interface's whole shape from what the data plane shows, apply it, and
    return what it shows afterwards."""
    down, up_ = tcplan.wanted(peers, name)
    changes = tcplan.plan(name, down, up_, dp.observe_tc(name))
    dp.apply_tc(changes, down, up_)
    return dp.observe_tc(name)


def classes(shape: tcplan.ObservedShape | None) -> dict[int, int]:
    return dict(shape.classes) if shape is not None else {}


def test_speed_limits_are_seen_as_applied_and_planning_again_changes_nothing(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)
    assert dp.observe_tc(name) == tcplan.ObservedTc()
    peers = [limited(name, 1, 8000, 2000), limited(name, 2, 500, None)]
    seen = shaped(dp, name, peers)
    assert seen.ifb and seen.redirect
    minor1, minor2 = tcplan.minor_of(1), tcplan.minor_of(2)
    assert set(classes(seen.down)) == {minor1, minor2} and set(classes(seen.up)) == {minor1}
    assert seen.down is not None and seen.up is not None
    assert set(seen.down.filters.values()) == {minor1, minor2}
    assert set(seen.up.filters.values()) == {minor1}
    down, up_ = tcplan.wanted(peers, name)
    assert tcplan.plan(name, down, up_, seen).empty  # what the kernel shows is what we asked


def test_one_peers_limit_changes_alone(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)
    first, second = limited(name, 1, 8000, 2000), limited(name, 2, 500, 700)
    shaped(dp, name, [first, second])
    changed = limited(name, 2, 3000, None)
    minors = {tcplan.minor_of(2)}
    handles = {tcplan.filter_handle(a)[1] for a in changed.addresses}
    have = dp.observe_peer_tc(name, minors, handles)
    changes = tcplan.plan_peer(name, second, changed, have)
    down, up_ = tcplan.wanted([changed], name)
    dp.apply_tc(changes, down, up_, frozenset(minors))
    seen = dp.observe_tc(name)
    want_down, want_up = tcplan.wanted([first, changed], name)
    assert tcplan.plan(name, want_down, want_up, seen).empty
    assert set(classes(seen.up)) == {tcplan.minor_of(1)}  # the upload limit went away


def test_lifting_every_limit_leaves_no_shape_behind(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)
    shaped(dp, name, [limited(name, 1, 8000, 2000)])
    seen = shaped(dp, name, [limited(name, 1, None, None)])
    assert seen.down is None or not seen.down.classes
    assert not seen.redirect
    dp.remove_ifb(tcplan.ifb_name(name))
    assert not dp.observe_tc(name).ifb


def test_a_pass_sees_each_device_s_shape_whether_shaped_or_not(dp: Any) -> None:
    """A pass's slow look at many devices: those with nothing in tc come from one listing
    of every device's qdiscs, the shaped ones are looked at in full; both as they are."""
    quiet, busy, bare = ifname(dp, 0), ifname(dp, 1), ifname(dp, 2)
    up(dp, quiet)
    up(dp, busy, "10.77.1.1/24", 51902)
    up(dp, bare, "10.77.2.1/24", 51903)
    seen = shaped(dp, busy, [limited(busy, 1, 8000, 2000)])
    # Shaped once, then lifted: whatever is left, the pass sees it as it is.
    shaped(dp, bare, [limited(bare, 1, None, 2000)])
    left = shaped(dp, bare, [limited(bare, 1, None, None)])
    if not isinstance(dp, FakeDataplane):
        dp._target.slow_look = 0.0  # every look is stale: the pass looks at the kernel
    state = dp.observe([quiet, busy, bare])
    assert state.tc[quiet] == tcplan.ObservedTc()
    assert state.tc[busy] == seen and seen.ifb and seen.redirect
    assert state.tc[bare] == left


def test_a_tenant_total_is_seen_as_applied_and_moves_its_classes_both_ways(dp: Any) -> None:
    name = ifname(dp)
    up(dp, name)

    def peer(index: int, down: int | None, total: int | None) -> PeerPolicy:
        return replace(limited(name, index, down, None), total_down_kbit=total)

    alone = [peer(1, 8000, None), peer(2, None, None)]
    shaped(dp, name, alone)
    capped = [peer(1, 8000, 5000), peer(2, None, 5000)]
    seen = shaped(dp, name, capped)
    assert seen.down is not None
    assert seen.down.parents == {tcplan.PARENT: 0, tcplan.FALLBACK: 1, tcplan.minor_of(1): 1}
    assert seen.down.ceils[tcplan.minor_of(1)] == 5000 and seen.down.catch_all
    down, up_ = tcplan.wanted(capped, name)
    assert tcplan.plan(name, down, up_, seen).empty
    # One peer's change alone, under the total (the path serve takes for one peer).
    changed = peer(1, 3000, 5000)
    minors = tcplan.peer_minors([changed])
    handles = {tcplan.filter_handle(a)[1] for a in changed.addresses}
    have = dp.observe_peer_tc(name, minors, handles)
    assert have.down is not None and have.down.catch_all
    changes = tcplan.plan_peer(name, capped[0], changed, have)
    down, up_ = tcplan.wanted([changed], name)
    dp.apply_tc(changes, down, up_, frozenset(minors))
    now = [changed, capped[1]]
    down, up_ = tcplan.wanted(now, name)
    assert tcplan.plan(name, down, up_, dp.observe_tc(name)).empty
    # The total lifted: the classes back under the root, the tenant's own ones gone.
    seen = shaped(dp, name, alone)
    assert seen.down is not None and not seen.down.catch_all
    assert seen.down.parents == {tcplan.minor_of(1): 0}
    down, up_ = tcplan.wanted(alone, name)
    assert tcplan.plan(name, down, up_, seen).empty


def test_the_kernel_s_own_counters_are_read_back(dp: Any) -> None:
    """The dynamic sets the kernel fills (classified traffic and its flows, published
    ports), as the collector and the agent read them; a flow counted before any byte was
    comes back with no bytes."""
    from wirewarden.domain.firewall import AppCount, ExposeCount, KernelCounts

    tls = 0x01020000
    expected = KernelCounts(
        apps=(AppCount("10.77.0.2", tls, 5, 500, 2), AppCount("10.77.0.3", tls, 0, 0, 1)),
        exposed=(ExposeCount("tcp", "10.77.0.2", 4000, 3, 300),),
    )
    if isinstance(dp, FakeDataplane):
        dp.kernel_counts = expected
    else:
        name = ifname(dp)
        up(dp, name)
        rs = policy_for(name, mesh=True, cap=None)
        dp.apply_firewall(full_script(rs), rs.layer.elements, dict(rs.layer.quotas))
        for element in (
            f"apps4 {{ 10.77.0.2 . {tls:#x} counter packets 5 bytes 500 }}",
            f"flows4 {{ 10.77.0.2 . {tls:#x} counter packets 2 bytes 120 }}",
            f"flows4 {{ 10.77.0.3 . {tls:#x} counter packets 1 bytes 60 }}",
            "expose_count4 { tcp . 10.77.0.2 . 4000 counter packets 3 bytes 300 }",
        ):
            argv = ["ip", "netns", "exec", f"wwct{dp.token}", "nft", "add", "element"]
            subprocess.run([*argv, "inet", "wirewarden", *element.split()], check=True)
    assert dp.observe_kernel_counts() == expected
