"""This node's front listener of HTTP services by name, following the state it holds.

The control plane's front is where the zone's wildcard record points; a visitor of a
name published by a peer of this node is passed here unopened (relay/front.py), and this
front routes it by the same Host or SNI to the peer through the tunnel. The names, and
the ports to listen on, come with the node's state (`desired.names`); the routes are
read from memory, so a visitor never reaches the control plane.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from wirewarden.agent.held import HeldState
from wirewarden.domain.vhost import NodeNames, Route
from wirewarden.relay.front import Front

log = logging.getLogger(__name__)


class NodeFront:
    def __init__(self, held: HeldState, hosts: Sequence[str] | None) -> None:
        self.held, self.hosts = held, hosts
        self.front: Front | None = None

    def _names(self) -> NodeNames | None:
        held = self.held.held
        return held.state.desired.names if held is not None else None

    def _routes(self) -> dict[str, Route]:
        names = self._names()
        return names.table() if names is not None else {}

    async def follow(self) -> None:
        """Listen where the held state says (or stop), and read its names again."""
        names = self._names()
        front = self.front
        ports = None if names is None else (names.http_port, names.https_port)
        if front is not None and (front.http_port, front.https_port) != ports:
            await self.stop()
            front = None
        if names is None:
            return
        if front is None:
            front = Front(self._routes, self.hosts, names.http_port, names.https_port)
            await front.start()
            log.info("names: serving this node's on ports %s", front.ports)
            self.front = front
        else:
            await front.refresh()

    async def stop(self) -> None:
        if self.front is not None:
            await self.front.stop()
            self.front = None
