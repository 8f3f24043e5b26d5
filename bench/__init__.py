"""Benchmarks: `python -m bench.redirect` and the others (docs/benchmarks.md sums them up;
every run is in docs/benchmarks/history.md)."""
