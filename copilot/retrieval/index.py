"""The KB index as one unit: the Chroma collection (dense) plus what is derived from it."""

from __future__ import annotations

from typing import Any

from copilot.kb.ingest import IngestReport, SourceDoc, ingest
from copilot.kb.vectorstore import get_collection, open_client
from copilot.progress import progress_bar
from copilot.settings import Settings


def open_collection(settings: Settings, name: str | None = None, *, create: bool = False) -> Any:
    """The configured collection (embedded or server); missing -> clear error unless ``create``."""
    return get_collection(open_client(settings), name or settings.collection, create=create)


def ingest_into(
    settings: Settings, name: str, docs: list[SourceDoc], *, remove_missing: bool = True
) -> IngestReport:
    """Ingest ``docs`` into collection ``name`` and keep derived indexes in step."""
    collection = open_collection(settings, name, create=True)
    holder: dict[str, Any] = {}

    def start(total: int) -> Any:
        holder["cm"] = progress_bar(total, f"embedding {name}")
        return holder["cm"].__enter__()

    try:
        report = ingest(collection, docs, progress=start, remove_missing=remove_missing)
    finally:
        if "cm" in holder:
            holder["cm"].__exit__(None, None, None)
    from copilot.retrieval.lexical import sync_index

    sync_index(settings, name, collection)  # BM25 in step with Chroma (no-op when unchanged)
    return report
