"""Durable jobs: delayed and periodic, retried, leased, dead-lettered.

Depends on nothing in kurz.links.
"""

from __future__ import annotations

import typing as _typing
from importlib import import_module as _import_module

if _typing.TYPE_CHECKING:
    from kurz.jobs.models import Job, JobState
    from kurz.jobs.registry import Registry
    from kurz.jobs.store import JobStore
    from kurz.jobs.worker import Backoff, Worker, current_job

__all__ = ["Backoff", "Job", "JobState", "JobStore", "Registry", "Worker", "current_job"]

# Loaded when first named: `kurz --help` needs JobState, not the store's SQLAlchemy.
_HOMES = {
    "Backoff": "worker",
    "Job": "models",
    "JobState": "models",
    "JobStore": "store",
    "Registry": "registry",
    "Worker": "worker",
    "current_job": "worker",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kurz.jobs' has no attribute {name!r}")
    value = getattr(_import_module(f"kurz.jobs.{home}"), name)
    globals()[name] = value
    return value
