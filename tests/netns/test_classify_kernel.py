"""The classifier in the kernel's path: a router namespace queues the first packets of
its clients' flows, the queue reader names them, the verdict lands in the conntrack mark
and the rest of the flow never leaves the kernel; with the reader dead, traffic flows."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.netns.router import queued, route_client, start_reader, steer
from tests.netns.topology import Client, Topology, wait_until
from wirewarden.domain.classify.steering import QUEUED_PACKETS, app_of


@pytest.fixture
def routed(topology: Topology) -> Iterator[tuple[Topology, Client]]:
    client = route_client(topology)
    steer(topology, client)
    yield topology, client


def _marks(topology: Topology, port: int) -> list[int]:
    out = topology.server.run(
        ["conntrack", "-L", "-p", "tcp", "--dport", str(port), "-o", "extended"], check=False
    ).stdout
    return [int(m, 0) for m in re.findall(r"mark=(\d+)", out)]


def test_http_is_named_in_the_conntrack_mark_and_only_first_packets_queue(
    routed: tuple[Topology, Client],
) -> None:
    topology, client = routed
    reader = start_reader(topology)
    assert client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body
    assert [app_of(mark) for mark in _marks(topology, topology.http_port)] == ["http"]
    # Only the request left the kernel: the handshake and bare ACKs carry nothing to read.
    queued_before = queued(topology)
    assert queued_before == 1
    # A bulk transfer on new flows: their first packets queue, their megabytes do not.
    report = client.iperf3(topology.inet_ip, seconds=2)
    assert report["end"]["sum_received"]["bytes"] > 1_000_000
    # iperf3 opens two connections (control and data): each queues its first packets.
    assert queued(topology) - queued_before <= 2 * QUEUED_PACKETS
    assert reader.poll() is None


def test_traffic_flows_while_the_reader_is_dead(routed: tuple[Topology, Client]) -> None:
    topology, client = routed
    reader = start_reader(topology)
    reader.kill()
    wait_until(lambda: reader.poll() is not None, timeout=5, what="the reader's exit")
    # Fail-open: the queue's bypass lets every packet through unclassified.
    assert client.http_get(f"http://{topology.inet_ip}/") == topology.inet_http_body
    assert [app_of(mark) for mark in _marks(topology, topology.http_port)] == [None]
