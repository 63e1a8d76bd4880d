"""Choosing a new peer's node: least load, full nodes last, drained and dead ones never."""

from __future__ import annotations

from wirewarden.domain.placement import Candidate, choose


def node(name: str, peers: int, capacity: int = 100, region: str = "eu", **kw: bool) -> Candidate:
    return Candidate(
        name, region, peers, capacity, online=kw.get("online", True), drain=kw.get("drain", False)
    )


def test_least_loaded_by_share_of_capacity_not_by_count() -> None:
    # 30 of 100 is lighter than 10 of 20.
    assert choose([node("a", 10, 20), node("b", 30, 100)]).node == "b"  # type: ignore[union-attr]


def test_ties_go_to_more_room_then_to_the_name() -> None:
    assert choose([node("a", 5, 10), node("b", 10, 20)]).node == "b"  # type: ignore[union-attr]
    assert choose([node("b", 1), node("a", 1)]).node == "a"  # type: ignore[union-attr]


def test_offline_and_draining_nodes_are_never_chosen() -> None:
    pool = [node("a", 0, online=False), node("b", 0, drain=True), node("c", 99)]
    assert choose(pool).node == "c"  # type: ignore[union-attr]
    assert choose([node("a", 0, online=False), node("b", 0, drain=True)]) is None


def test_a_full_node_only_when_every_node_of_the_region_is() -> None:
    full, roomy = node("a", 10, 10), node("b", 99, 100)
    assert choose([full, roomy]).node == "b"  # type: ignore[union-attr]
    # Both full: the less overfull one.
    assert choose([node("a", 12, 10), node("b", 11, 10)]).node == "b"  # type: ignore[union-attr]


def test_region_narrows_and_an_unknown_region_finds_nothing() -> None:
    pool = [node("eu1", 50, region="eu"), node("us1", 0, region="us")]
    assert choose(pool, "eu").node == "eu1"  # type: ignore[union-attr]
    assert choose(pool).node == "us1"  # type: ignore[union-attr]
    assert choose(pool, "ap") is None
