"""The click journal: what it keeps, how it reads back when its writer died mid-record,
what a replay writes, and segments made, deleted and refused (a full disk)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kurz.analytics.events import ClickEvent, DailySalt, click_event, visitor_hash
from kurz.analytics.journal import ClickJournal, Replayer, layout, plan
from kurz.analytics.journal.layout import (
    BOOT,
    CLICK,
    CLICK_RECORD,
    HEADER,
    MARK,
    START,
    VISITOR_CHARS,
    Segment,
)
from kurz.analytics.journal.replay import GROUP, _read
from kurz.analytics.queue import BatchQueue, Drainer, batch_prefix
from kurz.analytics.recorder import ClickRecorder

FINGERPRINT = bytes(range(16))
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
# Small segments, to see several: about 180 clicks each.
SMALL = {"segment_bytes": 8_192, "reserve": 1_024}


def click(
    i: int, *, browser: str = "Firefox", host: str | None = "news.example", city: str | None = None
) -> ClickEvent:
    return click_event(
        link_id=1 + i % 7,
        at=T0 + i / 1000,
        referrer_host=host,
        browser=browser,
        os="Linux",
        device="desktop",
        bot=browser == "Googlebot",
        visitor=f"{i:016x}",
        country=None if city is None else "DE",
        city=city,
    )


def clicks(n: int, start: int = 0) -> list[ClickEvent]:
    kinds = [
        ("Firefox", "news.example", "Berlin"),
        ("Chrome", None, None),
        ("Googlebot", "search.example", None),
    ]
    return [
        click(i, browser=kinds[i % 3][0], host=kinds[i % 3][1], city=kinds[i % 3][2])
        for i in range(start, n)
    ]


def homes(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


def segments(home: Path) -> list[Segment]:
    return _read(home, bytes.fromhex(home.name), FINGERPRINT)


def journaled(home: Path) -> list[ClickEvent]:
    return [event for segment in segments(home) for event in segment.clicks]


class Sink:
    def __init__(self) -> None:
        self.batches: list[tuple[str, list[ClickEvent]]] = []

    async def write(self, ident: str, events: list[ClickEvent]) -> None:
        self.batches.append((ident, events))

    @property
    def events(self) -> list[ClickEvent]:
        return [event for _, batch in self.batches for event in batch]


def test_a_visitor_is_as_long_as_a_click_record_keeps() -> None:
    salt = DailySalt(lambda: T0)
    day, key = salt.current()
    assert len(visitor_hash("203.0.113.9", "Firefox", day, key)) == VISITOR_CHARS


def test_clicks_read_back_as_they_were_appended(tmp_path: Path) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT)
    events = clicks(500)
    for event in events:
        journal.append(event)
    [home] = homes(tmp_path)
    [segment] = segments(home)
    assert segment.clicks == events
    assert not segment.torn
    assert (journal.journaled, journal.undurable) == (500, 0)
    # Three templates stand for the clicks' shared fields: a click is a fixed record.
    assert segment.end < START + 500 * CLICK_RECORD.size + 3 * 100


def test_a_journal_an_older_kurz_wrote_reads_back_without_cities() -> None:
    """Its templates held six fields, the city not among them: its clicks read back
    with none."""
    ident = bytes(range(16, 32))
    data = bytearray(layout.header(ident, FINGERPRINT, 0, 0).ljust(START, b"\0"))
    data += layout.record(
        layout.TEMPLATE, [0, ["news.example", "Firefox", "Linux", "desktop", False, "DE"]]
    )
    data += CLICK_RECORD.pack(CLICK, 7, T0, 0, b"0123456789abcdef", MARK)
    data += bytes(CLICK_RECORD.size)
    segment = layout.read(bytes(data), ident, FINGERPRINT)
    assert segment is not None
    assert not segment.torn
    assert segment.clicks == [
        click_event(
            link_id=7, at=T0, referrer_host="news.example", browser="Firefox", os="Linux",
            device="desktop", bot=False, country="DE", visitor="0123456789abcdef",
        )
    ]  # fmt: skip


def test_clicks_sent_to_variants_read_back_with_their_variant(tmp_path: Path) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT)
    urls = [None, "https://a.example/", "https://b.example/"]
    events = [
        click_event(
            link_id=1,
            at=T0 + i,
            browser="Firefox",
            os="Linux",
            device="desktop",
            bot=False,
            visitor=f"{i:016x}",
            variant=urls[i % 3],
        )
        for i in range(30)
    ]
    for event in events:
        journal.append(event)
    [home] = homes(tmp_path)
    assert journaled(home) == events


def test_a_record_cut_short_ends_the_journal_after_the_whole_ones(tmp_path: Path) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT)
    events = clicks(10)
    for event in events:
        journal.append(event)
    [home] = homes(tmp_path)
    [segment] = segments(home)
    end = segment.end
    whole = CLICK_RECORD.pack(CLICK, 3, T0, 0, b"f" * VISITOR_CHARS, 0xC1)
    # What a process killed while copying the next record leaves: a prefix of it.
    for cut in (1, 9, len(whole) - 1):
        with (home / "00000000.seg").open("r+b") as file:
            file.seek(end)
            file.write(whole[:cut])
        [torn] = segments(home)
        assert torn.clicks == events
        assert torn.torn
        assert torn.end == end
    # A batch record cut short fails its checksum.
    journal.assign("b1", 10)
    [segment] = segments(home)
    assert segment.batches == {"b1": (0, 10)}
    with (home / "00000000.seg").open("r+b") as file:
        file.seek(segment.end - 3)
        file.write(b"\0\0\0")
    [torn] = segments(home)
    assert torn.batches == {}
    assert torn.torn


def test_a_replay_writes_a_batch_taken_and_not_committed_under_its_own_id(
    tmp_path: Path,
) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT)
    events = clicks(2_500)
    for event in events:
        journal.append(event)
    assert journal.assign("batch-1", 1_000)
    journal.committed("batch-1")
    assert journal.assign("batch-2", 1_000)
    # The process dies here: batch-2 may or may not have reached the store.
    [home] = homes(tmp_path)
    ident = bytes.fromhex(home.name)
    batches = plan(ident, segments(home))
    assert batches[0] == ("batch-2", events[1_000:2_000])
    # The rest, in groups of GROUP numbers, under ids that sort by time.
    assert [events for _, events in batches[1:]] == [events[2_000:2_500]]
    loose = batches[1][0]
    assert loose.startswith(batch_prefix(events[2_000][1]))
    assert len(loose) == len("batch") + 27
    # Planned again (a replay cut short and done again), it is the same.
    assert plan(ident, segments(home)) == batches


def test_loose_clicks_are_grouped_by_number_the_same_way_on_every_replay(
    tmp_path: Path,
) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT)
    for event in clicks(2 * GROUP + 10):
        journal.append(event)
    journal.assign("taken", 10)
    [home] = homes(tmp_path)
    batches = plan(bytes.fromhex(home.name), segments(home))
    assert [len(events) for _, events in batches] == [10, GROUP - 10, GROUP, 10]
    assert len({ident for ident, _ in batches}) == 4


def test_segments_rotate_and_are_deleted_once_their_clicks_are_written(
    tmp_path: Path,
) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT, **SMALL)  # type: ignore[arg-type]
    events = clicks(1_000)
    for event in events:
        journal.append(event)
    [home] = homes(tmp_path)
    assert len(list(home.glob("*.seg"))) >= 5
    assert journaled(home) == events
    for n in range(10):
        assert journal.assign(f"b{n}", 100)
        journal.committed(f"b{n}")
    # Only the segment being written is left: every click in the others is written.
    assert len(list(home.glob("*.seg"))) == 1
    assert plan(bytes.fromhex(home.name), segments(home)) == []
    journal.close()
    assert homes(tmp_path) == []


async def test_a_journal_left_at_shutdown_is_replayed_once_by_the_next_process(
    tmp_path: Path,
) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT, **SMALL)  # type: ignore[arg-type]
    events = clicks(600)
    for event in events:
        journal.append(event)
    assert journal.assign("written", 300)
    journal.committed("written")
    sink = Sink()
    replayer = Replayer(tmp_path, FINGERPRINT, sink.write)
    # Its process is alive (it holds the lock): left alone.
    assert await replayer.replay_dead() == 0
    # The Drainer's stop ran out of time: the clicks not written stay in the journal.
    journal.close()
    assert len(homes(tmp_path)) == 1
    assert await replayer.replay_dead() == 300
    assert sink.events == events[300:]
    assert homes(tmp_path) == []
    assert await replayer.replay_dead() == 0


async def test_a_journal_from_before_the_machine_restarted_is_deleted_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT)
    for event in clicks(50):
        journal.append(event)
    journal.close()
    [home] = homes(tmp_path)
    # As a journal made in an earlier boot reads: another boot id in its header.
    with (home / "00000000.seg").open("r+b") as file:
        file.seek(HEADER.size - 32)
        file.write(bytes(b ^ 0xFF for b in BOOT))
    sink = Sink()
    assert await Replayer(tmp_path, FINGERPRINT, sink.write).replay_dead() == 0
    assert sink.batches == []
    assert homes(tmp_path) == []
    assert "up to 50 clicks in it are lost" in caplog.text


async def test_another_databases_journal_is_left_alone(tmp_path: Path) -> None:
    journal = ClickJournal(tmp_path, FINGERPRINT)
    journal.append(click(1))
    journal.close()
    sink = Sink()
    assert await Replayer(tmp_path, bytes(16), sink.write).replay_dead() == 0
    assert len(homes(tmp_path)) == 1
    assert await Replayer(tmp_path, FINGERPRINT, sink.write).replay_dead() == 1


async def test_the_drainer_marks_batches_and_a_clean_stop_deletes_the_journal(
    tmp_path: Path,
) -> None:
    queue: BatchQueue[ClickEvent] = BatchQueue(10_000)
    journal = ClickJournal(tmp_path, FINGERPRINT)
    sink = Sink()
    drainer = Drainer(queue, sink.write, batch=100, linger=0.0)
    drainer.journal = journal
    recorder = ClickRecorder(queue, clock=lambda: T0)
    recorder.journal = journal
    drainer.start()
    scope = {"method": "GET", "headers": [(b"user-agent", b"Firefox")], "type": "http"}
    for link in range(250):
        assert recorder.click(link + 1, scope, "203.0.113.9")
    [home] = homes(tmp_path)
    await drainer.stop()
    assert journaled(home) == sink.events
    [segment] = segments(home)
    assert set(segment.batches) == segment.committed == {ident for ident, _ in sink.batches}
    journal.close()
    assert homes(tmp_path) == []


def test_no_journal_where_the_directory_cannot_be_made_and_clicks_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file where the directory should be: refused even to root, unlike permissions.
    (tmp_path / "clicks").write_text("")
    journal = ClickJournal(tmp_path / "clicks", FINGERPRINT)
    queue: BatchQueue[ClickEvent] = BatchQueue(100)
    for event in clicks(10):
        assert queue.put(event)
        journal.append(event)
    assert (journal.undurable, journal.journaled, len(queue)) == (10, 0, 10)
    warnings = [r for r in caplog.records if "not durable" in r.getMessage()]
    assert len(warnings) == 1
    assert not journal.assign("b", 10)


# Run as a process of its own, which the test kills (SIGKILL) while it appends.
APPENDER = """
import sys
from pathlib import Path
from kurz.analytics.journal import ClickJournal
from tests.unit.analytics.test_journal import FINGERPRINT, click
journal = ClickJournal(Path(sys.argv[1]), FINGERPRINT, segment_bytes=65_536, reserve=4_096)
i = 0
while True:
    journal.append(click(i))
    i += 1
    if i == 5_000:
        print("ready", flush=True)
