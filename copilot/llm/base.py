"""LLM backends behind one narrow interface.

A backend turns a list of chat messages into text. Implementations:
``openai`` (any OpenAI-compatible endpoint, in :mod:`copilot.llm.openai_compat`),
``fake`` (scripted, for tests, in :mod:`copilot.llm.fake`) and ``offline``
(no LLM: the drafting pipeline composes replies from KB templates, see
:mod:`copilot.draft.offline.compose`; as a chat backend it refuses free-form
generation). Backends are built by :func:`build_backend`, never at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

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
