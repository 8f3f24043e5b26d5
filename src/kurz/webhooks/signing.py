"""Signing secrets, derived rather than stored, and the Standard Webhooks signature.

An endpoint's secret is HMAC-SHA256(KURZ_WEBHOOK_KEY, "kurz-webhook-secret:" + endpoint
id + ":" + nonce); the database holds only the nonce (ADR 0021). A copy of the database
(a backup, a dump sent for support) reveals no secret; the key does, so it lives in the
environment (or, embedded, in a file beside the database that only its owner can read).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from kurz.errors import Problem

PREFIX = "whsec_"
_LABEL = b"kurz-webhook-secret:"


def not_configured() -> Problem:
    return Problem(
        503,
        "webhooks-not-configured",
        "Webhooks Not Configured",
        "Webhooks need KURZ_WEBHOOK_KEY (the same in every kurz process) with PostgreSQL.",
    )


def key_file(database_url: str) -> Path | None:
    """Where an embedded kurz keeps its webhook key: beside its SQLite file."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database:
        return None
    if url.database == ":memory:":
        return None
    return Path(url.database).with_name(Path(url.database).name + "-webhook.key")


def _read_or_make(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    drafted = path.with_name(f"{path.name}.{os.getpid()}.draft")
    fd = os.open(drafted, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    # Two processes starting at once: the first link wins, the other reads it.
    try:
        os.link(drafted, path)
    except FileExistsError:
        pass
    finally:
        drafted.unlink()
    return path.read_text().strip()


class SigningKeys:
    """Derives each endpoint's secret from the one key (KURZ_WEBHOOK_KEY, or the file)."""

    def __init__(self, key: str = "", *, file: Path | None = None) -> None:
        self._key = key.encode() if key else None
        self._file = file

    def _master(self) -> bytes:
        if self._key is None:
            if self._file is None:
                raise not_configured()
            self._key = _read_or_make(self._file).encode()
        return self._key

    def check(self) -> None:
        """Raise the 503 unless secrets can be derived."""
        self._master()

    def secret(self, endpoint_id: int, nonce: str) -> bytes:
        message = _LABEL + f"{endpoint_id}:{nonce}".encode()
        return hmac.new(self._master(), message, hashlib.sha256).digest()

    def shown(self, endpoint_id: int, nonce: str) -> str:
        """The secret as the endpoint's owner is given it: whsec_ and base64."""
        return PREFIX + base64.b64encode(self.secret(endpoint_id, nonce)).decode()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def signature(secrets_: list[bytes], message_id: str, at: float, body: bytes) -> str:
    """The webhook-signature header: `v1,<base64>` for each secret, space-separated
    (two while a rotated secret still signs)."""
    when = datetime.fromtimestamp(at, UTC)
    return " ".join(Webhook(secret).sign(message_id, when, body) for secret in secrets_)
