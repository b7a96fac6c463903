"""The ``openai`` backend: any OpenAI-compatible chat endpoint through the ``openai`` SDK.

Works with OpenAI itself, Azure's OpenAI-compatible endpoint, vLLM, Ollama,
LM Studio and llama.cpp's server (``COPILOT_LLM_BASE_URL``). The SDK's own
retries are off; this module retries 429, 5xx, timeouts and refused
connections with exponential backoff (honouring ``Retry-After``) as long as the
overall deadline (``COPILOT_LLM_DEADLINE_S``) allows, and turns every failure
into a :class:`BackendError` that says what to check. The client is built in
:meth:`OpenAIBackend.from_settings`, never at import time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from copilot.errors import BackendError, SettingsError
from copilot.llm.base import Completion, Message
from copilot.settings import Settings

T = TypeVar("T")
_OPENAI_MODEL_PREFIXES = ("gpt-", "gpt4", "o1", "o3", "o4", "chatgpt-", "text-", "davinci")
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0


def is_openai_model(model: str) -> bool:
    """True for model names that OpenAI's own API serves (gpt-4o-mini, o3, ...)."""
    return model.lower().startswith(_OPENAI_MODEL_PREFIXES)


class _Retryable(Exception):
    """An attempt failed in a way worth retrying; ``error`` is what to raise if we give up."""

    def __init__(self, error: BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible endpoint, with timeouts, retries and a deadline."""

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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.model = model
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_retries = max_retries
        self.sleep = sleep
        self.clock = clock

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
            timeout=settings.llm_timeout_s,
        )
        return cls(
            client,
            settings.llm_model,
            base_url=base_url or "https://api.openai.com/v1",
            timeout_s=settings.llm_timeout_s,
            deadline_s=settings.llm_deadline_s,
            max_retries=settings.llm_max_retries,
        )

    # ---- the Backend interface ------------------------------------------
    def complete(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Completion:
        """The whole answer, retried on transient failures within the deadline."""
        started = self.clock()

        def attempt(timeout: float) -> Any:
            return self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in messages],
                temperature=temperature,
                max_tokens=max_tokens,
                timeout=timeout,
            )

        response, attempts = self._with_retries(attempt)
        try:
            choice = response.choices[0]
            text = choice.message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise BackendError(
                f"the LLM endpoint {self.base_url} sent a response without a message"
            ) from None
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            model=str(getattr(response, "model", None) or self.model),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_ms=round((self.clock() - started) * 1000, 3),
            meta={"attempts": str(attempts), "finish_reason": str(choice.finish_reason)},
        )

    def stream(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Iterator[str]:
        """Yield the answer in pieces; retries happen only before the first piece arrives."""

        def attempt(timeout: float) -> Any:
            return self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in messages],
                temperature=temperature,
                max_tokens=max_tokens,
                timeout=timeout,
                stream=True,
            )

        stream, _ = self._with_retries(attempt)
        try:
            for chunk in stream:
                if not chunk.choices:
                    continue
                piece = chunk.choices[0].delta.content
                if piece:
                    yield piece
        except Exception as exc:  # the SDK raises its own errors mid-stream
            failure = self._translate(exc, self.timeout_s)
            raise (failure.error if isinstance(failure, _Retryable) else failure) from None
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    # ---- retries ---------------------------------------------------------
    def _with_retries(self, call: Callable[[float], T]) -> tuple[T, int]:
        started = self.clock()
        attempts = 0
        while True:
            remaining = self.deadline_s - (self.clock() - started)
            if remaining <= 0:
                raise BackendError(
                    f"the LLM endpoint {self.base_url} did not answer within the "
                    f"{self.deadline_s:g}s deadline (COPILOT_LLM_DEADLINE_S) after "
                    f"{attempts} attempt(s)"
                )
            timeout = min(self.timeout_s, remaining)
            attempts += 1
            try:
                return call(timeout), attempts
            except Exception as exc:
                failure = self._translate(exc, timeout)
            if isinstance(failure, BackendError):  # not worth retrying
                raise failure from None
            if attempts > self.max_retries:
                if attempts > 1:
                    raise BackendError(f"{failure.error} (gave up after {attempts} attempts)")
                raise failure.error from None
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempts - 1))
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, BACKOFF_MAX_S))
            remaining = self.deadline_s - (self.clock() - started)
            if delay >= remaining:
                raise BackendError(
                    f"{failure.error} (no time left to retry within the {self.deadline_s:g}s "
                    "deadline, COPILOT_LLM_DEADLINE_S)"
                ) from None
            self.sleep(delay)

    def _translate(self, exc: Exception, timeout: float) -> BackendError | _Retryable:
        """An SDK exception as a clear error, wrapped in :class:`_Retryable` when transient."""
        import openai

        where = self.base_url
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            return _Retryable(
                BackendError(
                    f"the LLM endpoint {where} did not answer within {timeout:g}s "
                    "(COPILOT_LLM_TIMEOUT_S)"
                )
            )
        if isinstance(exc, openai.APIConnectionError):
            return _Retryable(
                BackendError(
                    f"cannot reach the LLM endpoint {where} ({_cause(exc)}); is the server running? "
                    "(COPILOT_LLM_BASE_URL)"
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


def _cause(exc: BaseException) -> str:
    """The innermost cause's message (e.g. "Connection refused"), else the error's own."""
    inner: BaseException = exc
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    text = str(inner).strip() or str(exc).strip()
    return text.rstrip(".") or type(inner).__name__
