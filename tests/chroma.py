"""A throwaway ``chroma run`` server for tests, on loopback (the twin of ``tests/pg.py``).

``scripts/check.sh`` starts one for the whole run and exports ``TEST_CHROMA_URL``;
without it each session starts its own (the ``chroma`` command ships with the chromadb
package in the virtualenv). Tests sharing a server use their own collection names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from copilot.bench.servers import ChromaServer

ENV = "TEST_CHROMA_URL"


@contextlib.contextmanager
def chroma_server() -> Iterator[str]:
    """The URL of a Chroma server: the one ``check.sh`` started, else a private one."""
    import os

    shared = os.environ.get(ENV)
    if shared:
        yield shared
        return
    with ChromaServer() as server:
        yield server.url
