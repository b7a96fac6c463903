"""``python -m tests.servers ENV_FILE``: the integration tests' servers for a whole run.

Starts a ``chroma run`` server and, where the server binaries are installed, a private
PostgreSQL cluster, both on 127.0.0.1; writes ``export TEST_CHROMA_URL=...`` and
``export TEST_PG_URL=...`` to ENV_FILE once they listen (``scripts/check.sh`` sources it);
stops both and removes their data on SIGTERM or SIGINT, or when its parent process exits.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from copilot.bench.servers import ChromaServer, postgres_server, postgres_unavailable
from tests.chroma import ENV as CHROMA_ENV
from tests.pg import ENV as PG_ENV


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    """Start the servers, publish their URLs, wait to be stopped."""
    if len(argv) != 1:
        print("usage: python -m tests.servers ENV_FILE", file=sys.stderr)
        return 2
    env_file = Path(argv[0])
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    parent = os.getppid()
    with contextlib.ExitStack() as stack:
        chroma = stack.enter_context(ChromaServer())
        lines = [f"export {CHROMA_ENV}={shlex.quote(chroma.url)}"]
        reason = postgres_unavailable()
        if reason is None:
            url = stack.enter_context(postgres_server())
            lines.append(f"export {PG_ENV}={shlex.quote(url)}")
        else:
            lines.append(f"# PostgreSQL not started: {reason}")
        tmp = env_file.with_name(env_file.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(env_file)  # complete or absent: the reader never sees half of it
        print("test servers: " + "; ".join(lines), file=sys.stderr, flush=True)
        while os.getppid() == parent:
            time.sleep(1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
