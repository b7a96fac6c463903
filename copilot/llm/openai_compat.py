"""The ``openai`` backend: any OpenAI-compatible chat endpoint through the ``openai`` SDK.

Works with OpenAI itself, Azure's OpenAI-compatible endpoint, vLLM, Ollama,
LM Studio and llama.cpp's server (``COPILOT_LLM_BASE_URL``). The SDK's own
retries are off; this module retries 429, 5xx, timeouts, refused connections and
replies cut short with exponential backoff (honouring ``Retry-After``) as long as the
deadline allows, and turns every failure into a :class:`BackendError` that says what
happened and what to check (never a password or key: see :mod:`copilot.secrets`).

Limits, end to end:

* one **deadline** per draft (``COPILOT_LLM_DEADLINE_S``) across retries, re-drafts and
  the judge: the pipeline opens a :func:`copilot.llm.deadline.deadline` scope and every call
  inside it shares the end time; outside a scope each call has a deadline of that length;
* each **request** may take ``COPILOT_LLM_TIMEOUT_S`` from sending to the last byte
  (a waiting thread enforces it, so a server that trickles bytes cannot stretch it);
* at most ``COPILOT_LLM_MAX_RESPONSE_BYTES`` are read: the body is read in pieces and cut
  at the limit, so an oversized reply is an error, not 30 MB in memory and in the guardrail.

The client is built in :meth:`OpenAIBackend.from_settings`, never at import time.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from copilot.errors import BackendError, SettingsError
from copilot.llm import deadline as llm_deadline
from copilot.llm.base import Completion, Message
from copilot.secrets import redact_url
from copilot.settings import Settings

T = TypeVar("T")
_OPENAI_MODEL_PREFIXES = ("gpt-", "gpt4", "o1", "o3", "o4", "chatgpt-", "text-", "davinci")
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
SLACK_S = 1.0  # the HTTP client's own timeout fires this much after ours, as a backstop


def is_openai_model(model: str) -> bool:
    """True for model names that OpenAI's own API serves (gpt-4o-mini, o3, ...)."""
    return model.lower().startswith(_OPENAI_MODEL_PREFIXES)


