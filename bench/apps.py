"""Factories for servers that take an import string rather than an app object (granian)."""

from __future__ import annotations

from kurz.app import KurzApp, create_app
from kurz.bootstrap import build
from kurz.config import Settings


def kurz_app() -> KurzApp:
    """kurz exactly as `kurz serve` builds it, from the KURZ_* environment."""
    return create_app(build(Settings()))
