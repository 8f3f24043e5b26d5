"""Storage: the engine, the schema and its migrations."""

from kurz.db.engine import (
    READ_COMMITTED,
    REPEATABLE_READ,
    SERIALIZABLE,
    Database,
    DatabaseBusy,
    DatabaseUnavailable,
    Isolation,
    create_engine,
    custom_plans,
)
from kurz.db.migrate import SchemaNotReady, ensure_schema, upgrade

__all__ = [
    "READ_COMMITTED",
    "REPEATABLE_READ",
    "SERIALIZABLE",
    "Database",
    "DatabaseBusy",
    "DatabaseUnavailable",
    "Isolation",
    "SchemaNotReady",
    "create_engine",
    "custom_plans",
    "ensure_schema",
    "upgrade",
]
