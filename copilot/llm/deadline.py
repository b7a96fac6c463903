"""One deadline for everything a draft asks the language model: retries, re-drafts, the judge.

The drafting pipeline opens a scope around its model calls::

    with deadline(settings.llm_deadline_s):
        ...  # every backend call in here shares the same end time

and :class:`~copilot.llm.openai_compat.OpenAIBackend` reads :func:`current` to stop waiting,
retrying or re-drafting when the draft's time is up, whichever call it is in. The scope is
a context variable: it follows the code of one draft (a thread, or a task) and nothing
else; scopes nest and the earlier end wins. Outside any scope a backend call has its own
deadline of the same length.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Deadline:
    """When the time for one draft's model calls runs out (on ``clock``'s scale), and how many
    requests the draft has sent so far (backends count them, for their messages)."""

    seconds: float
    expires_at: float
    clock: Callable[[], float] = time.monotonic
    requests: int = 0

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.expires_at - self.clock()


_current: ContextVar[Deadline | None] = ContextVar("copilot_llm_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the draft being made in this context, if any."""
    return _current.get()


@contextmanager
def deadline(seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[Deadline]:
    """Run the block under a deadline ``seconds`` from now (an enclosing, earlier one wins)."""
    mine = Deadline(seconds, clock() + seconds, clock)
    outer = _current.get()
    if outer is not None and outer.expires_at <= mine.expires_at:
        mine = outer
    token = _current.set(mine)
    try:
        yield mine
    finally:
        _current.reset(token)
