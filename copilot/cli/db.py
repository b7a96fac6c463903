"""``copilot db``: the database schema for operators: ``db current`` shows where it stands,
``db upgrade`` applies the pending Alembic revisions (a store also does this on first use).

The database is ``COPILOT_DATABASE_URL`` (default: SQLite in the data folder) or ``--url``;
its password is never printed. ``current`` reads only; exit 0 when up to date, 1 when
revisions are pending.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = "Show (db current) or upgrade (db upgrade) the database schema; Alembic revisions."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument("action", choices=("current", "upgrade"), help="current or upgrade")
    parser.add_argument("--url", help="database URL (default: COPILOT_DATABASE_URL)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Report or upgrade the schema."""
    from copilot.settings import get_settings
    from copilot.store import SqlStore

    store = SqlStore.from_url(args.url or get_settings().database)
    try:
        if args.action == "upgrade":
            legacy = store.status().legacy
            before, after = store.upgrade()
            out: dict[str, Any] = {
                "database": store.where,
                "before": before,
                "revision": after,
                "changed": before != after,
            }
            text = (
                f"{store.where}: upgraded from {_origin(before, legacy)} to revision {after}"
                if before != after
                else f"{store.where}: already at the newest revision {after}"
            )
            code = 0
        else:
            status = store.status()
            out = {
                "database": store.where,
                "revision": status.current,
                "head": status.head,
                "up_to_date": status.up_to_date,
                "pending": list(status.pending),
                "legacy_schema_migrations": list(status.legacy),
            }
            text = _describe(store.where, status)
            code = 0 if status.up_to_date else 1
    finally:
        store.close()
    print(json.dumps(out, ensure_ascii=False, indent=2) if args.json else text)
    return code


def _origin(before: str | None, legacy: tuple[int, ...]) -> str:
    if before is not None:
        return f"revision {before}"
    if legacy:
        return "the 0.1.0 schema (schema_migrations " + ", ".join(map(str, legacy)) + ")"
    return "an empty database"


def _describe(where: str, status: Any) -> str:
    if status.up_to_date:
        return f"{where}: revision {status.current} (the newest)"
    if status.current is None and status.legacy:
        state = (
            "made by 0.1.0 (schema_migrations "
            + ", ".join(str(v) for v in status.legacy)
            + "); `copilot db upgrade` adopts it, keeping every row"
        )
    elif status.current is None:
        state = "no schema yet; `copilot db upgrade` (or the first use) creates it"
    else:
        state = f"revision {status.current}; `copilot db upgrade` applies the rest"
    lines = [f"{where}: {state}", "pending:"]
    lines += [f"  {p}" for p in status.pending]
    return "\n".join(lines)
