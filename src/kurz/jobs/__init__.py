"""Durable jobs: delayed and periodic, retried, leased, dead-lettered.

Depends on nothing in kurz.links.
"""

from kurz.jobs.models import Job, JobState
from kurz.jobs.registry import Registry
from kurz.jobs.store import JobStore
from kurz.jobs.worker import Backoff, Worker, current_job

__all__ = ["Backoff", "Job", "JobState", "JobStore", "Registry", "Worker", "current_job"]