class _Retryable(Exception):
    """An attempt failed in a way worth retrying; ``error`` is what to raise if we give up."""

    def __init__(self, error: BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _Cut(Exception):
    """The connection ended before the reply did; the message says where."""


@dataclass
class _Budget:
    """The time one attempt may take, which limit set it, and how far the reply got."""

    seconds: float
    by_deadline: bool  # True: the draft's deadline is nearer than the request timeout
    replied: bool = False  # the status line and headers arrived
    received: int = 0  # bytes of the body read so far


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible endpoint, with timeouts, retries and limits."""

    name = "openai"

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        base_url: str,
        timeout_s: float = 30.0,
        deadline_s: float = 90.0,
        max_retries: int = 3,
        max_response_bytes: int = 1_000_000,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.model = model
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_retries = max_retries
        self.max_response_bytes = max_response_bytes
        self.sleep = sleep
        self.clock = clock

    @property
    def where(self) -> str:
        """The endpoint for messages, without credentials."""
        return redact_url(self.base_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIBackend:
        """Build the client from settings; a missing base URL or key is a clear error."""
        base_url = settings.llm_base_url
        key = settings.openai_api_key
        if base_url is None:
            if not is_openai_model(settings.llm_model):
                raise SettingsError(
                    f"COPILOT_LLM_BASE_URL is not set, and {settings.llm_model!r} is not an OpenAI "
                    "model: set COPILOT_LLM_BASE_URL to your server's OpenAI-compatible URL, "
                    "e.g. http://127.0.0.1:8080/v1"
                )
            if not key:
                raise SettingsError(
                    "OPENAI_API_KEY is not set: set it to use OpenAI, or set "
                    "COPILOT_LLM_BASE_URL to a local OpenAI-compatible server"
                )
        from openai import OpenAI

        client = OpenAI(
            api_key=key or "not-needed",  # local servers ignore the key but the SDK wants one
            base_url=base_url,
            max_retries=0,
            timeout=settings.llm_timeout_s + SLACK_S,
        )
        return cls(
            client,
            settings.llm_model,
            base_url=base_url or "https://api.openai.com/v1",
            timeout_s=settings.llm_timeout_s,
            deadline_s=settings.llm_deadline_s,
            max_retries=settings.llm_max_retries,
            max_response_bytes=settings.llm_max_response_bytes,
        )

    # ---- the Backend interface ------------------------------------------
    def complete(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Completion:
        """The whole answer, retried on transient failures within the deadline."""
        started = self.clock()
        request = self._request(messages, temperature, max_tokens)

        def attempt(budget: _Budget) -> bytes:
            with self.client.chat.completions.with_streaming_response.create(
                **request, timeout=budget.seconds + SLACK_S
            ) as response:
                budget.replied = True
                return self._read_body(response, budget)

        body, attempts = self._with_retries(attempt)
        data = self._json(body)
        choice, message = self._choice(data)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Completion(
            text=str(message.get("content") or ""),
            model=str(data.get("model") or self.model),
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            latency_ms=round((self.clock() - started) * 1000, 3),
            meta={"attempts": str(attempts), "finish_reason": str(choice.get("finish_reason"))},
        )

    def stream(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Iterator[str]:
        """Yield the answer in pieces; retries happen only before the first piece arrives.

        The deadline and the size limit hold while the pieces arrive too (checked as each
        piece of the body comes in).
        """
        request = {**self._request(messages, temperature, max_tokens), "stream": True}
        ends_at = self._ends_at(self.clock())

        def attempt(budget: _Budget) -> tuple[Any, Any]:
            manager = self.client.chat.completions.with_streaming_response.create(
                **request,
                timeout=budget.seconds,  # each wait for a byte, here in this thread
            )
            return manager, manager.__enter__()

        (manager, response), _ = self._with_retries(attempt, hard=False)
        try:
            yield from self._events(response, ends_at)
        except BackendError:
            raise
        except Exception as exc:  # cut short, or the HTTP client's own errors mid-stream
            failure = self._translate(exc, _Budget(self.timeout_s, False), 1)
            raise (failure.error if isinstance(failure, _Retryable) else failure) from None
        finally:
            manager.__exit__(None, None, None)

    # ---- reading replies -------------------------------------------------
    def _request(
        self, messages: list[Message], temperature: float, max_tokens: int
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
        }

    def _chunks(self, response: Any, budget: _Budget | None = None) -> Iterator[bytes]:
        """The body in pieces, cut at the size limit; a connection that ends early is _Cut."""
        received = 0
        try:
            for piece in response.iter_bytes():
                received += len(piece)
                if budget is not None:
                    budget.received = received
                if received > self.max_response_bytes:
                    raise BackendError(
                        f"the LLM endpoint {self.where} sent more than "
                        f"{self.max_response_bytes:,} bytes; the reply was cut there and "
                        "discarded (COPILOT_LLM_MAX_RESPONSE_BYTES)"
                    )
                yield piece
        except BackendError:
            raise
        except Exception as exc:
            if _is(exc, "RemoteProtocolError", "ReadError", "StreamError", "DecodingError"):
                raise _Cut(f"after {received:,} bytes of the reply") from exc
            raise

    def _read_body(self, response: Any, budget: _Budget) -> bytes:
        return b"".join(self._chunks(response, budget))

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            shown = body[:80].decode("utf-8", "replace")
            raise BackendError(
                f"the LLM endpoint {self.where} sent a reply that is not valid JSON "
                f"({exc}; it starts {shown!r})"
            ) from None

    def _events(self, response: Any, ends_at: float) -> Iterator[str]:
        """Content pieces from a server-sent-events body (``data: {...}`` ... ``data: [DONE]``).

        A server that ignores ``stream`` and sends one JSON completion is read as one piece.
        """
        chunks = self._timed(self._chunks(response), ends_at)
        head = b""
        for chunk in chunks:
            head += chunk
            if head.strip():
                break
        if head.lstrip()[:1] == b"{":  # not an event stream: one JSON completion
            yield self._choice_text(self._json(head + b"".join(chunks)))
            return
        buffer, data = head, []
        choices_seen = 0
        finished = False
        for chunk in itertools.chain([b""], chunks):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                line = line.rstrip(b"\r")
                if line.startswith(b"data:"):
                    data.append(line[5:].strip())
                    continue
                if line or not data:
                    continue  # comments, other fields, blank lines between events
                payload, data = b"\n".join(data), []
                if payload == b"[DONE]":
                    if not choices_seen:
                        raise self._no_message("no choices")
                    return
                event = self._json(payload)
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    raise BackendError(
                        f"the LLM endpoint {self.where} reported an error mid-reply: "
                        f"{_message(event['error'])}"
                    )
                choices = event.get("choices")
                for choice in choices if isinstance(choices, list) else []:
                    if isinstance(choice, dict):
                        choices_seen += 1
                        finished = finished or bool(choice.get("finish_reason"))
                        delta = choice.get("delta")
                        piece = delta.get("content") if isinstance(delta, dict) else None
                        if piece:
                            yield str(piece)
        if not finished:
            raise _Cut("the stream ended before the reply did (no finish_reason, no [DONE])")

    def _timed(self, chunks: Iterator[bytes], ends_at: float) -> Iterator[bytes]:
        for chunk in chunks:
            if self.clock() > ends_at:
                raise BackendError(
                    f"the LLM endpoint {self.where} was still sending when "
                    f"{self._deadline_text()} ran out"
                )
            yield chunk

    def _no_message(self, why: str) -> BackendError:
        return BackendError(
            f"the LLM endpoint {self.where} sent a response without a message ({why})"
        )

    def _choice(self, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first choice of a chat completion and its message (clear errors otherwise)."""
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._no_message("no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise self._no_message("choices[0] has no message")
        return choices[0], message

    def _choice_text(self, data: Any) -> str:
        return str(self._choice(data)[1].get("content") or "")

    # ---- time ------------------------------------------------------------------
    def _ends_at(self, started: float) -> float:
        """When this call must be done: its own deadline, or the draft's when that is sooner."""
        own = started + self.deadline_s
        scope = llm_deadline.current()
        if scope is None:
            return own
        return min(own, started + scope.remaining())

    def _deadline_text(self) -> str:
        scope = llm_deadline.current()
        if scope is None:
            return f"the {self.deadline_s:g}s deadline (COPILOT_LLM_DEADLINE_S)"
        return f"the {scope.seconds:g}s deadline for this draft (COPILOT_LLM_DEADLINE_S)"

    def _run_within(self, call: Callable[[_Budget], T], budget: _Budget) -> T:
        """``call(budget)`` in a worker thread that is given up after ``budget.seconds``."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["value"] = call(budget)
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="copilot-llm-request", daemon=True).start()
        if not done.wait(max(0.0, budget.seconds)):
            raise _Waited(budget)
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value

    def _with_retries(self, call: Callable[[_Budget], T], *, hard: bool = True) -> tuple[T, int]:
        started = self.clock()
        ends_at = self._ends_at(started)
        attempts = 0
        while True:
            remaining = ends_at - self.clock()
            if remaining <= 0:
                raise BackendError(
                    f"the LLM endpoint {self.where} did not answer within "
                    f"{self._deadline_text()} after {attempts} attempt(s)"
                )
            budget = _Budget(min(self.timeout_s, remaining), remaining < self.timeout_s)
            attempts += 1
            scope = llm_deadline.current()
            if scope is not None:
                scope.requests += 1
            try:
                return (self._run_within(call, budget) if hard else call(budget)), attempts
            except Exception as exc:
                failure = self._translate(exc, budget, attempts)
            if isinstance(failure, BackendError):  # not worth retrying
                raise failure from None
            if attempts > self.max_retries:
                if attempts > 1:
                    raise BackendError(f"{failure.error} (gave up after {attempts} attempts)")
                raise failure.error from None
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempts - 1))
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, BACKOFF_MAX_S))
            remaining = ends_at - self.clock()
            if delay >= remaining:
                raise BackendError(
                    f"{failure.error} (no time left to retry within {self._deadline_text()}; "
                    f"{attempts} attempt(s))"
                ) from None
            self.sleep(delay)

    def _translate(
        self, exc: BaseException, budget: _Budget, attempts: int
    ) -> BackendError | _Retryable:
        """An exception as a clear error, wrapped in :class:`_Retryable` when transient."""
        import openai

        where = self.where
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, _Waited | openai.APITimeoutError) or _is(exc, "TimeoutException"):
            if budget.by_deadline:
                scope = llm_deadline.current()
                sent = (
                    f"{scope.requests} request(s) for this draft"
                    if scope is not None
                    else f"{attempts} attempt(s)"
                )
                return BackendError(
                    f"the LLM endpoint {where} did not answer within {self._deadline_text()} "
                    f"after {sent}"
                )
            if budget.replied:
                return _Retryable(
                    BackendError(
                        f"the LLM endpoint {where} started replying but did not finish within "
                        f"{self.timeout_s:g}s ({budget.received:,} bytes had arrived; "
                        "COPILOT_LLM_TIMEOUT_S)"
                    )
                )
            return _Retryable(
                BackendError(
                    f"the LLM endpoint {where} did not answer within {self.timeout_s:g}s "
                    "(COPILOT_LLM_TIMEOUT_S)"
                )
            )
        if isinstance(exc, _Cut):
            return _Retryable(
                BackendError(f"the LLM endpoint {where} closed the connection mid-reply ({exc})")
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = _innermost(exc)
            if _is(cause, "RemoteProtocolError", "ReadError") or "disconnected" in str(cause):
                return _Retryable(
                    BackendError(
                        f"the LLM endpoint {where} closed the connection without replying "
                        f"({_cause(exc)})"
                    )
                )
            return _Retryable(
                BackendError(
                    f"cannot reach the LLM endpoint {where} ({_cause(exc)}); is the server "
                    "running? (COPILOT_LLM_BASE_URL)"
                )
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = _short(exc)
            if status == 429 or status >= 500:
                return _Retryable(
                    BackendError(f"the LLM endpoint {where} answered {status}: {detail}"),
                    _retry_after(exc),
                )
            if status in (401, 403):
                return BackendError(
                    f"the LLM endpoint {where} refused the API key ({status}); check OPENAI_API_KEY"
                )
            if status == 404:
                return BackendError(
                    f"the LLM endpoint {where} answered 404 for model {self.model!r}: {detail} "
                    "(check COPILOT_LLM_MODEL and COPILOT_LLM_BASE_URL, which usually ends in /v1)"
                )
            return BackendError(f"the LLM endpoint {where} answered {status}: {detail}")
        if isinstance(exc, openai.OpenAIError):
            return BackendError(f"the LLM endpoint {where} failed: {exc}")
        return BackendError(f"the LLM call to {where} failed: {type(exc).__name__}: {exc}")


class _Waited(Exception):
    """The waiting thread gave up on an attempt after its time budget."""

    def __init__(self, budget: _Budget) -> None:
        super().__init__(f"no reply within {budget.seconds:g}s")
        self.budget = budget


def _is(exc: BaseException, *names: str) -> bool:
    """True when ``exc`` is an instance of a class with one of ``names`` (any HTTP library)."""
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _message(error: Any) -> str:
    found = error.get("message") if isinstance(error, dict) else None
    text = str(found or error)
    return text if len(text) <= 200 else text[:200] + "..."


def _short(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict) and body.get("message"):
        message = str(body["message"])
    else:
        message = str(getattr(exc, "message", "") or exc)
    return message if len(message) <= 200 else message[:200] + "..."


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


def _innermost(exc: BaseException) -> BaseException:
    inner: BaseException = exc
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    return inner


def _cause(exc: BaseException) -> str:
    """The innermost cause's message (e.g. "Connection refused"), else the error's own."""
    inner = _innermost(exc)
    text = str(inner).strip() or str(exc).strip()
    return text.rstrip(".") or type(inner).__name__
