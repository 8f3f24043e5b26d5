"""Settings from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kurz.config import Settings


def test_defaults_to_embedded_sqlite_on_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KURZ_HOST", "KURZ_PORT", "KURZ_DATABASE_URL", "KURZ_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.database_url == "sqlite:///./var/kurz.db"
    assert settings.is_sqlite
    assert settings.base_url == "http://127.0.0.1:8080"


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURZ_PORT", "9000")
    monkeypatch.setenv("KURZ_DATABASE_URL", "postgresql://u@db/kurz")
    monkeypatch.setenv("KURZ_BASE_URL", "https://s.example/")
    settings = Settings()
    assert settings.port == 9000
    assert not settings.is_sqlite
    assert settings.base_url == "https://s.example"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KURZ_DATABASE_URL", "mysql://x/y"),
        ("KURZ_BASE_URL", "s.example"),
        ("KURZ_BASE_URL", "ftp://s.example"),
        ("KURZ_PORT", "70000"),
        ("KURZ_RATELIMIT_TIMEOUT", "0"),
    ],
)
def test_fails_fast_on_bad_values(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_ipv6_host_makes_a_bracketed_base_url() -> None:
    assert Settings(host="::1", port=81).base_url == "http://[::1]:81"


def test_head_limits_default_to_16_and_64_kib_and_10_seconds() -> None:
    settings = Settings()
    assert settings.max_header_field_bytes == 16 * 1024
    assert settings.max_head_bytes == 64 * 1024
    assert settings.head_timeout == 10.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KURZ_MAX_HEADER_FIELD_BYTES", "0"),
        ("KURZ_MAX_HEADER_FIELD_BYTES", "-1"),
        ("KURZ_MAX_HEAD_BYTES", "0"),
        ("KURZ_MAX_HEAD_BYTES", "-65536"),
        ("KURZ_HEAD_TIMEOUT", "0"),
        ("KURZ_HEAD_TIMEOUT", "-1"),
    ],
)
def test_refuses_head_limits_that_are_not_positive(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
