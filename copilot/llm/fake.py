"""Test doubles shipped with the library: a scripted LLM backend that records what it was sent."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from copilot.errors import BackendError
from copilot.llm.base import Completion, Message

Responder = Callable[[list[Message]], str]


class FakeBackend:
    """A backend whose answers are queued by the test (``enqueue``) and whose inputs are kept.

    With an empty queue it answers with ``default`` (a function of the messages, or
    a fixed text). Queue an exception instance to make the next call fail with it.
    """

    name = "fake"

    def __init__(self, default: str | Responder = "", model: str = "fake-model") -> None:
        self.model = model
        self.default = default
        self.queue: deque[str | Exception] = deque()
        self.history: list[list[Message]] = []

    def enqueue(self, *answers: str | Exception) -> FakeBackend:
        """Queue answers (or exceptions) for the next calls; returns self for chaining."""
        self.queue.extend(answers)
        return self

    def _next(self, messages: list[Message]) -> str:
        self.history.append(list(messages))
        if self.queue:
            item = self.queue.popleft()
            if isinstance(item, Exception):
                raise item
            return item
        if callable(self.default):
            return self.default(messages)
        if not self.default:
            raise BackendError("FakeBackend: no answer queued")
        return self.default

    def complete(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Completion:
        """Pop the next queued answer."""
        text = self._next(messages)
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        return Completion(
            text=text,
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(text.split()),
        )

    def stream(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 700
    ) -> Iterator[str]:
        """Pop the next queued answer and yield it word by word."""
        text = self._next(messages)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word + (" " if i < len(words) - 1 else "")

    @property
    def last_prompt(self) -> str:
        """All message contents of the last call, joined (for assertions)."""
        return "\n".join(m.content for m in self.history[-1]) if self.history else ""
