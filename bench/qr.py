"""kurz.links.qr: the CPU one QR code costs to make, against a hit in QrCodes' LRU.

    python -m bench.qr [--rounds 5]

CPU time (process_time), not wall time: the host is shared, and a make is pure Python.
Each figure is the median over rounds of the mean per call. Printed, not recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from kurz.links.qr import QrCodes, QrOptions, make

URLS = {
    "a default-domain link": "https://kurz.test/aB3xY9k",
    "an alias on a branded domain": "https://go.example-company.com/spring-sale-2027-newsletter",
}
OPTIONS = (
    QrOptions(format="png"),
    QrOptions(format="svg"),
    QrOptions(format="png", size=2048, ecc="H"),
)


def cpu_per_call(call: Callable[[], object], calls: int, rounds: int) -> float:
    means = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            call()
        means.append((time.process_time() - start) / calls)
    return statistics.median(means)


async def cpu_per_hit(rounds: int, calls: int = 100_000) -> float:
    codes = QrCodes()
    url, options = URLS["a default-domain link"], QrOptions(format="png")
    await codes.image(url, options)
    means = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            await codes.image(url, options)
        means.append((time.process_time() - start) / calls)
    return statistics.median(means)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    print("| URL | image | CPU per make | bytes |")
    print("|---|---|---:|---:|")
    for name, url in URLS.items():
        for options in OPTIONS:
            cost = cpu_per_call(lambda: make(url, options), 20, rounds)  # noqa: B023
            image = f"{options.format}, size {options.size}, ecc {options.ecc}"
            print(f"| {name} | {image} | {cost * 1e3:.2f} ms | {len(make(url, options)):,} |")
    print(f"\nA hit (await QrCodes.image, kept): {asyncio.run(cpu_per_hit(rounds)) * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
