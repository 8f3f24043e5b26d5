"""Writing the clicks a dead process journaled and did not get to write (ADR 0014).

A journal whose lock can be taken belongs to a process that is gone. Its replayer
holds that lock while it works, writes every batch the journal marked and did not
mark committed, under the batch's own id (the store skips it if it was written after
all), and the clicks no batch took in groups whose ids are derived from the journal
and the clicks' numbers: the same on every replay, so that a replay cut short and done
again counts nothing twice. Then it renames the journal away (one atomic step) and
deletes it. It never writes into the journal: what it reads stays as the dead
process left it.

A journal made before the machine last started is deleted unread: the page cache it
lived in need not have reached the disk, and a journal missing the record that a
batch was written would count that batch's clicks twice. Its clicks are lost, as they
would have been without a journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from kurz.analytics.events import ClickEvent
from kurz.analytics.journal import layout
from kurz.analytics.journal.writer import LOCK, SUFFIX
from kurz.analytics.queue import batch_prefix, until_done

log = logging.getLogger("kurz.analytics")

# Clicks no batch took are written in groups of GROUP consecutive numbers: a constant,
# so that every replayer, whatever its setup, derives the same ids.
GROUP = 1_000
# How often a live process looks for journals left by dead ones.
EVERY = 10.0
# A journal still being made (".<id>.new") is left alone for this long.
MAKING = 60.0

Batch = tuple[str, list[ClickEvent]]
Write = Callable[[str, list[ClickEvent]], Awaitable[object]]


def plan(journal: bytes, segments: Sequence[layout.Segment]) -> list[Batch]:
    """The batches to write again from a dead journal's segments, in order."""
    clicks: dict[int, ClickEvent] = {}
    batches: dict[str, tuple[int, int]] = {}
    committed: set[str] = set()
    for segment in segments:
        for offset, event in enumerate(segment.clicks):
            clicks[segment.first + offset] = event
        batches |= segment.batches
        committed |= segment.committed
    spans = sorted((first, end, ident) for ident, (first, end) in batches.items())
    starts = [first for first, _, _ in spans]
    written: list[Batch] = []
    for first, end, ident in spans:
        events = [clicks[number] for number in range(first, end) if number in clicks]
        if ident not in committed and events:
            written.append((ident, events))
    groups: dict[int, list[ClickEvent]] = {}
    for number in sorted(clicks):
        i = bisect_right(starts, number) - 1
        if i >= 0 and number < spans[i][1]:
            continue
        groups.setdefault(number // GROUP, []).append(clicks[number])
    for group, events in groups.items():
        tag = hashlib.blake2b(journal + group.to_bytes(8, "little"), digest_size=10)
        written.append((batch_prefix(events[0][1]) + tag.hexdigest(), events))
    return written


def owner(home: Path) -> tuple[bytes, bytes, bytes] | None:
    """(journal id, database fingerprint, boot) of a journal, from its first segment."""
    for path in sorted(home.glob(f"*{SUFFIX}")):
        with path.open("rb") as file:
            head = file.read(layout.HEADER.size)
        if len(head) == layout.HEADER.size:
            magic, journal, fingerprint, boot, *_ = layout.HEADER.unpack(head)
            if magic == layout.MAGIC:
                return journal, fingerprint, boot
    return None


class Replayer:
    """Finds the journals of dead processes in a directory and writes their clicks."""

    def __init__(
        self,
        directory: Path,
        fingerprint: bytes,
        write: Write,
        *,
        own: Callable[[], str | None] = lambda: None,
        every: float = EVERY,
        retry_after: float = 1.0,
    ) -> None:
        self._directory = directory
        self._fingerprint = fingerprint
        self._write = write
        self._own = own
        self._every = every
        self._retry_after = retry_after
        # Counters, for the operator (/metrics) and tests.
        self.replayed = 0
        self.journals = 0

    async def run(self) -> None:
        """Replay now, then every `every` seconds, until cancelled."""
        while True:
            try:
                await self.replay_dead()
            except Exception:
                log.exception("replaying click journals failed; trying again later")
            await asyncio.sleep(self._every)

    async def replay_dead(self) -> int:
        """Replay every journal in the directory whose process is gone; clicks written."""
        homes = await asyncio.to_thread(self._scan)
        written = 0
        for home in homes:
            written += await self.replay(home)
        return written

    def _scan(self) -> list[Path]:
        """The journals of others in the directory, after deleting stale leftovers."""
        if not self._directory.is_dir():
            return []
        homes = []
        own = self._own()
        for home in sorted(self._directory.iterdir()):
            name = home.name
            if name.endswith(".done") or (
                name.endswith(".new") and time.time() - home.stat().st_mtime > MAKING
            ):
                _remove_stale(home)
            elif not name.startswith(".") and name != own:
                homes.append(home)
        return homes

    async def replay(self, home: Path) -> int:
        """Replay one journal if its process is gone; the clicks written."""
        claimed = await asyncio.to_thread(_claim, home, self._fingerprint)
        if claimed is None:
            return 0
        lock, batches = claimed
        try:
            for ident, events in batches:
                await self._write_until_done(ident, events)
            await asyncio.to_thread(_delete, home)
        finally:
            os.close(lock)
        clicks = sum(len(events) for _, events in batches)
        self.replayed += clicks
        self.journals += 1
        if clicks:
            log.warning(
                "replayed %d clicks (%d batches) from the journal of a process that "
                "stopped without writing them (%s)",
                clicks,
                len(batches),
                home.name,
            )
        return clicks

    async def _write_until_done(self, ident: str, events: list[ClickEvent]) -> None:
        await until_done(
            lambda: self._write(ident, events),
            what=f"replaying {len(events)} journaled clicks",
            retry_after=self._retry_after,
        )


def _claim(home: Path, fingerprint: bytes) -> tuple[int, list[Batch]] | None:
    """Lock a journal whose process is gone, and plan its replay: the lock (held until
    the replay is done) and the batches; None when it is not one to replay."""
    try:
        lock = os.open(home / LOCK, os.O_RDWR | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Replayed and renamed away while this opened the lock: nothing to do.
        if home.is_dir():
            found = owner(home)
            if found is None:
                _delete(home)
            # (Another database's journal, in a directory shared across setups, is
            # left to a process of that setup.)
            elif found[1] == fingerprint:
                journal, _, boot = found
                batches = plan(journal, _read(home, journal, fingerprint))
                if boot == layout.BOOT:
                    return lock, batches
                log.warning(
                    "deleted click journal %s unread, made before the machine restarted: "
                    "up to %d clicks in it are lost",
                    home.name,
                    sum(len(events) for _, events in batches),
                )
                _delete(home)
    except BlockingIOError:
        pass
    except BaseException:
        os.close(lock)
        raise
    os.close(lock)
    return None


def _read(home: Path, journal: bytes, fingerprint: bytes) -> list[layout.Segment]:
    segments = []
    for path in sorted(home.glob(f"*{SUFFIX}")):
        segment = layout.read(path.read_bytes(), journal, fingerprint)
        if segment is not None:
            segments.append(segment)
    return segments


def _delete(home: Path) -> None:
    """Rename the journal away, the step after which it is never replayed, then delete."""
    done = home.with_name(f".{home.name}.done")
    os.rename(home, done)
    shutil.rmtree(done, ignore_errors=True)


def _remove_stale(home: Path) -> None:
    """Delete a journal replayed and not yet deleted, or one that was never finished
    being made (its maker died, or failed, long ago)."""
    if home.name.endswith(".done"):
        shutil.rmtree(home, ignore_errors=True)
        return
    try:
        lock = os.open(home / LOCK, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        shutil.rmtree(home, ignore_errors=True)
        return
    except OSError:
        return
    try:
        with contextlib.suppress(BlockingIOError):
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(home, ignore_errors=True)
    finally:
        os.close(lock)
