"""Experiments behind docs/lab/: each script prints the tables its page shows."""
