"""Durable jobs: delayed and periodic, retried, leased, dead-lettered.

Depends on nothing in kurz.links.
"""

from kurz.jobs.models import Job, JobState
from kurz.jobs.store import JobStore

__all__ = ["Job", "JobState", "JobStore"]
