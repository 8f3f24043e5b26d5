"""One Settings object for the whole service, read from the environment; fails fast."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from kurz.cache.nodes import parse_node
from kurz.ratelimit import Policy, parse_policy

DEFAULT_DATA_DIR = "./var"
# Read from the working directory, under the environment (which wins).
ENV_FILE = ".env"
# Docker's and Kubernetes' secrets: one file per setting, named as its variable
# (KURZ_WEBHOOK_KEY), under the environment and .env.
SECRETS_DIR = "/run/secrets"
# KURZ_* variables that are not settings of the server: the CLI's own and the test
# suite's, benchmarks' and lab's, which are never warned about.
_NOT_SETTINGS = frozenset({"KURZ_URL", "KURZ_API_KEY", "KURZ_IMPORT_TOKEN", "KURZ_IMPORT_API_KEY",
                           "KURZ_IMPORT_DATABASE_URL", "KURZ_SCREENSHOTS"})  # fmt: skip
_NOT_SETTINGS_PREFIXES = ("KURZ_TEST_", "KURZ_BENCH_", "KURZ_LAB_")
_UNSPECIFIED_HOSTS = frozenset({"0.0.0.0", "::", "[::]", ""})  # noqa: S104 (names, not binds)


class Settings(BaseSettings):
    """Everything kurz can be told, each field from a `KURZ_`-prefixed variable."""

    model_config = SettingsConfigDict(
        env_prefix="KURZ_",
        extra="ignore",
        frozen=True,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        secrets_dir=SECRETS_DIR,
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The gRPC API (docs/grpc.md), served by `kurz serve` on KURZ_HOST; 0 turns it off.
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    # Where an embedded setup keeps its files: the SQLite database (kurz.db) and what
    # lies beside it (click journals, the webhook key). Relative to the working
    # directory, so run every command from the same one, or set an absolute path.
    data_dir: str = DEFAULT_DATA_DIR
    # Empty: SQLite at KURZ_DATA_DIR/kurz.db.
    database_url: str = ""
    # PostgreSQL connections each process keeps open; under load it opens as many again.
    # A request that finds them all busy waits KURZ_DATABASE_POOL_TIMEOUT seconds for
    # one, then gets a 503 (database-busy).
    database_pool_size: int = Field(default=10, ge=1, le=1_000)
    database_pool_timeout: float = Field(default=5.0, gt=0)
    # /readyz answers 503 when the disk holding a SQLite database has less free space
    # than this (100 MiB); 0 turns the check off. PostgreSQL's disk is not visible.
    ready_min_free_bytes: int = Field(default=100 * 1024 * 1024, ge=0)
    # The public origin short URLs are built on; defaults to the listening address.
    # Its host is the default domain (docs/domains.md).
    base_url: str = ""
    # A request whose Host names no domain of kurz's: served as the default domain's
    # ("default"), or refused with 404 ("refuse").
    unknown_host: Literal["default", "refuse"] = "default"
    # Where visits go instead of kurz's own pages, on every domain that sets none of
    # its own: GET /, an unknown code, an expired link, a used-up link. Empty: the page.
    root_redirect: str = ""
    not_found_redirect: str = ""
    expired_redirect: str = ""
    used_up_redirect: str = ""
    # Resolved links each process keeps in memory, L1 (0 turns it off).
    redirect_cache_size: int = Field(default=100_000, ge=0)
    # How long L1 keeps a link: the bound on serving a changed link when no
    # invalidation can reach this process (docs/decisions/0007-tiered-cache.md).
    redirect_cache_ttl: float = Field(default=30.0, gt=0)
    # Which new links L1 lets in when full: "tinylfu" (only those asked for more often
    # than the one they would evict) or "none" (every one, plain LRU); ADR 0005.
    redirect_cache_admission: Literal["tinylfu", "none"] = "tinylfu"
    # How long L1 remembers that a code does not exist.
    redirect_cache_missing_ttl: float = Field(default=5.0, gt=0)
    # Redis nodes for the shared cache, L2 (comma-separated redis:// URLs, each may
    # end in ?weight=N); empty turns L2 off. Invalidations to every process's L1 go
    # over these nodes, or over KURZ_REDIS_URL when there are none.
    cache_nodes: Annotated[tuple[str, ...], NoDecode] = ()
    # How long L2 keeps a link: a backstop only, since changes invalidate it. A short
    # TTL reloads every cached link once per TTL (docs/capacity.md): 30 days.
    cache_ttl: float = Field(default=30 * 86_400.0, gt=0)
    # Points per node (of weight 1) on the hash ring.
    cache_points: int = Field(default=160, ge=4, le=10_000, multiple_of=4)
    # Bounded loads: no node takes more than this times the average of the requests
    # in flight (e.g. 1.25); empty for plain consistent hashing.
    cache_balance: float | None = Field(default=None, gt=1)
    # How long a cache node may take to answer before the read goes on without it.
    cache_timeout: float = Field(default=0.2, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # POST /api/v1/links/batch's: up to 1,000 links (docs/batch.md).
    max_batch_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # The request head (request line and header fields), bounded before the app sees
    # it: 431 past either size, 408 (or a silent close) past the deadline, which runs
    # from a request's first byte, or from the connection's opening, until its head
    # is complete (docs/decisions/0013-request-head-limits.md).
    max_header_field_bytes: int = Field(default=16 * 1024, ge=1024)
    max_head_bytes: int = Field(default=64 * 1024, ge=1024)
    head_timeout: float = Field(default=10.0, gt=0, le=3_600, allow_inf_nan=False)
    # Rate limits, as "<limit>/<window>[s|m|h|d];burst=<n>" or "off"
    # (docs/decisions/0003-rate-limiting.md). API calls count per API key; redirects
    # and failed authentications per client IP.
    ratelimit_api: str = "120/60s;burst=20"
    ratelimit_redirect: str = "600/60s;burst=100"
    ratelimit_auth_fail: str = "10/60s;burst=10"
    # Buckets the in-process limiter keeps at most (least recently used go first).
    ratelimit_max_keys: int = Field(default=100_000, ge=100)
    # Redis for limits shared by every kurz process; empty keeps them in process.
    redis_url: str = ""
    # How long a check may wait for that Redis before the process limits on its own
    # (for 5 s): short, so that a Redis that hangs does not hang redirects with it.
    ratelimit_timeout: float = Field(default=0.25, gt=0)
    # Peers whose X-Forwarded-For is believed (addresses or networks, comma-separated).
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()
    # How long a process trusts an API key it has checked, in seconds. Off by default,
    # so that a revoked key is refused at once; a few seconds spare busy API and gRPC
    # callers a database read per call, and a revocation then takes that long.
    auth_cache_ttl: float = Field(default=0.0, ge=0)
    # Signed-in browsers (ADR 0016): a session ends after this long without a request
    # (idle, 2 days), and after this long whatever happens (absolute, 30 days).
    session_idle_ttl: float = Field(default=2 * 86_400.0, ge=60)
    session_absolute_ttl: float = Field(default=30 * 86_400.0, ge=60)
    # Failed sign-ins, per client IP and per account, as the rate limits above.
    ratelimit_signin_ip: str = "20/600s;burst=10"
    ratelimit_signin_account: str = "10/600s;burst=5"
    # Wrong passwords given for a password link, per link and client IP.
    ratelimit_link_password: str = "10/600s;burst=5"  # noqa: S105
    # The first admin, for containers: made at start when no user exists yet, with the
    # password read from the file (a Docker or Kubernetes secret).
    initial_admin_email: str = ""
    initial_admin_password_file: str = ""
    # How long the audit log keeps account events (180 days).
    audit_retention: float = Field(default=180 * 86_400.0, ge=86_400)
    # Origins allowed to call the API from a browser with a key (comma-separated, e.g.
    # https://tools.example,chrome-extension://abc); none by default. Never with cookies.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # How long a response sent for an Idempotency-Key is kept for replay (24 h).
    idempotency_ttl: float = Field(default=86_400.0, ge=1)
    # Refuse a POST that carries no Idempotency-Key (400).
    idempotency_required: bool = False
    # PostgreSQL ends a keyed request's transaction, and frees its key, after its
    # client (a kurz process) has left it idle this long, e.g. because it hung. A
    # batch's key stays in flight this long after its last chunk (docs/batch.md).
    idempotency_lock_timeout: float = Field(default=10.0, gt=0)
    # How often a worker deletes expired keys.
    idempotency_purge_interval: float = Field(default=3_600.0, gt=0)
    # Run a job worker inside `kurz serve`. Empty: yes with SQLite (the embedded
    # setup), no with PostgreSQL, where `kurz worker` processes run the jobs.
    embedded_worker: bool | None = None
    # Jobs each worker runs at once.
    worker_concurrency: int = Field(default=4, ge=1, le=1_000)
    # How long a worker holds a job without renewing it: a worker that dies (SIGKILL, a
    # lost machine) has its jobs run elsewhere this long after its last heartbeat.
    worker_lease: float = Field(default=30.0, ge=1.0, le=3_600.0)
    # Webhooks (docs/webhooks.md). Deliveries to loopback, private and link-local
    # addresses are refused unless this is true (for tests and private networks);
    # multicast, unspecified and cloud metadata addresses always are.
    webhook_allow_private: bool = False
    # The key every endpoint's signing secret is derived from (ADR 0021): at least 32
    # characters, the same in every process, and never changed (that changes every
    # secret). Empty: with SQLite, made once in a file beside the database; with
    # PostgreSQL webhooks are refused until it is set.
    webhook_key: str = Field(default="", repr=False)
    # How long one delivery attempt may take, connecting, sending and reading the answer.
    webhook_timeout: float = Field(default=10.0, gt=0, le=300)
    # Imports (docs/imports.md): the largest file one may upload, and whether a source
    # the server fetches (an API, a database) may be at a loopback, private or
    # link-local address (the CLI's imports may always: their operator runs them).
    import_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    import_allow_private: bool = False
    # How long an expired link answers 410 before it is retired (404; its code is
    # never reused): docs/jobs.md.
    expired_link_grace: float = Field(default=30 * 86_400.0, ge=0)
    # Count clicks (kurz.analytics): each redirect queues an event, recorded in batches
    # (docs/analytics.md). With KURZ_REDIS_URL, through a Redis Stream to the workers.
    analytics: bool = True
    # Click events held in memory at most; past that, new ones are dropped and counted.
    analytics_queue_size: int = Field(default=100_000, ge=100)
    # Scaled out: how long a batch read from the click stream may stay unacknowledged
    # before another worker takes it over, its reader presumed dead.
    analytics_claim_idle: float = Field(default=30.0, gt=0)
    # Where visitors are, for click statistics' countries (kurz.geo): "shipped", the
    # IP-to-country data installed with kurz (works offline), or "off".
    geoip: Literal["shipped", "off"] = "shipped"
    # A MaxMind DB file (GeoLite2 or DB-IP, Country or City) used instead of the
    # shipped data: countries, and cities where it has them.
    geoip_db: str = ""
    # A header in which a proxy in front of kurz names the visitor's country (e.g.
    # CF-IPCountry); believed only from KURZ_TRUSTED_PROXIES, and then over the data.
    geoip_header: str = Field(default="", pattern=r"^[A-Za-z0-9-]*$", max_length=64)
    # How long raw click events are kept (the rollups are kept for good).
    analytics_retention: float = Field(default=30 * 86_400.0, ge=3_600.0)
    # Journal each click to a memory-mapped file before its redirect is answered, so
    # that a killed process loses none (docs/decisions/0014-durable-clicks.md).
    click_journal: bool = True
    # Where the journals go; empty: beside a SQLite database (kurz.db-clicks), or
    # kurz-clicks-<uid> in the temporary directory. Processes that share a database
    # on one host should share it: each replays the journals of those that died.
    click_journal_dir: str = ""
    # Log every request (uvicorn.access), as a line of the log below.
    access_log: bool = False
    # kurz's and uvicorn's loggers; other libraries log at warning or above (kurz.logs).
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # "text": time, level, logger, request id, message; "json": one object a line.
    log_format: Literal["text", "json"] = "text"

    @field_validator("webhook_key")
    @classmethod
    def _long_key(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("KURZ_WEBHOOK_KEY must be at least 32 characters (or empty)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # pydantic-settings warns about a secrets directory that does not exist, which
        # is the usual case outside a container: it is skipped without a word.
        sources = (init_settings, env_settings, dotenv_settings)
        if isinstance(file_secret_settings, SecretsSettingsSource):
            given = file_secret_settings.secrets_dir
            dirs = [given] if isinstance(given, str | Path) else list(given or ())
            if any(Path(d).expanduser().is_dir() for d in dirs):
                return (*sources, file_secret_settings)
        return sources

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value:
            return value
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("KURZ_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator(
        "ratelimit_api",
        "ratelimit_redirect",
        "ratelimit_auth_fail",
        "ratelimit_signin_ip",
        "ratelimit_signin_account",
        "ratelimit_link_password",
    )
    @classmethod
    def _valid_policy(cls, value: str) -> str:
        parse_policy("check", value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("KURZ_REDIS_URL must be a redis:// or rediss:// URL")
        return value

    @field_validator("geoip_db")
    @classmethod
    def _geoip_source(cls, value: str, info: ValidationInfo) -> str:
        # Either would be a guess at what the operator meant.
        if value and info.data.get("geoip") == "off":
            raise ValueError("names a file while KURZ_GEOIP is off: unset one of them")
        return value

    @field_validator("cache_nodes", mode="before")
    @classmethod
    def _node_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, tuple | list):
            for url in value:
                parse_node(str(url))
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
        for origin in value if isinstance(value, tuple | list) else ():
            parts = urlsplit(str(origin))
            if not parts.scheme or not parts.netloc or parts.path or parts.query:
                raise ValueError(
                    f"KURZ_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])"
                )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(ip_network(part.strip()) for part in value.split(",") if part.strip())
        return value

    def policy(self, name: str) -> Policy | None:
        """The named rate-limit policy (api, redirect, auth_fail, signin_ip,
        signin_account, link_password), or None when off."""
        spec: str = getattr(self, f"ratelimit_{name}")
        return parse_policy(name.replace("_", "-"), spec)

    @field_validator("root_redirect", "not_found_redirect", "expired_redirect", "used_up_redirect")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname or not value.isascii():
            raise ValueError("must be an absolute http(s) URL in ASCII, e.g. https://example.com/")
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
        if not self.database_url:
            database = Path(self.data_dir) / "kurz.db"
            # As written (./var/kurz.db): relative paths stay relative to where kurz runs.
            path = database.as_posix() if database.is_absolute() else f"./{database.as_posix()}"
            object.__setattr__(self, "database_url", f"sqlite:///{path}")
        if not self.base_url and self.host.strip() in _UNSPECIFIED_HOSTS:
            raise ValueError(
                f"KURZ_HOST={self.host} listens on every address, so short URLs would be "
                f"http://{self.host}:{self.port}/...: set KURZ_BASE_URL to the public origin "
                "(e.g. https://s.example)"
            )
        if not self.base_url:
            host = f"[{self.host}]" if ":" in self.host else self.host
            object.__setattr__(self, "base_url", f"http://{host}:{self.port}")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def runs_embedded_worker(self) -> bool:
        return self.is_sqlite if self.embedded_worker is None else self.embedded_worker


def setting_names() -> frozenset[str]:
    """Every variable that sets something: KURZ_ and a field's name, in capitals."""
    return frozenset(f"KURZ_{name.upper()}" for name in Settings.model_fields)


def unknown_variables(environ: Mapping[str, str], env_file: str | Path = ENV_FILE) -> list[str]:
    """Warnings for KURZ_* variables, in the environment or .env, that set nothing
    (a misspelt one is otherwise ignored in silence), each naming the closest setting."""
    names = set(environ)
    if Path(env_file).is_file():
        names |= set(dotenv_values(env_file))
    known = setting_names()
    warnings = []
    for name in sorted(names):
        upper = name.upper()
        if (
            not upper.startswith("KURZ_")
            or upper in known
            or upper in _NOT_SETTINGS
            or upper.startswith(_NOT_SETTINGS_PREFIXES)
        ):
            continue
        close = difflib.get_close_matches(upper, sorted(known | _NOT_SETTINGS), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not a kurz setting{hint}")
    return warnings
