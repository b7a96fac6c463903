"""What the pages use that is heavy to build: the copilot (retriever, guardrail, backend) and the store, once per settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from copilot.draft.pipeline import Copilot
from copilot.settings import Settings
from copilot.store import SqlStore, Store


# ---- services ----------------------------------------------------------------
@dataclass
class Services:
    """Everything heavy the page uses, built once per settings (see ``app.py``)."""

    settings: Settings
    copilot: Copilot
    store: Store

    @property
    def retriever(self) -> Any:
        """The copilot's retriever (shared: one index in memory)."""
        return self.copilot.retriever

    @property
    def guardrail(self) -> Any:
        """The copilot's guardrail."""
        return self.copilot.guardrail


def build_services(settings: Settings) -> Services:
    """Build the copilot and the store; raises :class:`CopilotError` with a clear message."""
    from copilot.draft.factory import build_copilot
    from copilot.runtime import configure

    configure(settings.tiktoken_dir)
    return Services(settings, build_copilot(settings), SqlStore.from_url(settings.database))


def settings_key(settings: Settings) -> str:
    """A cache key that changes when any setting does (the API key only by its hash)."""
    return str(hash(settings))
