"""Who a request acts as: API keys with scopes, and the checks every call runs."""

from kurz.auth.models import (
    SCOPES,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    Principal,
    Scope,
    scopes_for,
)

__all__ = [
    "SCOPES",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyRead",
    "Principal",
    "Scope",
    "scopes_for",
]
