"""Blocklists on disk: fetched (HTTP with ETag / If-Modified-Since, or a local file),
validated, and kept as the last good copy.

A local list is a file in `<data dir>/dns/local-lists/`, named relative to it: no other
file of the host can be read through a list (its lines would come back as examples of
what did not parse). URLs are http(s), fetched through fetchguard (no loopback, link-local
or own address unless allowed) and cut off past a size cap while streaming.

A source that fails (unreachable, an HTTP error, an HTML page, no rule in it)
leaves the previous copy in place and records the error, so a restart or an
outage still filters with what was last good.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from wirewarden.domain.dnsrules import CompiledList, NotABlocklist, compile_chunks

MAX_BYTES = 128 * 1024 * 1024
LOCAL_LISTS = "local-lists"  # beside the copies' directory, in <data dir>/dns/
# A local list's name: path segments of plain characters; none starts with a dot, so
# neither `..` nor a hidden file can be named.
_LOCAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,7}")
# Whole lines of about this many characters per parse step (one regex call holds the GIL).
CHUNK = 1 << 18
Progress = Callable[[int, int | None], None]


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def check_source(source: str) -> str:
    """A blocklist source as stored: an http(s) URL or the name of a local list."""
    text = source.strip()
    if is_url(text):
        import httpx  # here, not at the top: every CLI command loads this module

        try:
            parsed = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise ValueError(f"{source!r} is not a valid URL") from exc
        if not parsed.host:
            raise ValueError(f"{source!r} is not a valid URL")
        return text
    if _LOCAL_NAME.fullmatch(text):
        return text
    raise ValueError(
        f"{source!r}: a blocklist is an http(s) URL or the name of a file in "
        f"<data dir>/dns/{LOCAL_LISTS}/"
    )


@dataclass
class ListStatus:
    source: str
    entries: int = 0
    allow_entries: int = 0
    comments: int = 0
    junk: int = 0
    junk_examples: list[str] = field(default_factory=list)
    fetched_at: str | None = None  # when the current copy was taken
    checked_at: str | None = None  # the last attempt, good or bad
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    has_copy: bool = False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_chunks(path: Path) -> Iterator[str]:
    """Whole-line chunks of a text file, decoded leniently (lists are not always UTF-8)."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                return
            yield chunk + handle.readline()


