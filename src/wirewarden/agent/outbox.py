"""What the node measured, waiting for the control plane: report batches, sealed on disk
until their `report_ack`, so a control plane that is away (or an agent restart) loses
none of them within the bound. Beyond the bound the oldest batches go first: the
newest traffic and the current quota counters matter more than an old hour's."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from wirewarden.agent.files import SealedFiles
from wirewarden.fleet.protocol import Report

log = logging.getLogger(__name__)
DIR = "outbox"
SEQ = "report-seq"
# The control plane counts a node's reports from 1 (0: none stored yet).
FIRST_SEQ = 1
# Rows in one batch: well under the control plane's 1 MiB request cap (long-poll).
MAX_ROWS = 2000


@dataclass
class _Pending:
    samples: list[dict[str, JsonValue]] = field(default_factory=list)
    dns_log: list[dict[str, JsonValue]] = field(default_factory=list)
    apps: list[dict[str, JsonValue]] = field(default_factory=list)
    names: list[dict[str, JsonValue]] = field(default_factory=list)
    exposed: list[dict[str, JsonValue]] = field(default_factory=list)
    quotas: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[list[dict[str, JsonValue]]]:
        """Every kind of row, in the order a batch takes them."""
        return [self.samples, self.dns_log, self.apps, self.names, self.exposed]

    def __bool__(self) -> bool:
        return any(self.rows()) or bool(self.quotas)


class Outbox:
    """Rows gathered in memory, sealed into numbered batches every so often; `batches`
    lists what is unsent, `acked` drops one."""

    def __init__(self, files: SealedFiles, max_batches: int) -> None:
        self.files, self.max_batches = files, max_batches
        (files.root / DIR).mkdir(mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._pending = _Pending()
        saved: Any = files.read(SEQ)
        on_disk = self._numbers()
        start = saved if isinstance(saved, int) else FIRST_SEQ
        self._next = max([start, *(n + 1 for n in on_disk)])

    def _numbers(self) -> list[int]:
        return sorted(int(p.name) for p in (self.files.root / DIR).iterdir() if p.name.isdigit())

    def add(
        self,
        samples: list[dict[str, JsonValue]] | None = None,
        dns_log: list[dict[str, JsonValue]] | None = None,
        quotas: dict[str, int] | None = None,
        apps: list[dict[str, JsonValue]] | None = None,
        names: list[dict[str, JsonValue]] | None = None,
        exposed: list[dict[str, JsonValue]] | None = None,
    ) -> None:
        with self._lock:
            pending = self._pending
            for kind, rows in zip(
                pending.rows(), (samples, dns_log, apps, names, exposed), strict=True
            ):
                kind.extend(rows or ())
            if quotas:
                self._pending.quotas.update(quotas)

    def seal(self) -> int:
        """Turn the rows gathered so far into batches on disk; how many were made."""
        with self._lock:
            pending, self._pending = self._pending, _Pending()
        if not pending:
            return 0
        made = 0
        rows = pending.rows()
        quotas = pending.quotas
        while any(rows) or quotas or made == 0:
            parts, room = [], MAX_ROWS
            for i, kind in enumerate(rows):  # MAX_ROWS of them all, in this order
                parts.append(kind[:room])
                rows[i], room = kind[room:], room - len(parts[-1])
            part = Report(
                seq=self._next,
                samples=parts[0],
                dns_log=parts[1],
                apps=parts[2],
                names=parts[3],
                exposed=parts[4],
                quotas=quotas,
            )
            quotas = {}
            self.files.write(f"{DIR}/{self._next:012d}", part.model_dump(mode="json"))
            self._next += 1
            made += 1
        self.files.write(SEQ, self._next)
        self._trim()
        return made

    def _trim(self) -> None:
        numbers = self._numbers()
        for number in numbers[: max(0, len(numbers) - self.max_batches)]:
            log.warning("report batch %d dropped: the control plane was away too long", number)
            self.files.remove(f"{DIR}/{number:012d}")

    def batches(self) -> list[Report]:
        """The unsent batches, oldest first."""
        found = []
        for number in self._numbers():
            raw = self.files.read(f"{DIR}/{number:012d}")
            if raw is None:
                self.files.remove(f"{DIR}/{number:012d}")
                continue
            found.append(Report.model_validate(raw))
        return found

    def acked(self, seq: int) -> None:
        self.files.remove(f"{DIR}/{seq:012d}")

    def restart(self) -> None:
        """A new credential (a new enrolment) counts its reports from the start again; what the
        earlier one left unsent is dropped with it."""
        with self._lock:
            self._pending = _Pending()
            for number in self._numbers():
                self.files.remove(f"{DIR}/{number:012d}")
            self._next = FIRST_SEQ
            self.files.write(SEQ, FIRST_SEQ)
