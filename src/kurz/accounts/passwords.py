"""Password hashes: Argon2id, verified without telling apart an unknown user."""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# NIST SP 800-63B: at least 8 characters, no composition rules. The upper bound only
# keeps a request from making kurz hash megabytes.
MIN_LENGTH = 8
MAX_LENGTH = 1024


def check_new(password: str) -> None:
    """Refuse a password chosen for an account, with a message a 422 can show."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"A password has at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"A password has at most {MAX_LENGTH} characters.")
    try:
        password.encode()
    except UnicodeEncodeError:
        # A lone surrogate (JSON allows "\ud800") has no UTF-8 form to hash.
        raise ValueError("A password is Unicode text without lone surrogates.") from None


@dataclass(frozen=True, slots=True)
class Cost:
    """What one Argon2id hash spends: passes, memory in KiB, and lanes.

    The defaults are OWASP's minimum for Argon2id (m=19 MiB, t=2, p=1):
    https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
    """

    time_cost: int = 2
    memory_cost: int = 19 * 1024
    parallelism: int = 1


class Passwords:
    """Hashes and verifies passwords with Argon2id.

    `work` counts the Argon2 calls made (the dummy hash made at construction included),
    so a test can check that an unknown user costs what a wrong password costs.
    """

    def __init__(self, cost: Cost | None = None) -> None:
        self.cost = cost or Cost()
        self._hasher = PasswordHasher(
            time_cost=self.cost.time_cost,
            memory_cost=self.cost.memory_cost,
            parallelism=self.cost.parallelism,
        )
        self._lock = threading.Lock()
        self.work = 0
        # Verified against when there is no user, so that the answer takes as long.
        self._dummy = self.hash(secrets.token_urlsafe(32))

    def _count(self) -> None:
        with self._lock:
            self.work += 1

    def hash(self, password: str) -> str:
        """A new hash of `password`, with a random salt, in PHC string form."""
        self._count()
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether `password` matches `stored_hash`; False, never an error, otherwise."""
        self._count()
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError, UnicodeError):
            return False

    def verify_user(self, stored_hash: str | None, password: str) -> bool:
        """Like `verify`, and for no user (None) as slow as a wrong password, and False."""
        if stored_hash is None:
            self.verify(self._dummy, password)
            return False
        return self.verify(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether `stored_hash` was made with other parameters than these (rehash on login)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    async def ahash(self, password: str) -> str:
        """`hash` in a worker thread, so the event loop keeps serving redirects meanwhile."""
        return await asyncio.to_thread(self.hash, password)

    async def averify_user(self, stored_hash: str | None, password: str) -> bool:
        """`verify_user` in a worker thread, so the event loop keeps serving meanwhile."""
        return await asyncio.to_thread(self.verify_user, stored_hash, password)
