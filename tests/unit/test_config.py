"""Settings from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from kurz.config import Settings, unknown_variables


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


def clear_kurz(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("KURZ_")]:
        monkeypatch.delenv(name)


def test_reads_dot_env_in_the_working_directory_under_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_kurz(monkeypatch)
    (tmp_path / ".env").write_text("KURZ_PORT=9001\nKURZ_LOG_LEVEL=debug\n# a comment\n")
    monkeypatch.chdir(tmp_path)
    assert (Settings().port, Settings().log_level) == (9001, "debug")
    monkeypatch.setenv("KURZ_PORT", "9002")
    assert (Settings().port, Settings().log_level) == (9002, "debug")


def test_reads_one_secret_file_per_setting_under_dot_env_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_kurz(monkeypatch)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "KURZ_WEBHOOK_KEY").write_text("k" * 40 + "\n")
    (secrets / "KURZ_PORT").write_text("9003")
    monkeypatch.chdir(tmp_path)
    found = Settings(_secrets_dir=secrets)  # type: ignore[call-arg]
    assert (found.webhook_key, found.port) == ("k" * 40, 9003)
    (tmp_path / ".env").write_text("KURZ_PORT=9004\n")
    assert Settings(_secrets_dir=secrets).port == 9004  # type: ignore[call-arg]
    monkeypatch.setenv("KURZ_PORT", "9005")
    assert Settings(_secrets_dir=secrets).port == 9005  # type: ignore[call-arg]


def test_a_secrets_directory_that_does_not_exist_is_skipped_without_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest turns warnings into errors here (filterwarnings), so a warning fails this.
    clear_kurz(monkeypatch)
    assert Settings(_secrets_dir=tmp_path / "none").port == 8080  # type: ignore[call-arg]


def test_the_database_is_kurz_db_in_the_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_kurz(monkeypatch)
    monkeypatch.setenv("KURZ_DATA_DIR", "/srv/kurz")
    assert Settings().database_url == "sqlite:////srv/kurz/kurz.db"
    monkeypatch.setenv("KURZ_DATA_DIR", "data")
    assert Settings().database_url == "sqlite:///./data/kurz.db"
    monkeypatch.setenv("KURZ_DATABASE_URL", "postgresql://u@db/kurz")
    assert Settings().database_url == "postgresql://u@db/kurz"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])  # noqa: S104 (settings, not binds)
def test_listening_on_every_address_needs_a_base_url(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_kurz(monkeypatch)
    monkeypatch.setenv("KURZ_HOST", host)
    with pytest.raises(ValidationError, match=f"KURZ_HOST={host} listens on every address"):
        Settings()
    monkeypatch.setenv("KURZ_BASE_URL", "https://s.example")
    assert Settings().base_url == "https://s.example"


def test_an_unknown_kurz_variable_is_named_with_the_closest_setting(tmp_path: Path) -> None:
    environ = {
        "KURZ_DATABSE_URL": "sqlite:///x.db",
        "KURZ_PORT": "8080",
        "KURZ_NOTHING_LIKE_IT": "1",
        # The CLI's, the tests', benchmarks' and the lab's own: not settings, not warned.
        "KURZ_URL": "http://127.0.0.1:8080",
        "KURZ_API_KEY": "k",
        "KURZ_IMPORT_TOKEN": "t",
        "KURZ_TEST_PG": "postgresql://x",
        "KURZ_BENCH_PG": "postgresql://x",
        "KURZ_LAB_FIGURES": "f",
        "HOME": "/root",
    }
    (tmp_path / ".env").write_text("KURZ_REDIS_ULR=redis://127.0.0.1\nKURZ_LOG_LEVEL=info\n")
    assert unknown_variables(environ, tmp_path / ".env") == [
        "KURZ_DATABSE_URL is not a kurz setting; did you mean KURZ_DATABASE_URL?",
        "KURZ_NOTHING_LIKE_IT is not a kurz setting",
        "KURZ_REDIS_ULR is not a kurz setting; did you mean KURZ_REDIS_URL?",
    ]
    assert unknown_variables({"KURZ_PORT": "1"}, tmp_path / "none") == []
