"""Exports: a caller's links and their statistics, taken out as JSON Lines or CSV."""
