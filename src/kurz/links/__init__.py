"""Links: create, resolve and redirect."""
