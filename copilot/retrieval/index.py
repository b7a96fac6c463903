"""The KB index as one unit: the Chroma collection (dense) plus what is derived from it."""

from __future__ import annotations

from typing import Any

from copilot.embed.registry import get_embedder
from copilot.kb.ingest import IngestReport, SourceDoc, ingest
from copilot.kb.vectorstore import collection_name, get_collection, open_client
from copilot.progress import progress_bar
from copilot.settings import Settings


def physical_name(settings: Settings, name: str | None = None) -> str:
    """The Chroma collection that holds KB ``name`` (default: the configured one) for the
    configured embedder."""
    return collection_name(name or settings.collection, settings.embedding_model)


def open_collection(settings: Settings, name: str | None = None, *, create: bool = False) -> Any:
    """KB ``name``'s collection for the configured embedder; missing -> clear error unless
    ``create``; filled by another embedder -> clear error."""
    return get_collection(
        open_client(settings),
        physical_name(settings, name),
        get_embedder(settings=settings),
        create=create,
    )


def ingest_into(
    settings: Settings, name: str, docs: list[SourceDoc], *, remove_missing: bool = True
) -> IngestReport:
    """Ingest ``docs`` into KB ``name`` (this embedder's collection) and keep derived indexes
    in step."""
    collection = open_collection(settings, name, create=True)
    embedder = get_embedder(settings=settings)
    holder: dict[str, Any] = {}

    def start(total: int) -> Any:
        holder["cm"] = progress_bar(total, f"embedding {collection.name}", unit="chunk")
        return holder["cm"].__enter__()

    try:
        report = ingest(collection, docs, embedder, progress=start, remove_missing=remove_missing)
    finally:
        if "cm" in holder:
            holder["cm"].__exit__(None, None, None)
    from copilot.retrieval.lexical import sync_index

    # BM25 in step with Chroma (no-op when unchanged)
    sync_index(settings, collection.name, collection)
    return report
