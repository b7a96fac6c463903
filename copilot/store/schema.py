"""The store's tables as SQLAlchemy Core objects, for queries (the DDL lives in the migrations).

Types that differ between the databases are :class:`sqlalchemy.types.TypeDecorator`\\ s with
one Python face: timestamps are timezone-aware ``datetime``\\ s (``TIMESTAMPTZ`` on
PostgreSQL, ISO-8601 text on SQLite, as 0.1.0 wrote them), JSON documents are Python
values (``JSONB`` on PostgreSQL, text on SQLite). The migrations in
``copilot/store/migrations/versions`` create exactly these columns; a test compares them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

RATINGS = ("up", "down")


class UtcTimestamp(TypeDecorator[dt.datetime]):
    """A timezone-aware instant: ``TIMESTAMPTZ`` on PostgreSQL, ISO-8601 text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return value.isoformat() if isinstance(value, dt.datetime) else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        return value


class JsonDocument(TypeDecorator[Any]):
    """A JSON value: ``JSONB`` on PostgreSQL, text on SQLite; values that JSON cannot hold are
    stored as their ``str()`` (as 0.1.0 did)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, default=str)
        return text if dialect.name != "postgresql" else json.loads(text)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value


def _serial() -> Column[int]:
    """An auto-numbered primary key: the insertion order (``ORDER BY seq``)."""
    return Column(
        "seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


metadata = MetaData()

drafts = Table(
    "drafts",
    metadata,
    _serial(),
    Column("id", Text, nullable=False, unique=True),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("language", Text),
    Column("verdict", Text),
    Column("blocked", Boolean, nullable=False),
    Column("abstained", Boolean, nullable=False),
    Column("backend", Text),
    Column("model", Text),
    Column("prompt_version", Text),
    Column("kb_version", Text),
    Column("latency_ms", Float),
    Column("customer_message", Text, nullable=False),
    Column("draft", Text, nullable=False),
    Column("result", JsonDocument, nullable=False),
    Column("request", JsonDocument, nullable=False),
    # revision 0002
    Column("prompt_sha256", Text),
    Column("origin", Text),  # ui, cli, library
    Column("agent", Text),
    Index("drafts_created_at", "created_at"),
    sqlite_autoincrement=True,
)

feedback = Table(
    "feedback",
    metadata,
    _serial(),
    Column("id", Text, nullable=False, unique=True),
    Column("draft_id", Text, ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("rating", Text, nullable=False),
    Column("final_text", Text),
    Column("edited", Boolean, nullable=False),
    Column("note", Text),
    Column("agent", Text),
    CheckConstraint("rating IN ('up', 'down')"),
    Index("feedback_draft_id", "draft_id"),
    sqlite_autoincrement=True,
)

sent_replies = Table(
    "sent_replies",
    metadata,
    _serial(),
    Column("id", Text, nullable=False, unique=True),
    Column("draft_id", Text, ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("final_text", Text, nullable=False),
    Column("edited", Boolean, nullable=False),
    Column("verdict", Text, nullable=False),
    Column("rules", Text),
    Column("override_reason", Text),
    Column("agent", Text),
    # revision 0002
    Column("edit_distance", Integer),
    Index("sent_replies_draft_id", "draft_id"),
    sqlite_autoincrement=True,
)

# ---- revision 0002: the agent workspace ------------------------------------------------------
ratings = Table(
    "ratings",
    metadata,
    _serial(),
    Column("id", Text, nullable=False, unique=True),
    Column("draft_id", Text, ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False),
    Column("agent", Text, nullable=False),  # '' when the agent gave no name
    Column("rating", Text, nullable=False),
    Column("reason", Text),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    CheckConstraint("rating IN ('up', 'down')", name="ratings_rating"),
    UniqueConstraint("draft_id", "agent", name="ratings_draft_agent"),
    sqlite_autoincrement=True,
)

agent_settings = Table(
    "agent_settings",
    metadata,
    Column("agent", Text, primary_key=True),
    Column("display_name", Text),
    Column("ui_language", Text),
    Column("signatures", JsonDocument, nullable=False),  # {"en": "...", "ja": "...", ...}
    Column("updated_at", UtcTimestamp, nullable=False),
)

ticket_states = Table(
    "ticket_states",
    metadata,
    Column("draft_id", Text, ForeignKey("drafts.id", ondelete="CASCADE"), primary_key=True),
    Column("state", JsonDocument, nullable=False),
    Column("agent", Text),
    Column("updated_at", UtcTimestamp, nullable=False),
)

# ---- revision 0003: escalations ----------------------------------------------------------------
escalations = Table(
    "escalations",
    metadata,
    _serial(),
    Column("id", Text, nullable=False, unique=True),
    Column("draft_id", Text, ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("agent", Text),
    Column("note", Text, nullable=False),  # the internal hand-over note (masked)
    Index("escalations_draft_id", "draft_id"),
    sqlite_autoincrement=True,
)
