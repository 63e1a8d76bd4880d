"""The query log's way out of the resolver: frames to the writer process, and the
fallback to a thread when no process can be started."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from wirewarden.dns.lists import ListStore
from wirewarden.dns.logwriter import ThreadLogWriter, frames, read_frames
from wirewarden.dns.resolver import LogBatch, LogKey, Record, counted_records
from wirewarden.dns.runtime import DnsConfig, DnsRuntime, Ports
from wirewarden.dns.upstream import UpstreamSet
from wirewarden.domain.dnsstate import DnsDirectory

RECORD: Record = (
    1.5,
    None,
    None,
    "10.8.0.9",
    "default",
    "a.example",
    1,
    "resolved",
    None,
    0,
    "udp://x",
    1.0,
    1,
)


def test_frames_carry_records_and_counts_in_small_pieces() -> None:
    keys: list[LogKey] = [
        (
            "10.8.0.2",
            "default",
            b"\x04" + f"n{i:03d}".encode() + b"\x00\x00\x01\x00\x01",
            "cached",
            None,
            0,
        )
        for i in range(600)
    ]
    counts = {key: i + 1 for i, key in enumerate(keys)}
    firsts = {key: (2.0, 7, "laptop") for key in keys}
    batch = LogBatch([RECORD], [(counts, firsts)])
    wire = list(frames(batch))
    assert len(wire) == 1 + 3 + 1  # the record, 600 keys in three frames, the end mark
    messages = list(read_frames(io.BytesIO(b"".join(wire))))
    assert [m[0] for m in messages] == ["records", "counts", "counts", "counts", "end"]
    counted = [item for m in messages if m[0] == "counts" for item in m[1]]
    assert counted_records(counted) == counted_records(
        (key, counts[key], firsts[key]) for key in keys
    )
    assert messages[0][1] == [RECORD]


def test_without_a_writer_process_the_log_is_written_from_a_thread(tmp_path: Path) -> None:
    written: list[Record] = []

    def directory() -> DnsDirectory:
        return DnsDirectory(1, (), (), {}, {})

    ports = Ports(
        lambda: 1,
        directory,
        written.extend,
        lambda before, rows: 0,
        # A lambda cannot be sent to a spawned process: starting the writer fails.
        log_process=lambda: (written.extend, lambda before, rows: 0),
    )
    runtime = DnsRuntime(DnsConfig(), UpstreamSet([]), ListStore(tmp_path), ports)

    async def run() -> None:
        await runtime._to_writer(lambda: runtime.writer.start())
        runtime.log.add(RECORD)
        await runtime._flush()

    asyncio.run(run())
    assert isinstance(runtime.writer, ThreadLogWriter)
    assert written == [RECORD]
