"""Secrets derived from the key (none stored), and the retry schedule's day."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from kurz.errors import Problem
from kurz.webhooks.scheduled import RetrySchedule
from kurz.webhooks.signing import SigningKeys, key_file


def test_a_secret_is_the_key_s_for_one_endpoint_and_nonce() -> None:
    keys = SigningKeys("k" * 32)
    secret = keys.shown(1, "n1")
    assert secret == SigningKeys("k" * 32).shown(1, "n1")
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert (
        len(
            {secret, keys.shown(2, "n1"), keys.shown(1, "n2"), SigningKeys("j" * 32).shown(1, "n1")}
        )
        == 4
    )


def test_embedded_the_key_is_made_once_beside_the_database(tmp_path: Path) -> None:
    path = key_file(f"sqlite:///{tmp_path}/kurz.db")
    assert path == tmp_path / "kurz.db-webhook.key"
    first = SigningKeys(file=path).shown(1, "n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKeys(file=path).shown(1, "n") == first
    assert key_file("postgresql://db/kurz") is None


def test_without_a_key_or_a_file_secrets_are_refused() -> None:
    with pytest.raises(Problem) as refused:
        SigningKeys().check()
    assert refused.value.status == 503


def test_the_retry_schedule_spans_about_a_day() -> None:
    plain = RetrySchedule().delays()
    assert plain == [15, 60, 240, 960, 3_840, 15_360, 28_800, 28_800]
    assert 21 * 3_600 < sum(plain) < 22 * 3_600
    low = RetrySchedule(rng=lambda: 0.0)
    high = RetrySchedule(rng=lambda: 0.999999)
    assert low(1) == pytest.approx(12.0)
    assert high(8) == pytest.approx(28_800 * 1.2, rel=1e-5)
