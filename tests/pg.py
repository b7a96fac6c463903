"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temp dir on loopback.

``scripts/check.sh`` starts one for the whole run and exports ``TEST_PG_URL``
(tests make their own databases on it); without it a session starts its own with
:func:`copilot.bench.servers.postgres_server` (the Debian ``postgresql`` server binaries, or
``$PG_BIN``; under root as the ``postgres`` user). Nothing touches the system cluster.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from copilot.bench import servers
from copilot.bench.servers import SERVICE_USER

ENV = "TEST_PG_URL"
__all__ = ["ENV", "SERVICE_USER", "find_bin_dir", "postgres_server", "unavailable_reason"]


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest major version first; None if absent."""
    return servers.find_pg_bin_dir()


def unavailable_reason() -> str | None:
    """Why a server cannot be had here, or None when it can."""
    return None if os.environ.get(ENV) else servers.postgres_unavailable()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a server (``postgresql://postgres@127.0.0.1:PORT/postgres``): the one
    ``check.sh`` started, else a private one for this session."""
    shared = os.environ.get(ENV)
    if shared:
        yield shared
        return
    with servers.postgres_server() as url:
        yield url
