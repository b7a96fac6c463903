"""LLM backends behind one narrow interface.

A backend turns a list of chat messages into text. Implementations:
``openai`` (any OpenAI-compatible endpoint, in :mod:`copilot.openai_backend`),
``fake`` (scripted, for tests, in :mod:`copilot.testing`) and ``offline``
(no LLM: the drafting pipeline composes replies from KB templates, see
:mod:`copilot.offline_drafter`; as a chat backend it refuses free-form
generation). Backends are built by :func:`build_backend`, never at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from copilot.errors import BackendError
from copilot.settings import Settings

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True)
class Completion:
    """A backend's answer with usage figures (tokens may be 0 when the server does not say)."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    meta: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """The interface every LLM backend implements."""

    name: str
    model: str

    def complete(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Completion:
        """Return the whole answer; raise :class:`BackendError` on failure."""
        ...

    def stream(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Iterator[str]:
        """Yield the answer in pieces; raise :class:`BackendError` on failure."""
        ...


class OfflineBackend:
    """The embedded default: no language model. Free-form generation is refused.

    Drafting uses the deterministic template composer instead; rewrite and the
    LLM-judge rails say they need an LLM backend.
    """

    name = "offline"
    model = "kb-templates"

    def complete(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Completion:
        """Always fails: there is no model behind this backend."""
        raise BackendError(
            "the offline backend has no language model; set COPILOT_LLM_BACKEND=openai "
            "and COPILOT_LLM_BASE_URL to use one"
        )

    def stream(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Iterator[str]:
        """Always fails (see :meth:`complete`)."""
        raise BackendError(
            "the offline backend has no language model; set COPILOT_LLM_BACKEND=openai "
            "and COPILOT_LLM_BASE_URL to use one"
        )


def build_backend(settings: Settings, name: str | None = None) -> Backend:
    """The backend named ``name`` (default: ``settings.llm_backend``)."""
    chosen = name or settings.llm_backend
    if chosen == "offline":
        return OfflineBackend()
    if chosen == "fake":
        from copilot.testing import FakeBackend

        return FakeBackend()
    if chosen == "openai":
        from copilot.openai_backend import OpenAIBackend

        return OpenAIBackend.from_settings(settings)
    raise BackendError(f"unknown backend {chosen!r}; use offline, openai or fake")
