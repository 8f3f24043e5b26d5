"""This process's click journal: the redirect path appends each click to it before the
answer is sent, so that a click survives the death of the process (ADR 0014).

The journal is a directory of its own in the journal directory, named by a random id,
holding a lock file (flock'ed for as long as the process lives: a journal whose lock
can be taken belongs to a dead process) and segments (kurz.analytics.journal.layout),
each a file allocated in full and mapped into memory. Appending a click is a copy
into the page cache: no system call, no fsync. The page cache outlives the process,
not the machine: a journal made before the machine last started is not replayed.

The Drainer marks which clicks each batch took before writing it (`assign`), and that
it was written (`committed`); segments whose clicks are all written are deleted.
Whoever replays a dead process's journal (kurz.analytics.journal.replay) writes again
the batches marked and not committed, with their ids, and the clicks no batch took.

Clicks are numbered in the order the queue accepted them, which is the order the
Drainer takes them in; the journal numbers those it holds from 0 (`_start` is where
that numbering begins among all accepted). When the disk is full, clicks go on being
accepted and answered without being journaled (`undurable`); the journal is replaced
by a new one once every click it holds has been written.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kurz.analytics.events import ClickEvent
from kurz.analytics.journal import layout
from kurz.analytics.journal.layout import CLICK, CLICK_RECORD, MARK, START, template_key

log = logging.getLogger("kurz.analytics")

SEGMENT_BYTES = 1 << 20
# Kept free in every segment for batch and commit records, so that the clicks a
# journal holds can still be marked when no new segment can be made (a full disk).
RESERVE = 64 << 10
LOCK = "lock"
SUFFIX = ".seg"
# How long after a failure to make a journal (or a segment) the next attempt waits.
RETRY_AFTER = 5.0
_CLICK = CLICK_RECORD.size
_pack_click = CLICK_RECORD.pack_into


class _Segment:
    __slots__ = ("fd", "first", "name")

    def __init__(self, fd: int, name: str, first: int) -> None:
        self.fd = fd
        self.name = name
        self.first = first


class ClickJournal:
    """The journal the redirect path appends to; made on the first click."""

    __slots__ = (
        "_assigned",
        "_directory",
        "_end",
        "_fingerprint",
        "_first",
        "_home",
        "_id",
        "_last",
        "_lock",
        "_map",
        "_other",
        "_pending",
        "_private",
        "_reserve",
        "_retry_at",
        "_segment_bytes",
        "_segments",
        "_skipped",
        "_start",
        "_taken",
        "_templates",
        "_timer",
        "_warned",
        "undurable",
    )

    def __init__(
        self,
        directory: Path,
        fingerprint: bytes,
        *,
        private: bool = False,
        segment_bytes: int = SEGMENT_BYTES,
        reserve: int = RESERVE,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if segment_bytes < START + reserve + 4096:
            raise ValueError("segment_bytes leaves no room for clicks")
        self._directory = directory
        self._fingerprint = fingerprint
        # A directory shared by every user (the temporary one): used only if it is
        # this user's own and no one else's to write into.
        self._private = private
        self._segment_bytes = segment_bytes
        self._reserve = reserve
        # The segment being written: its map, where the next record goes, the last
        # place a click may start (-1: clicks are not journaled), and the numbers of
        # the templates it has defined.
        self._map: mmap.mmap | bytearray = bytearray()
        self._end = START
        self._last = -1
        self._templates: dict[tuple[object, ...], int] = {}
        # The sequence number of its first click, and the bytes of records other than
        # clicks it holds: with `_end`, they give the number of clicks journaled.
        self._first = 0
        self._other = 0
        self._id = b""
        self._home: Path | None = None
        self._lock = -1
        self._segments: list[_Segment] = []
        # Accepted clicks by position: [_start, _start + journaled) are in this journal,
        # the `_skipped` after them are not; the Drainer has taken `_taken`.
        self._start = 0
        self._skipped = 0
        self._taken = 0
        self._assigned = 0
        self._pending: dict[str, tuple[int, int]] = {}
        self._timer = timer
        self._retry_at = 0.0
        self._warned = False
        # Clicks answered without being journaled: a full disk, or no journal.
        self.undurable = 0

    @property
    def name(self) -> str | None:
        """The journal's directory name while it has one."""
        return self._home.name if self._home is not None else None

    @property
    def journaled(self) -> int:
        """Clicks this journal holds or held (its segments deleted since included)."""
        return self._first + (self._end - START - self._other) // _CLICK

    def append(self, event: ClickEvent) -> None:
        """Journal a click the queue accepted: a copy into the page cache, which
        outlives the process."""
        end = self._end
        if end <= self._last:
            try:
                _pack_click(
                    self._map,
                    end,
                    CLICK,
                    event[0],
                    event[1],
                    self._templates[event[2:8] + event[9:]],
                    event[8].encode(),
                    MARK,
                )
            except KeyError:
                pass
            else:
                self._end = end + _CLICK
                return
        self._append_slowly(event)

    def _append_slowly(self, event: ClickEvent) -> None:
        """A click whose template is new to the segment, or that does not fit in it,
        or that finds no journal (none yet, or the disk was full)."""
        if not self._segments and self._timer() >= self._retry_at:
            self._open()
        if self._last < 0:
            self._skip()
            return
        key = template_key(event)
        number = self._templates.get(key)
        if number is None:
            number = len(self._templates)
            template = layout.record(layout.TEMPLATE, [number, list(key)])
        else:
            template = b""
        if self._end + len(template) + _CLICK > self._segment_bytes - self._reserve:
            if not self._rotate():
                self._skip()
                return
            # A new segment defines its own templates.
            number = 0
            template = layout.record(layout.TEMPLATE, [number, list(key)])
        if template:
            self._put(template)
            self._templates[key] = number
        _pack_click(
            self._map, self._end, CLICK, event[0], event[1], number, event[8].encode(), MARK
        )
        self._end += _CLICK

    def _skip(self) -> None:
        self._skipped += 1
        self.undurable += 1

    def assign(self, ident: str, count: int) -> bool:
        """The Drainer takes the next `count` clicks as batch `ident`: True when some
        were journaled and the batch is marked."""
        taken = self._taken
        self._taken = taken + count
        if not self._segments:
            return False
        first = max(taken - self._start, 0)
        end = min(taken + count - self._start, self.journaled)
        if first >= end:
            return False
        if not self._mark(layout.record(layout.BATCH, [ident, first, end])):
            # A batch that cannot be marked could, replayed, be counted twice: the
            # journal goes, and its clicks are as durable as they were without one.
            log.error("the click journal has no room left to mark a batch: deleting it")
            self._close(delete=True)
            return False
        self._pending[ident] = (first, end)
        self._assigned = end
        return True

    def committed(self, ident: str) -> None:
        """Batch `ident` is written: mark it, and delete the segments no longer needed."""
        if self._pending.pop(ident, None) is not None:
            # Unmarked (no room), the batch is written again on replay, under its id:
            # counted once all the same.
            self._mark(layout.record(layout.COMMIT, ident))
        if not self._segments:
            return
        done = min((first for first, _ in self._pending.values()), default=self._assigned)
        segments = self._segments
        while len(segments) > 1 and segments[1].first <= done:
            self._unlink(segments.pop(0))
        if self._last < 0 and done == self.journaled and self._taken >= self._start + done:
            # The disk was full and every click this journal holds is written: it goes,
            # and the next click makes a new one, if there is room again.
            self._close(delete=True)

    def close(self) -> None:
        """At shutdown, after the Drainer's last write: the journal is deleted if every
        click in it was written, and left for the next start to replay if not."""
        if not self._segments:
            return
        drained = not self._pending and self._taken >= self._start + self.journaled
        self._close(delete=drained)
        if not drained:
            log.warning("clicks not written at shutdown are left in the click journal, "
                        "to be written by the next start")  # fmt: skip

    def _open(self) -> None:
        self._id = uuid.uuid4().bytes
        name = self._id.hex()
        staging = self._directory / f".{name}.new"
        try:
            self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self._private:
                _check_private(self._directory)
            staging.mkdir(mode=0o700)
            self._lock = os.open(staging / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._home = staging
            self._open_segment(0, first=0)
            # Only now may another process see it, and find it locked.
            home = self._directory / name
            os.rename(staging, home)
            self._home = home
        except OSError as exc:
            self._fail("cannot make a click journal in %s (%s)", self._directory, exc)
            self._close(delete=True, at=staging)
            return
        self._start += self._skipped
        self._skipped = 0
        if self._warned:
            log.warning("click journal %s made: clicks are durable again", home)
            self._warned = False

    def _rotate(self) -> bool:
        """A new segment for what follows; False (and no more clicks journaled) when
        none can be made."""
        number = int(self._segments[-1].name.removesuffix(SUFFIX)) + 1
        try:
            self._open_segment(number, first=self.journaled)
        except OSError as exc:
            self._fail("cannot add to the click journal (%s)", exc)
            self._last = -1
            return False
        return True

    def _open_segment(self, number: int, *, first: int) -> None:
        assert self._home is not None
        name = f"{number:08d}{SUFFIX}"
        path = self._home / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            # Allocated now, so that a full disk fails here and not on a write
            # through the map (which would be SIGBUS).
            os.posix_fallocate(fd, 0, self._segment_bytes)
            segment_map = mmap.mmap(fd, self._segment_bytes)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        made = layout.header(self._id, self._fingerprint, number, first)
        segment_map[: len(made)] = made
        self._segments.append(_Segment(fd, name, first))
        self._map = segment_map
        self._end = START
        self._first = first
        self._other = 0
        self._templates = {}
        self._last = self._segment_bytes - self._reserve - _CLICK

    def _put(self, data: bytes) -> None:
        end = self._end + len(data)
        self._map[self._end : end] = data
        self._end = end
        self._other += len(data)

    def _mark(self, data: bytes) -> bool:
        """Put a batch or commit record, in the reserve if need be."""
        if self._end + len(data) > self._segment_bytes:
            # A segment for marks only, when clicks are no longer journaled.
            clicks = self._last >= 0
            if not self._rotate():
                return False
            if not clicks:
                self._last = -1
        self._put(data)
        return True

    def _fail(self, message: str, *args: object) -> None:
        self._retry_at = self._timer() + RETRY_AFTER
        if not self._warned:
            log.warning(
                message + "; clicks are not durable until it can "
                "(kurz_clicks_undurable_total counts them)",
                *args,
            )
            self._warned = True

    def _unlink(self, segment: _Segment) -> None:
        os.close(segment.fd)
        if self._home is not None:
            (self._home / segment.name).unlink(missing_ok=True)

    def _close(self, *, delete: bool, at: Path | None = None) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._map = bytearray()
        self._start += self.journaled
        self._first = self._other = self._assigned = 0
        self._end = START
        self._last = -1
        self._pending.clear()
        for segment in self._segments:
            os.close(segment.fd)
        self._segments = []
        home = at or self._home
        if delete and home is not None:
            # Segments first and the lock last: a replayer never finds a journal
            # unlocked with clicks in it.
            for path in sorted(home.glob(f"*{SUFFIX}")):
                path.unlink(missing_ok=True)
            shutil.rmtree(home, ignore_errors=True)
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1
        self._home = None


def _check_private(directory: Path) -> None:
    found = os.lstat(directory)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o077:
        raise PermissionError(
            f"{directory} must be a directory of this user's that no one else can write to"
        )
