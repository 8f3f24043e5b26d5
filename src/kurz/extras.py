"""kurz's optional parts, each an extra of the package (pyproject.toml): PostgreSQL
(asyncpg), Redis (redis, hiredis) and the gRPC API. Each is imported only where a
setting asks for it, so that kurz on SQLite with gRPC off loads none of them."""

from __future__ import annotations

import functools
import importlib


class MissingExtra(RuntimeError):
    """A setting needs an extra that is not installed; the message says which."""


def need(module: str, *, extra: str, because: str) -> None:
    """Import `module`, or say in one line which extra to install: `because` names the
    setting that needs it (`KURZ_DATABASE_URL is PostgreSQL`)."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{because}: install kurz[{extra}]") from None


@functools.cache
def redis_error() -> type[Exception]:
    """redis.exceptions.RedisError, looked up when an except clause first needs it (the
    clause's expression runs only once something was raised)."""
    from redis.exceptions import RedisError

    return RedisError
