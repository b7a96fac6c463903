"""Alembic's environment for the store: runs the revisions on the connection it is given.

:func:`copilot.store.migrate.upgrade` passes an open connection, already inside the
transaction that holds the migration lock, in ``config.attributes["connection"]``; every
revision then runs in that one transaction (all or nothing, on SQLite too). For
``alembic revision`` during development, ``sqlalchemy.url`` in the config is used instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from copilot.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:  # developer tooling: `alembic revision --autogenerate` with sqlalchemy.url set
    engine = create_engine(str(config.get_main_option("sqlalchemy.url")))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
