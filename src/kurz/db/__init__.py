"""Storage: the engine, the schema and its migrations."""

from kurz.db.engine import Database, create_engine
from kurz.db.migrate import SchemaNotReady, ensure_schema, upgrade

__all__ = ["Database", "SchemaNotReady", "create_engine", "ensure_schema", "upgrade"]
