"""The mesh picture's layout, with plain values."""

from __future__ import annotations

import math

from wirewarden.domain.meshmap import MAX_SHOWN, PeerDot, layout


def _dots(n: int, mesh: set[int] = frozenset()) -> list[PeerDot]:  # type: ignore[assignment]
    return [PeerDot(i, f"p{i}", i in mesh, i % 2 == 0) for i in range(n)]


def test_peers_sit_on_a_ring_round_the_gateway_from_the_top() -> None:
    picture = layout(_dots(4), size=400)
    assert picture.center == 200
    first = picture.spots[0]
    assert (first.x, first.y) == (200.0, 40.0)  # straight above the gateway
    for spot in picture.spots:
        assert math.isclose(math.dist((spot.x, spot.y), (200, 200)), 160, abs_tol=0.2)
    assert picture.links == () and picture.hidden == 0


def test_links_join_every_two_peers_that_both_have_mesh_on() -> None:
    picture = layout(_dots(5, mesh={0, 2, 3}))
    names = {(picture.spots[a].peer.name, picture.spots[b].peer.name) for a, b in picture.links}
    assert names == {("p0", "p2"), ("p0", "p3"), ("p2", "p3")}


def test_a_crowd_is_drawn_in_part_and_counted() -> None:
    picture = layout(_dots(MAX_SHOWN + 7))
    assert len(picture.spots) == MAX_SHOWN and picture.hidden == 7
    assert 3 <= picture.radius <= 12
    assert layout([]).spots == ()
