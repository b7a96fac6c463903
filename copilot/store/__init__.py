"""The store: drafts and what agents did with them, in SQLite or PostgreSQL (SQLAlchemy 2,
Alembic migrations). ``SqlStore.from_url(settings.database)``; see :mod:`copilot.store.sql`."""

from copilot.secrets import redact_url
from copilot.store.base import RATINGS, Store
from copilot.store.sql import SqlStore

__all__ = ["RATINGS", "SqlStore", "Store", "redact_url"]
