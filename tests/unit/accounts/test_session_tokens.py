"""Session ids, their stored hashes and their CSRF tokens (kurz.accounts.session_store)."""

from __future__ import annotations

import base64
import hashlib
import re

from kurz.accounts.session_store import MAX_ID_LENGTH, csrf_matches, csrf_token, hash_id, new_id


def test_an_id_is_256_random_bits_and_only_its_hash_is_stored() -> None:
    ids = {new_id() for _ in range(1_000)}
    assert len(ids) == 1_000
    session_id = ids.pop()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session_id)
    assert len(session_id) <= MAX_ID_LENGTH
    assert hash_id(session_id) == hashlib.sha256(session_id.encode()).hexdigest()


def test_the_csrf_token_is_the_prefixed_hash_of_the_id() -> None:
    session_id = new_id()
    token = csrf_token(session_id)
    digest = hashlib.sha256(b"kurz-csrf:" + session_id.encode()).digest()
    assert token == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert token == csrf_token(session_id)  # nothing to store: derived again each time
    # Not the stored hash in another spelling: the database holds nothing that makes it.
    assert base64.urlsafe_b64decode(token + "=").hex() != hash_id(session_id)
    assert csrf_token(new_id()) != token


def test_only_the_sessions_own_token_matches() -> None:
    session_id, other = new_id(), new_id()
    assert csrf_matches(session_id, csrf_token(session_id))
    assert not csrf_matches(session_id, csrf_token(other))
    assert not csrf_matches(session_id, None)
    assert not csrf_matches(session_id, "")
    assert not csrf_matches(session_id, csrf_token(session_id)[:-1])
    assert not csrf_matches(session_id, "é" * 43)
    assert not csrf_matches(session_id, "\ud800")