"""


def kill_while_appending(directory: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(directory)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()


async def test_a_process_killed_while_appending_leaves_every_click_it_appended(
    tmp_path: Path,
) -> None:
    await asyncio.to_thread(kill_while_appending, tmp_path)
    [home] = homes(tmp_path)
    events = journaled(home)
    # A prefix of what it appended, in order, nothing garbled: the record it was
    # writing when it died, if any, is not taken for a click.
    assert len(events) >= 5_000
    assert events == [click(i) for i in range(len(events))]
    sink = Sink()
    assert await Replayer(tmp_path, FINGERPRINT, sink.write).replay_dead() == len(events)


# A process whose files may not grow past 32 KiB (RLIMIT_FSIZE) once its journal's
# first segment is made: the second cannot be allocated, as on a full disk (EFBIG
# here, ENOSPC there: both an OSError from posix_fallocate; Python ignores SIGXFSZ).
# It journals 3,000 clicks, the Drainer takes them in batches of 100, the first
# `written` of which are written; then it dies, or (`written` = all) the limit is
# lifted and it journals 100 more.
FULL_DISK = """
import asyncio, json, os, resource, signal, sys
from pathlib import Path
from kurz.analytics.journal import ClickJournal
from tests.unit.analytics.test_journal import FINGERPRINT, click

