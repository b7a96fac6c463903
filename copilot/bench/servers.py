"""Throwaway servers on loopback for benchmarks and integration tests: ``chroma run`` and a
private PostgreSQL cluster (``initdb`` + ``pg_ctl`` in a temporary folder).

PostgreSQL uses the server binaries of the Debian ``postgresql`` package
(``/usr/lib/postgresql/<major>/bin``) or ``$PG_BIN``. It refuses to run as root, so under
root the commands run as the ``postgres`` system user (made by the Debian package) via
``runuser``. The cluster trusts local connections, listens on 127.0.0.1 on a free port and
on a unix socket in its own folder, and is removed afterwards; nothing touches the system
cluster. ``chroma run`` is the command the chromadb package installs beside Python.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

SERVICE_USER = "postgres"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


class ChromaServer:
    """``chroma run`` on 127.0.0.1 with its own data folder, as a context manager."""

    def __init__(self, path: Path | None = None, *, ready_timeout_s: float = 60.0) -> None:
        self.path = path
        self.ready_timeout_s = ready_timeout_s
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp: str | None = None

    @property
    def url(self) -> str:
        """The server's URL, e.g. ``http://127.0.0.1:8000``."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ChromaServer:
        chroma = Path(sys.executable).parent / "chroma"
        if not chroma.is_file():
            found = shutil.which("chroma")
            if found is None:
                raise RuntimeError("the `chroma` command is missing (pip install chromadb)")
            chroma = Path(found)
        if self.path is None:
            self._tmp = tempfile.mkdtemp(prefix="copilot-chroma-")
            self.path = Path(self._tmp)
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )  # fmt: skip
        try:
            _wait_for_port(self.port, self.process, self.ready_timeout_s, "chroma run")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stop_process(self.process)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def stop_process(process: subprocess.Popen[Any] | None) -> None:
    """Terminate a server this bench started, and kill it when it does not stop in 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# ---- PostgreSQL -----------------------------------------------------------------------
def find_pg_bin_dir() -> Path | None:
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


def postgres_unavailable() -> str | None:
    """Why a private PostgreSQL server cannot be started here, or None when it can."""
    if find_pg_bin_dir() is None:
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


def _run(cmd: list[str], as_root: bool) -> subprocess.CompletedProcess[str]:
    if as_root:
        cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private server and yield its URL (``postgresql://postgres@127.0.0.1:PORT/postgres``)."""
    reason = postgres_unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    bin_dir = find_pg_bin_dir()
    assert bin_dir is not None
    as_root = os.geteuid() == 0
    # Not under a 0700 root-owned temp dir: out of reach of the `postgres` user.
    base = Path(tempfile.mkdtemp(prefix="copilot-pg-"))
    data, sock, log = base / "data", base / "sock", base / "server.log"
    sock.mkdir()
    if as_root:
        user = pwd.getpwnam(SERVICE_USER)
        for path in (base, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
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
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
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
