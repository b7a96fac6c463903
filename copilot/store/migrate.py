"""Schema migrations with Alembic: the revisions in ``copilot/store/migrations``, run in-process.

:func:`upgrade` brings a database to the newest revision in one transaction that first takes
a lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so several processes
starting at once migrate it exactly once. A store runs it on its first use;
``python -m copilot db upgrade`` runs it on purpose and ``db current`` reports where a
database stands. A database made by 0.1.0 (``schema_migrations`` 1 and 2, no
``alembic_version``) is adopted by revision 0001 with its rows untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from copilot.errors import CopilotError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PG_LOCK_ID = 0x5C0_917  # advisory lock key serialising migrations across processes
# The newest revision in migrations/versions (a test checks it against Alembic's own view).
# Kept here so that a store on an up-to-date database never loads Alembic.
HEAD = "0003"


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands: its revision, the newest one, and what upgrading would do."""

    current: str | None
    head: str
    pending: tuple[str, ...]  # "0002 what the agent workspace needs ...", oldest first
    legacy: tuple[int, ...]  # 0.1.0's schema_migrations versions, when it made the database

    @property
    def up_to_date(self) -> bool:
        """True when nothing is left to apply."""
        return self.current == self.head


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this copilot knows."""
    return HEAD


def script_head() -> str | None:
    """The newest revision as Alembic finds it in ``migrations/versions``."""
    return _script().get_current_head()


def revision_number(revision: str | None) -> int:
    """``"0002"`` -> 2 (0 for an empty database)."""
    return int(revision) if revision else 0


def current(conn: Connection) -> str | None:
    """The revision recorded in the database (None when Alembic never ran on it)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    if len(rows) > 1:
        raise CopilotError(
            f"the database records {len(rows)} schema revisions in alembic_version "
            "(branches are not used here); fix the table by hand"
        )
    return str(rows[0][0]) if rows else None


def status(conn: Connection) -> SchemaStatus:
    """Where the database on ``conn`` stands; reads only."""
    found = current(conn)
    script = _script()
    known = {rev.revision for rev in script.walk_revisions()}
    if found is not None and found not in known:
        raise newer_than_known(found)
    pending = [
        rev
        for rev in script.walk_revisions(base="base", head="heads")
        if found is None or rev.revision not in _applied(script, found)
    ]
    legacy: tuple[int, ...] = ()
    if found is None and inspect(conn).has_table("schema_migrations"):
        rows = conn.execute(text("SELECT version FROM schema_migrations ORDER BY version"))
        legacy = tuple(int(r[0]) for r in rows)
    return SchemaStatus(
        current=found,
        head=head(),
        pending=tuple(
            f"{rev.revision} {' '.join((rev.doc or '').split(chr(10) * 2)[0].split())}"
            for rev in reversed(pending)
        ),
        legacy=legacy,
    )


def _applied(script: ScriptDirectory, revision: str) -> set[str]:
    return {rev.revision for rev in script.iterate_revisions(revision, "base")}


def newer_than_known(revision: str) -> CopilotError:
    """The error for a database migrated by a newer copilot than this one."""
    return CopilotError(
        f"the database is at schema revision {revision}, newer than this copilot knows "
        f"(newest here: {head()}); upgrade the copilot on this machine (replicas sharing a "
        "database must run the same version)"
    )


def upgrade(conn: Connection) -> tuple[str | None, str]:
    """Migrate the database on ``conn`` to :func:`head`; returns (revision before, after).

    ``conn`` must be inside a transaction (the caller commits). The lock is taken first, then
    the revision is read again, so a process that waited finds the work done.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_ID})
    before = current(conn)
    target = head()
    if before == target:
        return before, target
    if before is not None and before not in {r.revision for r in _script().walk_revisions()}:
        raise newer_than_known(before)
    from alembic import command

    config = _config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    return before, target