async def main(directory, written):
    now = [0.0]
    journal = ClickJournal(
        directory, FINGERPRINT, segment_bytes=65_536, reserve=4_096, timer=lambda: now[0]
    )
    journal.append(click(0))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (32_768, hard))
    for i in range(1, 3_000):
        journal.append(click(i))
    seen = {"journaled": journal.journaled, "undurable": journal.undurable, "marked": []}
    for n in range(written):
        seen["marked"].append(journal.assign(f"b{n}", 100))
        journal.committed(f"b{n}")
    if written < 30:
        print(json.dumps(seen), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    now[0] += 60
    for i in range(3_000, 3_100):
        journal.append(click(i))
    seen["after"] = [journal.journaled, journal.undurable]
    print(json.dumps(seen), flush=True)

asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
"""


def full_disk(directory: Path, written: int) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(directory), str(written)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen, done.stderr


async def test_a_full_disk_leaves_clicks_answered_and_the_journaled_ones_replayable(
    tmp_path: Path,
) -> None:
    seen, log = await asyncio.to_thread(full_disk, tmp_path, 10)
    journaled, undurable = seen["journaled"], seen["undurable"]
    assert 1_000 < journaled < 3_000
    assert journaled + undurable == 3_000
    # Only the batches that took journaled clicks are marked.
    assert seen["marked"] == [True] * 10
    assert log.count("not durable") == 1, log
    sink = Sink()
    # Killed with 1,000 clicks written: the journaled rest is replayed, once.
    assert await Replayer(tmp_path, FINGERPRINT, sink.write).replay_dead() == journaled - 1_000
    assert sink.events == [click(i) for i in range(1_000, journaled)]


async def test_after_a_full_disk_a_new_journal_is_made_once_the_old_one_is_written(
    tmp_path: Path,
) -> None:
    seen, log = await asyncio.to_thread(full_disk, tmp_path, 30)
    journaled, undurable = seen["journaled"], seen["undurable"]
    boundary = -(-journaled // 100)
    assert seen["marked"] == [True] * boundary + [False] * (30 - boundary)
    assert seen["after"] == [100, undurable]
    assert "durable again" in log
    # It exited without closing its new journal: only that one's 100 clicks are left.
    sink = Sink()
    assert await Replayer(tmp_path, FINGERPRINT, sink.write).replay_dead() == 100
    assert sink.events == [click(i) for i in range(3_000, 3_100)]
