"""Imports: links and their statistics from another shortener or a file, run as a
durable job a page at a time (docs/imports.md, ADR 0022)."""
