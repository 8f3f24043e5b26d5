"""What oversize and slow request heads do to `kurz serve` (ADR 0013), repeatable.

    python -m bench.head_flood [--header-mb 40] [--clients 8] [--tricklers 100]

Starts `kurz serve` from this tree on a fresh SQLite file, pinned to CPU 0 (the
clients run on CPU 1), and then:

1. one client sends header fields that never end, --header-mb MB in all (on a new
   connection whenever the server answers or closes one), while this process asks
   /healthz again and again: the slowest and the median answer;
2. --clients such clients at once: the server's peak resident memory (VmHWM)
   against what it held before;
3. --tricklers connections each send a head one byte every 0.5 s: how many the
   server still holds after twice KURZ_HEAD_TIMEOUT (its default unless set).

Each flooding client stops when the server answers or closes, or when it has sent
everything. Latencies are wall-clock on a shared machine: compare runs side by
side, and read them for their order of magnitude.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.harness import BenchError, Processes, free_port, kurz_cli, on_cpu

HEAD = b"GET /healthz HTTP/1.1\r\nHost: kurz\r\n"
CHUNK = b"x" * 65536


def flood(port: int, total: int, sent: list[int]) -> None:
    """Send a header of `total` bytes (never ended) until the server answers or closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(HEAD + b"X-Flood: ")
        done = 0
        while done < total:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(CHUNK)
            except OSError:
                break
            done += len(CHUNK)
        sent.append(done)


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory now, and its peak, in MB (Linux /proc)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def floods(port: int, total: int, sent: list[int]) -> None:
    """Send `total` bytes of never-ending headers, reconnecting after each refusal."""
    while sum(sent) < total:
        flood(port, total - sum(sent), sent)
        if not sent[-1]:
            return  # answered before a byte of header: not a server that reads heads


def healthz_during(port: int, total: int) -> tuple[list[float], list[int]]:
    sent: list[int] = []
    sender = threading.Thread(target=floods, args=(port, total, sent))
    latencies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        http.get("/healthz")
        sender.start()
        while sender.is_alive():
            began = time.perf_counter()
            if http.get("/healthz").status_code != 200:
                raise BenchError("/healthz did not answer 200")
            latencies.append(time.perf_counter() - began)
    sender.join()
    return latencies, sent


def still_open(port: int, count: int, wait: float) -> int:
    """How many of `count` trickling connections the server still holds after `wait` s."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    try:
        for sock in socks:
            sock.sendall(HEAD + b"X-Slow: ")
        open_ = set(socks)
        end = time.monotonic() + wait
        while time.monotonic() < end and open_:
            for sock in select.select(list(open_), [], [], 0.5)[0]:
                open_.discard(sock)
            for sock in list(open_):
                try:
                    sock.sendall(b"y")
                except OSError:
                    open_.discard(sock)
        return len(open_)
    finally:
        for sock in socks:
            sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.head_flood",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--header-mb", type=int, default=40)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tricklers", type=int, default=100)
    args = parser.parse_args(argv)
    total = args.header_mb * 1024 * 1024
    timeout = float(os.environ.get("KURZ_HEAD_TIMEOUT", "10"))
    with tempfile.TemporaryDirectory(prefix="kurz-bench-head-") as tmp:
        procs = Processes(Path(tmp))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KURZ_")}
        env.update(
            KURZ_PORT=str(port),
            KURZ_GRPC_PORT="0",
            KURZ_DATABASE_URL=f"sqlite:///{tmp}/kurz.db",
            KURZ_HEAD_TIMEOUT=str(timeout),
        )
        try:
            kurz_cli(["migrate"], env, Path(tmp))
            procs.start("kurz", [str(Path(sys.executable).with_name("kurz")), "serve"], env,
                        Path(tmp))  # fmt: skip
            procs.wait_ready("kurz", f"http://127.0.0.1:{port}/healthz", 200)
            pid = procs.running["kurz"][0].pid
            print(f"kurz serve resident at start: {peak_rss_mb(pid)[0]:,.0f} MB", flush=True)
            with on_cpu(1):
                latencies, sent = healthz_during(port, total)
                print(
                    f"1 client, {args.header_mb} MB of header on {len(sent)} connection(s): "
                    f"/healthz slowest {max(latencies) * 1000:,.1f} ms, median "
                    f"{statistics.median(latencies) * 1000:,.1f} ms over {len(latencies)} "
                    "answers",
                    flush=True,
                )
                before, _ = peak_rss_mb(pid)
                senders = [
                    threading.Thread(target=flood, args=(port, total, sent))
                    for _ in range(args.clients)
                ]
                for sender in senders:
                    sender.start()
                for sender in senders:
                    sender.join()
                _, peak = peak_rss_mb(pid)
                print(
                    f"{args.clients} clients at once: resident {before:,.0f} MB before, "
                    f"peak {peak:,.0f} MB",
                    flush=True,
                )
                held = still_open(port, args.tricklers, 2 * timeout)
                print(
                    f"{args.tricklers} trickled heads: {held} still open after "
                    f"{2 * timeout:g} s (KURZ_HEAD_TIMEOUT={timeout:g})"
                )
        except BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        finally:
            procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
