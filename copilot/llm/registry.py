"""Build the LLM backend a setting names: offline, openai or fake."""

from __future__ import annotations

from copilot.errors import BackendError
from copilot.llm.base import Backend
from copilot.llm.offline import OfflineBackend
from copilot.settings import Settings


def build_backend(settings: Settings, name: str | None = None) -> Backend:
    """The backend named ``name`` (default: ``settings.llm_backend``)."""
    chosen = name or settings.llm_backend
    if chosen == "offline":
        return OfflineBackend()
    if chosen == "fake":
        from copilot.llm.fake import FakeBackend

        return FakeBackend()
    if chosen == "openai":
        from copilot.llm.openai_compat import OpenAIBackend

        return OpenAIBackend.from_settings(settings)
    raise BackendError(f"unknown backend {chosen!r}; use offline, openai or fake")
