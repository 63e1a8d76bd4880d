"""What a change hands the node: counters and status leave the revision alone, and a peer
change is applied as a delta of that peer (the full read stays the periodic safety net).
On SQLite and PostgreSQL, with the in-memory data plane."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.api.test_peers_api import IFACES, PEERS, add_peer, kernel_peers, make_interface
from wirewarden.bootstrap import Container
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.domain.state import DesiredState, PeerStats
from wirewarden.store.desired import DesiredStateReader
from wirewarden.store.tables import Node


def revision(container: Container) -> int:
    with container.deps.sessions() as db:
        return (
            db.scalar(select(Node.revision).where(Node.name == container.settings.node_name)) or 0
        )


def full_read(container: Container) -> DesiredState:
    """The node's desired state read whole, by a reader with nothing cached."""
    node = container.node
    fresh = DesiredStateReader(
        container.deps.sessions, container.deps.vault, container.settings.node_name, None
    )
    state = fresh()
    return node.reconciler._complete(state)


def same_state(a: DesiredState, b: DesiredState) -> None:
    assert a.revision == b.revision
    assert a.interfaces == b.interfaces
    by_id = sorted(a.policy.peers, key=lambda p: p.peer_id)
    assert by_id == sorted(b.policy.peers, key=lambda p: p.peer_id)


def test_counters_and_sync_status_leave_the_revision_alone(
    client: TestClient, container: Container, dataplane: FakeDataplane
) -> None:
    make_interface(client, "wg0")
    peer = add_peer(client, name="laptop")
    client.patch(f"{PEERS}/{peer['id']}", json={"data_cap_bytes": 10**9}).raise_for_status()
    assert container.reconciler.reconcile().ok
    before = revision(container)
    dataplane.counters[("wg0", peer["public_key"])] = PeerStats(
        endpoint="192.0.2.7:5000", latest_handshake=1_700_000_000, rx_bytes=5000, tx_bytes=7000
    )
    container.collector.collect()  # traffic counters into the time-series store
    container.collector.collect()
    assert container.reconciler.reconcile().ok  # sync status and quota usage written
    assert client.get(f"{PEERS}/{peer['id']}/traffic").status_code == 200
    assert revision(container) == before


def test_a_peer_change_is_applied_as_a_delta(
    client: TestClient, container: Container, dataplane: FakeDataplane
) -> None:
    make_interface(client, "wg0")
    peers = [add_peer(client, name=f"p{i}") for i in range(4)]
    assert container.reconciler.reconcile().ok
    reader = container.node.reader
    reads = reader.full_reads
    # A peer whose apply the kernel refused: stored, in error, left to the next pass. (A
    # disabled peer stays on the device with no AllowedIPs: its session lives on.)
    dataplane.fail_on = {"set_peers"}
    off = peers[1]
    client.patch(f"{PEERS}/{off['id']}", json={"enabled": False}).raise_for_status()
    dataplane.fail_on.clear()
    assert kernel_peers(dataplane)[off["public_key"]].allowed_ips != ()  # refused: as it was
    added = add_peer(client, name="late")
    assert client.delete(f"{PEERS}/{peers[2]['id']}").status_code == 204
    dataplane.calls.clear()
    assert container.reconciler.reconcile().ok
    # Only that peer was touched in the kernel, and the database was not read whole.
    assert dataplane.calls.count("set_peers") == 1
    assert "remove_peers" not in dataplane.calls
    assert kernel_peers(dataplane)[off["public_key"]].allowed_ips == ()
    kept = {p["public_key"] for p in (peers[0], off, peers[3], added)}
    assert kept == set(kernel_peers(dataplane))
    # Deleting the disabled peer takes it off the device, and no pass brings it back.
    assert client.delete(f"{PEERS}/{off['id']}").status_code == 204
    assert container.reconciler.reconcile().ok
    assert off["public_key"] not in kernel_peers(dataplane)
    assert reader.full_reads == reads
    same_state(container.reconciler.last_desired, full_read(container))  # type: ignore[arg-type]


def test_a_change_not_told_to_the_node_is_read_whole(
    client: TestClient, container: Container, dataplane: FakeDataplane
) -> None:
    """Another process (a CLI command, a replica) bumped the revision: no delta covers it."""
    make_interface(client, "wg0")
    peer = add_peer(client, name="laptop")
    assert container.reconciler.reconcile().ok
    reader = container.node.reader
    reads = reader.full_reads
    add_peer(client, name="desk")  # told
    with container.deps.sessions.begin() as db:  # not told
        db.execute(update(Node).values(revision=Node.revision + 1))
    assert container.reconciler.reconcile().ok
    assert reader.full_reads == reads + 1
    same_state(container.reconciler.last_desired, full_read(container))  # type: ignore[arg-type]
    assert peer["public_key"] in kernel_peers(dataplane)


def test_an_interface_change_is_read_whole(
    client: TestClient, container: Container, dataplane: FakeDataplane
) -> None:
    make_interface(client, "wg0")
    add_peer(client, name="laptop")
    reads = container.node.reader.full_reads
    response = client.patch(f"{IFACES}/wg0", json={"mtu": 1380})
    assert response.status_code == 200, response.text
    assert container.node.reader.full_reads > reads
    assert dataplane.devices["wg0"].mtu == 1380
