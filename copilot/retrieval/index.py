"""The KB index as one unit: the served Chroma version (dense) plus what is derived from it.

An ingest builds the next version beside the served one, builds its BM25 index, and only
then switches the pointer (see :mod:`copilot.kb.versions`), so searches, drafts and the UI
never see a half-ingested KB, and a killed ingest leaves the previous version served.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from copilot.embed.registry import embedder_tag, get_embedder
from copilot.kb.ingest import IngestReport, SourceDoc, ingest_version, plan_is_noop
from copilot.kb.vectorstore import collection_name, get_collection, open_client
from copilot.kb.versions import (
    ingest_lock,
    new_version_name,
    read_pointer,
    remove_versions,
    served_collection,
    write_pointer,
)
from copilot.progress import progress_bar
from copilot.settings import Settings


def physical_name(settings: Settings, name: str | None = None) -> str:
    """The base name of KB ``name``'s collections (default: the configured KB) for the
    configured embedder; its versions are ``<base>.v...`` and its pointer ``<base>.current``."""
    return collection_name(name or settings.collection, embedder_tag(settings))


def open_collection(settings: Settings, name: str | None = None) -> Any:
    """The served version of KB ``name`` for the configured embedder; never ingested -> clear
    error; filled by another embedder -> clear error."""
    return served_collection(
        open_client(settings), physical_name(settings, name), get_embedder(settings=settings)
    )


def _lock_path(settings: Settings, base: str) -> Path:
    store = settings.chroma_url or str(settings.chroma_dir.resolve())
    digest = hashlib.sha256(f"{store}\n{base}".encode()).hexdigest()[:10]
    return settings.data_dir / "locks" / f"ingest-{base}-{digest}.lock"


def ingest_into(
    settings: Settings, name: str, docs: list[SourceDoc], *, remove_missing: bool = True
) -> IngestReport:
    """Ingest ``docs`` as the next version of KB ``name`` (this embedder's collections) and
    switch readers to it once it and its BM25 index are complete.

    Unchanged documents' chunks are copied from the served version with their vectors; only
    changed ones are embedded. An unchanged KB builds nothing. Leftovers of a killed ingest
    are removed first; the version served before the switch is kept until the next one.
    """
    from copilot.retrieval.lexical import LexicalIndex, index_folder, prune_indexes, sync_index

    client = open_client(settings)
    embedder = get_embedder(settings=settings)
    base = physical_name(settings, name)
    with ingest_lock(_lock_path(settings, base), base):
        pointer = read_pointer(client, base)
        try:
            served: Any = served_collection(client, base, embedder)
        except Exception as exc:
            if "does not exist" not in str(exc):
                raise
            served = None
        keep = {n for n in (pointer.current, pointer.previous) if n} if pointer else set()
        if served is not None:
            keep.add(served.name)
        remove_versions(client, base, keep)  # what killed ingests left behind
        if served is not None and plan_is_noop(served, docs, remove_missing=remove_missing):
            report = IngestReport(unchanged=len(docs))
            report.kb_version = str((served.metadata or {}).get("kb_version", ""))
            report.collection = served.name
            sync_index(settings, served.name, served)  # BM25 in step (no-op when it is)
            return report
        target = get_collection(client, new_version_name(base), embedder, create=True)
        holder: dict[str, Any] = {}

        def start(total: int) -> Any:
            holder["cm"] = progress_bar(total, f"embedding {base}", unit="chunk")
            return holder["cm"].__enter__()

        try:
            report = ingest_version(
                target, served, docs, embedder, progress=start, remove_missing=remove_missing
            )
        finally:
            if "cm" in holder:
                holder["cm"].__exit__(None, None, None)
        previous = (
            LexicalIndex.load(index_folder(settings, served.name)) if served is not None else None
        )
        index = sync_index(settings, target.name, target, previous)  # ready before readers
        if index is previous and previous is not None:  # same content: saved for this version
            index.save(index_folder(settings, target.name))
        write_pointer(client, base, embedder, target.name, served.name if served else "")
        kept = {target.name} | ({served.name} if served is not None else set())
        remove_versions(client, base, kept)
        prune_indexes(settings, base, kept)
        report.collection, report.switched = target.name, True
        return report
