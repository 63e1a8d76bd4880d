"""An agent's traffic report and heartbeat beside reconcile passes that offer the dump they
read: with Timing.align they use those dumps instead of asking every wireguard-go again,
and count rates and sample times from when the dump was read. Real threads, a real
DumpCache, the agent's own loops; only the host and the link are stand-ins."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from wirewarden.agent.agent import Agent, Timing, _Session
from wirewarden.agent.files import SealedFiles
from wirewarden.agent.held import HeldState
from wirewarden.agent.outbox import Outbox
from wirewarden.dataplane.stats import DumpCache
from wirewarden.domain.firewall import KernelCounts
from wirewarden.domain.state import DeviceDump, PeerStats
from wirewarden.fleet.client import Server
from wirewarden.fleet.protocol import Heartbeat

PERIOD = 0.5
KEY = "k" * 43 + "="


class Host:
    """What the report and heartbeat loops ask of the agent's host: the dump cache of the
    real NodeHost, fed by a thread that plays the reconcile pass (a dump every period and
    a bit, each with more bytes received)."""

    def __init__(self) -> None:
        self.own: list[float] = []  # wall-clock times of dumps read outside a pass
        self.offered: list[float] = []
        self.cache = DumpCache(self._read, max_age=0.2)
        self._rx = 0
        self._stop = threading.Event()
        self._passes = threading.Thread(target=self._reconcile_passes)

    def _device(self) -> dict[str, DeviceDump]:
        self._rx += 1000
        stats = {KEY: PeerStats("192.0.2.9:4000", int(time.time()), self._rx, 0)}
        return {"wg0": DeviceDump(None, 51820, {}, stats)}

    def _read(self) -> dict[str, DeviceDump]:
        self.own.append(time.time())
        return self._device()

    def _reconcile_passes(self) -> None:
        while not self._stop.wait(PERIOD * 1.04):
            taken = time.time()
            self.offered.append(taken)
            self.cache.offer(self._device(), time.monotonic(), taken)

    def __enter__(self) -> Host:
        self._passes.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._passes.join()

    def dumps(self) -> tuple[dict[str, DeviceDump], float]:
        return self.cache.timed()

    def wait_dump(self, after: float, timeout: float) -> bool:
        return self.cache.wait_fresh(after, timeout)

    def cpu_times(self) -> tuple[int, int]:
        return 0, 0

    def kernel_counts(self) -> KernelCounts:
        raise LookupError("no table yet")

    def names(self) -> dict[Any, int]:
        return {}


class Link:
    def __init__(self) -> None:
        self.sent: list[object] = []

    async def send(self, message: object) -> None:
        self.sent.append(message)


def _agent(tmp_path: Path, host: Host, align: bool) -> Agent:
    files = SealedFiles(tmp_path / "agent")
    timing = Timing(heartbeat=PERIOD, report=PERIOD, align=align)
    agent = Agent(
        files, HeldState(files), Outbox(files, 64), Server("https://cp.test"), "t", None, timing
    )
    agent.host = host  # type: ignore[assignment]
    return agent


def _run_for(seconds: float, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def go() -> None:
        task = asyncio.create_task(loop())
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())


@pytest.mark.parametrize("align", [True, False], ids=["beside-passes", "on-its-own"])
def test_the_traffic_report_uses_the_passes_dumps_and_their_times(
    tmp_path: Path, align: bool
) -> None:
    with Host() as host:
        agent = _agent(tmp_path, host, align)
        _run_for(4, agent._collect)
    samples = [row for batch in agent.outbox.batches() for row in batch.samples]
    assert len(samples) >= 6
    if align:
        # The first report's dump, before any pass offered one, and at most one more
        # while the loop found the passes' rhythm; each sample dated by its dump.
        assert len(host.own) <= 2
        offered = {int(t) for t in host.offered} | {int(t) for t in host.own}
        assert {row["t"] for row in samples} <= offered
    else:
        assert len(host.own) >= 6  # what the wait saves: a dump of its own every period


@pytest.mark.parametrize("align", [True, False], ids=["beside-passes", "on-its-own"])
def test_the_heartbeat_uses_the_passes_dumps(tmp_path: Path, align: bool) -> None:
    link = Link()
    with Host() as host:
        agent = _agent(tmp_path, host, align)
        session = _Session(agent, link, "n1")  # type: ignore[arg-type]
        _run_for(4, session.beat)
    beats = [m for m in link.sent if isinstance(m, Heartbeat)]
    assert len(beats) >= 6 and all(b.peers == 1 for b in beats)
    # 1000 bytes more a dump, about a period apart: a rate counted over the dumps' own
    # times, never zero (two reads of one dump) nor a burst.
    assert all(0 < b.rx_bps <= 8000 * 2 / PERIOD for b in beats[1:])
    if align:
        assert len(host.own) <= 2
    else:
        assert len(host.own) >= 6