class ListStore:
    def __init__(
        self,
        directory: Path,
        timeout: float = 30.0,
        *,
        local_dir: Path | None = None,
        allow_private: bool = False,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.dir = directory
        self.timeout = timeout
        self.local_dir = local_dir or directory.parent / LOCAL_LISTS
        self.allow_private = allow_private
        self.max_bytes = max_bytes
        # What a fetch compiled to validate a copy, handed to the next load of that copy
        # (so a refresh inside `serve` compiles a big list once, not twice).
        self._fresh: dict[str, tuple[tuple[int, int] | None, CompiledList]] = {}

    def _paths(self, source: str) -> tuple[Path, Path]:
        key = hashlib.sha256(source.encode()).hexdigest()[:24]
        return self.dir / f"{key}.txt", self.dir / f"{key}.json"

    def status(self, source: str) -> ListStatus:
        copy, meta = self._paths(source)
        try:
            status = ListStatus(**json.loads(meta.read_text()))
        except (OSError, ValueError, TypeError):
            status = ListStatus(source)
        status.has_copy = copy.exists()
        return status

    def _save_status(self, status: ListStatus) -> None:
        _, meta = self._paths(status.source)
        _write_atomic(meta, json.dumps(asdict(status)).encode())

    def copy_signature(self, source: str) -> tuple[int, int] | None:
        """(mtime, size) of the copy, to tell when it changed; None without one."""
        copy, _ = self._paths(source)
        try:
            st = copy.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def load(self, source: str) -> CompiledList | None:
        """The last good copy, compiled; None when there is none (or it went bad)."""
        fresh = self._fresh.pop(source, None)
        if fresh is not None and fresh[0] == self.copy_signature(source):
            return fresh[1]
        copy, _ = self._paths(source)
        try:
            compiled, _ = compile_chunks(source, read_chunks(copy))
        except (OSError, NotABlocklist):
            return None
        return compiled

    def fetch(self, source: str, progress: Progress | None = None) -> ListStatus:
        """Refresh the copy of one source; the status says what happened."""
        self.dir.mkdir(parents=True, exist_ok=True)
        status = self.status(source)
        status.checked_at = _now()
        import httpx

        try:
            fresh = self._download(source, status, progress)
            if fresh is not None:
                self._accept(source, fresh, status)
            status.error = None
        except (httpx.HTTPError, OSError, NotABlocklist, ValueError) as exc:
            status.error = _describe(exc)
        copy, _ = self._paths(source)
        status.has_copy = copy.exists()
        self._save_status(status)
        return status

    def _accept(self, source: str, fresh: Path, status: ListStatus) -> None:
        try:
            compiled, parsed = compile_chunks(source, read_chunks(fresh))
        except BaseException:
            fresh.unlink(missing_ok=True)
            raise
        copy, _ = self._paths(source)
        os.replace(fresh, copy)
        self._fresh[source] = (self.copy_signature(source), compiled)
        status.entries, status.allow_entries = len(compiled.deny), len(compiled.allow)
        status.comments, status.junk = parsed.comments, parsed.junk
        status.junk_examples = parsed.junk_examples
        status.fetched_at = _now()

    def _download(self, source: str, status: ListStatus, progress: Progress | None) -> Path | None:
        """A temp file with the new content, or None when the copy is still current."""
        if not is_url(source):
            return self._copy_file(source, progress)
        headers = {"User-Agent": "wirewarden"}
        copy, _ = self._paths(source)
        if copy.exists() and status.etag:
            headers["If-None-Match"] = status.etag
        if copy.exists() and status.last_modified:
            headers["If-Modified-Since"] = status.last_modified
        import httpx

        from wirewarden.dns.fetchguard import GuardedTransport

        transport = GuardedTransport(self.allow_private)
        with (
            httpx.Client(transport=transport, timeout=self.timeout, follow_redirects=True) as web,
            web.stream("GET", source, headers=headers) as response,
        ):
            if response.status_code == 304:
                return None
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code} from {source}")
            kind = response.headers.get("content-type", "")
            if "html" in kind:
                raise NotABlocklist(f"the source is an HTML page ({kind}), not a blocklist")
            total = response.headers.get("content-length")
            fresh = self._spool(response.iter_bytes(), int(total) if total else None, progress)
            status.etag = response.headers.get("etag")
            status.last_modified = response.headers.get("last-modified")
            return fresh

    def _copy_file(self, name: str, progress: Progress | None) -> Path:
        fd = self._open_local(check_source(name))
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            return self._spool(iter(lambda: handle.read(CHUNK), b""), size, progress)

    def _open_local(self, name: str) -> int:
        """A local list opened for reading, only if it is a regular file inside local_dir."""
        base = self.local_dir.resolve()
        real = (base / name).resolve(strict=True)  # FileNotFoundError: "no such file"
        if not real.is_relative_to(base):
            raise ValueError(f"{name!r} leads out of <data dir>/dns/{LOCAL_LISTS}/")
        # O_NOFOLLOW: a symlink put in place since the check is refused, not followed.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValueError(f"{name!r} is not a regular file")
        return fd

    def _spool(self, blocks: Iterator[bytes], total: int | None, progress: Progress | None) -> Path:
        fd, name = tempfile.mkstemp(dir=self.dir, suffix=".part")
        done = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for block in blocks:
                    done += len(block)
                    if done > self.max_bytes:
                        raise ValueError(
                            f"the list is larger than {self.max_bytes // 2**20} MiB "
                            "(WIREWARDEN_DNS_LIST_MAX_MB)"
                        )
                    out.write(block)
                    if progress:
                        progress(done, total)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)


def _describe(exc: BaseException) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "timed out fetching the list"
    if isinstance(exc, httpx.HTTPError):
        return f"cannot fetch the list: {exc}"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    return str(exc)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.{time.monotonic_ns()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def local_lists_dir(data_dir: Path) -> Path:
    """Where an admin puts local blocklists, named in policies relative to it."""
    return data_dir / "dns" / LOCAL_LISTS


def lists_dir(data_dir: Path) -> Path:
    return data_dir / "dns" / "lists"
