"""The click journal: clicks made durable against the death of the process (ADR 0014)."""

from kurz.analytics.journal.place import Place, place
from kurz.analytics.journal.replay import Replayer, plan
from kurz.analytics.journal.writer import ClickJournal

__all__ = ["ClickJournal", "Place", "Replayer", "place", "plan"]
