"""The state the agent holds: the last document the control plane sent, its revision and
digest, and the desired state it describes, which the reconciler converges the kernel
to (this is the reconciler's desired-state source on a fleet node, where `serve`'s reads
the database).

A snapshot replaces the document; a delta applies only on the revision it names and is
kept only if the result digests to what the control plane said, else the agent asks for
a snapshot (a missed or reordered delta never leaves the node on a state nobody sent).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from wirewarden.agent.files import SealedFiles
from wirewarden.domain.state import DesiredState
from wirewarden.domain.statediff import Document, PatchError, advance, digest
from wirewarden.fleet.protocol import (
    Current,
    Delta,
    NodeState,
    PeerChanges,
    ProtocolError,
    Snapshot,
    advance_state,
    from_document,
)

FILE = "state"
EMPTY = DesiredState(interfaces={}, managed=frozenset(), nat=(), uplink=None)


class Resync(Exception):
    """The message does not apply to the state held: ask for a snapshot."""


@dataclass(frozen=True)
class Held:
    revision: int
    hash: str
    doc: Document
    state: NodeState
    # What a delta changed when it touched peers only (the host may apply just those);
    # None: anything may have changed.
    changes: PeerChanges | None = None


def received(held: Held | None, message: Snapshot | Delta | Current) -> Held | None:
    """The state held once `message` is taken in (None: nothing changes); raises Resync
    when it cannot be, ProtocolError when the document is not a node state."""
    if isinstance(message, Snapshot):
        if digest(message.state) != message.hash:
            raise Resync("the snapshot does not digest to its hash")
        return Held(message.revision, message.hash, message.state, from_document(message.state))
    if isinstance(message, Current):
        if held is None or (held.revision, held.hash) != (message.revision, message.hash):
            raise Resync(f"told current at {message.revision}, holding another state")
        return None
    if held is None or message.base != held.revision:
        raise Resync(f"a delta from {message.base}, holding {held and held.revision}")
    try:
        doc, hash_ = advance(held.doc, held.hash, message.patch)
    except PatchError as exc:
        raise Resync(str(exc)) from exc
    if hash_ != message.hash:
        raise Resync(f"the delta to {message.revision} does not land on its digest")
    quick = advance_state(held.state, doc, message.patch)
    if quick is not None:
        return Held(message.revision, hash_, doc, *quick)
    return Held(message.revision, hash_, doc, from_document(doc))


class HeldState:
    """The held state, kept sealed on disk (applied at start, control plane or not), as
    the reconciler's desired-state source."""

    def __init__(
        self, files: SealedFiles, uplink: str | None = None, expose_listen: tuple[str, ...] = ()
    ) -> None:
        # The uplink and the public addresses published ports are reached at are the
        # node's to know (WIREWARDEN_UPLINK, else its default route's; and
        # WIREWARDEN_EXPOSE_LISTEN, else the uplink's addresses).
        self.files, self.uplink, self.expose_listen = files, uplink, expose_listen
        self._lock = threading.Lock()
        self._held: Held | None = None
        # Interfaces an earlier state managed and this one does not: torn down, not left.
        self._gone: frozenset[str] = frozenset()
        self._save_lock = threading.Lock()
        self._saved = -1  # the revision in the file

    @property
    def held(self) -> Held | None:
        return self._held

    def load(self) -> Held | None:
        """The state saved by the last run, if it opens and is a node state."""
        saved: Any = self.files.read(FILE)
        if not isinstance(saved, dict):
            return None
        try:
            doc = saved["doc"]
            if digest(doc) != saved["hash"]:
                return None
            held = Held(int(saved["revision"]), str(saved["hash"]), doc, from_document(doc))
            gone = frozenset(str(n) for n in saved.get("gone", ()))
        except (KeyError, TypeError, ValueError, ProtocolError):
            return None
        with self._lock:
            self._held, self._gone = held, gone
        self._saved = held.revision
        return held

    def take(self, message: Snapshot | Delta | Current) -> Held | None:
        """Take a message in (see `received`); the new state, or None when it is
        unchanged. `save` keeps it on disk: called after the host was told, since
        sealing 10,000 peers costs more than applying one (a crash in between only means
        a snapshot at the next start, the digest says which state is held)."""
        new = received(self._held, message)
        if new is None:
            return None
        with self._lock:
            before = self._held.state.desired.managed if self._held else frozenset()
            self._gone = (self._gone | before) - new.state.desired.managed
            self._held = new
        return new

    def save(self) -> None:
        """Seal the state held now into its file (the latest wins: saves may coalesce)."""
        with self._save_lock:
            with self._lock:
                held, gone = self._held, self._gone
            if held is None or held.revision == self._saved:
                return
            record = {"revision": held.revision, "hash": held.hash, "doc": held.doc}
            self.files.write(FILE, {**record, "gone": sorted(gone)})
            self._saved = held.revision

    # ---- the reconciler's DesiredSource

    def __call__(self) -> DesiredState:
        with self._lock:
            held, gone = self._held, self._gone
        desired = held.state.desired if held is not None else EMPTY
        if gone:
            desired = replace(desired, managed=desired.managed | gone)
        if self.uplink is not None:
            desired = replace(desired, uplink=self.uplink)
        if self.expose_listen:
            desired = replace(desired, expose_listen=self.expose_listen)
        return desired

    def revision(self) -> int:
        held = self._held
        return held.revision if held is not None else 0

    @contextmanager
    def pinned(self) -> Iterator[_Pin]:
        yield _Pin(self)


class _Pin:
    """The held state at begin(): a swap after it is the next pass's."""

    def __init__(self, source: HeldState) -> None:
        self.source = source
        self.desired = EMPTY

    def begin(self) -> frozenset[str]:
        self.desired = self.source()
        return self.desired.managed

    def read(self) -> DesiredState:
        return self.desired
