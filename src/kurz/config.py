"""One Settings object for the whole service, read from the environment; fails fast."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/kurz.db"


class Settings(BaseSettings):
    """Everything kurz can be told, each field from a `KURZ_`-prefixed variable."""

    model_config = SettingsConfigDict(env_prefix="KURZ_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    database_url: str = DEFAULT_DATABASE_URL
    # The public origin short URLs are built on; defaults to the listening address.
    base_url: str = ""
    # Resolved links kept in memory for the redirect path (0 turns the cache off).
    redirect_cache_size: int = Field(default=100_000, ge=0)
    # Upper bound on how long another process may serve a link after it changed.
    redirect_cache_ttl: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    access_log: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("KURZ_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("base_url")
    @classmethod
    def _absolute_origin(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(
                "KURZ_BASE_URL must be an absolute http(s) URL, e.g. https://s.example"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _default_base_url(self) -> Settings:
        if not self.base_url:
            host = f"[{self.host}]" if ":" in self.host else self.host
            object.__setattr__(self, "base_url", f"http://{host}:{self.port}")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
