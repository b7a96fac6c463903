"""The embedded default backend: no language model; free-form generation is refused."""

from __future__ import annotations

from collections.abc import Iterator

from copilot.errors import BackendError
from copilot.llm.base import Completion, Message


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
