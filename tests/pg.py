"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temp dir on loopback.

Uses the server binaries of the Debian ``postgresql`` package
(``/usr/lib/postgresql/<major>/bin``) or ``$PG_BIN``. PostgreSQL refuses to run
as root, so under root the commands run as the ``postgres`` system user (made by
the Debian package) via ``runuser``. The cluster trusts local connections,
listens on 127.0.0.1 on a free port and on a unix socket in its own folder, and
is removed afterwards. Nothing touches the system cluster.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SERVICE_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest major version first; None if absent."""
    env = os.environ.get("PG_BIN")
    candidates = [Path(env)] if env else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def unavailable_reason() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    if find_bin_dir() is None:
        return (
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
            "install them with `apt-get install -y postgresql` or set PG_BIN"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], as_root: bool) -> subprocess.CompletedProcess[str]:
    if as_root:
        cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private server and yield its URL (``postgresql://postgres@127.0.0.1:PORT/postgres``)."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    as_root = os.geteuid() == 0
    # Not under pytest's tmp dir: that is mode 0700 and owned by root, out of reach of `postgres`.
    base = Path(tempfile.mkdtemp(prefix="copilot-pg-"))
    data, sock, log = base / "data", base / "sock", base / "server.log"
    sock.mkdir()
    if as_root:
        user = pwd.getpwnam(SERVICE_USER)
        for path in (base, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = _free_port()
    started = False
    try:
        done = _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            as_root,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sock} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        done = _run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
             "-w", "-t", "60", "start"],
            as_root,
        )  # fmt: skip
        if done.returncode != 0:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{text}")
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], as_root
            )
        shutil.rmtree(base, ignore_errors=True)
