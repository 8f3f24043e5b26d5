"""Where a process keeps its click journal, and which database the journal is for."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from kurz.config import Settings


@dataclass(frozen=True)
class Place:
    directory: Path
    # Which database the clicks go to: a journal is replayed only into its own.
    fingerprint: bytes
    # The directory is a shared temporary one: this user's own, or not used.
    private: bool


def place(settings: Settings) -> Place | None:
    """KURZ_CLICK_JOURNAL_DIR, or beside a SQLite database, or a directory of this
    user's in the temporary directory; None when there is no journal to keep (turned
    off, or a database in memory, which dies with the process anyway)."""
    if not settings.click_journal:
        return None
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            return None
        database = Path(url.database).resolve()
        identity = f"sqlite:{database}"
        default = database.with_name(f"{database.name}-clicks")
        private = False
    else:
        where = f"{url.host or ''}:{url.port or 5432}/{url.database or ''}"
        identity = f"postgresql://{url.username or ''}@{where}"
        default = Path(tempfile.gettempdir()) / f"kurz-clicks-{os.geteuid()}"
        private = True
    fingerprint = hashlib.blake2b(identity.encode(), digest_size=16).digest()
    if settings.click_journal_dir:
        return Place(Path(settings.click_journal_dir).resolve(), fingerprint, private=False)
    return Place(default, fingerprint, private=private)
