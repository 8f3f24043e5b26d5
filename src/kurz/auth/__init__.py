"""API keys: stored hashed, resolved to the principal a request acts as."""

from kurz.auth.models import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Principal

__all__ = ["ApiKeyCreate", "ApiKeyCreated", "ApiKeyRead", "Principal"]
