"""A file source streams: a page comes as soon as its records are read, and reading a
100,000-row file holds no more than a page."""

from __future__ import annotations

import os
import threading
import tracemalloc
from pathlib import Path

from kurz.imports.sources import Record
from tests.unit.imports.reading import source

ROWS = 100_000
HEADER = b"url,alias,title,tags,created_at,clicks\r\n"


def row(n: int) -> bytes:
    title = f"Link number {n}, with a title long enough to make the file weigh " + "x" * 60
    return (
        f'https://example.com/{n}/page,a{n},"{title}",one|two,2026-01-01T00:00:00Z,{n}\r\n'.encode()
    )


async def test_the_first_page_comes_before_the_file_is_read_to_its_end(tmp_path: Path) -> None:
    # A named pipe: the test writes the rest of the file only after the first page has
    # come, so a source that read the whole file before its first page would wait.
    fifo = tmp_path / "links.csv"
    os.mkfifo(fifo)
    go_on, written = threading.Event(), threading.Event()

    def write() -> None:
        try:
            with fifo.open("wb") as out:
                out.write(HEADER + b"".join(row(n) for n in range(1, 1_001)))
                out.flush()
                # A safety net, not a time limit: a source that waits for the whole file
                # fails the test below when this gives up, instead of hanging.
                go_on.wait(timeout=300)
                out.writelines(row(n) for n in range(1_001, ROWS + 1))
        except BrokenPipeError:
            pass  # the test failed and stopped reading
        finally:
            written.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    stream = source("csv", fifo).pages(None)
    try:
        first = await anext(stream)
        assert not written.is_set()
        assert first.position == "500"
        assert isinstance(first.items[0], Record)
        assert first.items[0].url == "https://example.com/1/page"
    finally:
        go_on.set()
    rest = [page async for page in stream]
    writer.join()
    assert [page.position for page in rest][-1] == str(ROWS)
    assert len(rest) == ROWS // 500 - 1
    last = rest[-1].items[-2]
    assert isinstance(last, Record)
    assert last.alias == f"a{ROWS}"


async def test_memory_stays_within_a_page_whatever_the_size_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "links.csv"
    with path.open("wb") as out:
        out.write(HEADER)
        out.writelines(row(n) for n in range(1, ROWS + 1))
    size = path.stat().st_size
    assert size > 20_000_000

    opened = source("csv", path)
    tracemalloc.start()
    try:
        total = await opened.total()
        records = 0
        async for page in opened.pages(None):
            records += sum(isinstance(item, Record) for item in page.items)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (total, records) == (ROWS, ROWS)
    # A page of 500 links with their clicks is well under a megabyte; the file is 20.
    assert peak < 3 * 1024 * 1024, f"peak {peak:,} bytes reading a {size:,}-byte file"
