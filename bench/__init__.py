"""Benchmarks: `python -m bench.redirect` (see docs/benchmarks.md)."""
