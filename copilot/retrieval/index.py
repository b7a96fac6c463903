"""The KB index as one unit: the served Chroma version (dense) plus what is derived from it.

An ingest builds the next version beside the served one, builds its BM25 index, and only
then switches the pointer (see :mod:`copilot.kb.versions`), so searches, drafts and the UI
never see a half-ingested KB, and a killed ingest leaves the previous version served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.embed.registry import embedder_tag, get_embedder
from copilot.kb.ingest import (
    IngestReport,
    ProgressFn,
    SourceDoc,
    ingest_version,
    plan_is_noop,
)
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
    settings: Settings,
    name: str,
    docs: list[SourceDoc],
    *,
    remove_missing: bool = True,
    progress: Callable[[int], ProgressFn] | None = None,
) -> IngestReport:
    """Ingest ``docs`` as the next version of KB ``name`` (this embedder's collections) and
    switch readers to it once it and its BM25 index are complete.

    Unchanged documents' chunks are copied from the served version with their vectors; only
    changed ones are embedded. An unchanged KB builds nothing. Leftovers of a killed ingest
    are removed first; the version served before the switch is kept until the next one.

    ``progress(total_chunks)``, when given, replaces the terminal progress bar: it is called
    once before embedding and may return a callback called with each batch's size (the UI's
    progress bar); it is not called when nothing needs embedding.
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
                target,
                served,
                docs,
                embedder,
                progress=progress or start,
                remove_missing=remove_missing,
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


@dataclass(frozen=True)
class KBStatus:
    """What the served version of a KB holds (for the Knowledge page and ``copilot``'s users)."""

    collection: str  # the served version collection ('' when never ingested)
    kb_version: str
    switched_at: str  # UTC ISO time the served version was switched to ('' before versions)
    previous: str  # the version served before it
    embedder: str  # the configured embedder (COPILOT_EMBEDDING_MODEL)
    embedding_model: str  # the model the served version was embedded with
    embedding_dim: int
    chunks: int = 0
    articles: int = 0  # distinct article ids
    documents: int = 0  # an article in one language is one document
    languages: dict[str, int] = field(default_factory=dict)  # language -> documents

    @property
    def ingested(self) -> bool:
        """False when this embedder's KB was never ingested."""
        return bool(self.collection)


def kb_status(settings: Settings, name: str | None = None) -> KBStatus:
    """The served version of KB ``name`` (default: the configured KB) for the configured
    embedder: version, when it was switched to, the embedder, and counts of chunks, articles
    and languages. A KB never ingested gives an empty status (``ingested`` False)."""
    client = open_client(settings)
    embedder = get_embedder(settings=settings)
    base = physical_name(settings, name)
    pointer = read_pointer(client, base)
    try:
        served = served_collection(client, base, embedder)
    except Exception as exc:
        if "does not exist" not in str(exc):
            raise
        return KBStatus("", "", "", "", embedder.name, embedder.model_id, embedder.dim)
    meta = served.metadata or {}
    total = served.count()
    # a served version is never written again (a re-ingest builds a new collection), so its
    # counts are read once per process, not on every render of the Knowledge page
    memo_key = (str(settings.chroma_url or settings.chroma_dir), served.name, total)
    if memo_key not in _COUNTS:
        _COUNTS[memo_key] = _count_documents(served, total)
    article_count, document_count, languages = _COUNTS[memo_key]
    return KBStatus(
        collection=served.name,
        kb_version=str(meta.get("kb_version", "")),
        switched_at=pointer.switched_at if pointer else "",
        previous=pointer.previous if pointer else "",
        embedder=embedder.name,
        embedding_model=str(meta.get("embedding_model", embedder.model_id)),
        embedding_dim=int(meta.get("embedding_dim", embedder.dim) or 0),
        chunks=total,
        articles=article_count,
        documents=document_count,
        languages=dict(languages),
    )


#: (store, collection, chunk count) -> (articles, documents, documents per language)
_COUNTS: dict[tuple[str, str, int], tuple[int, int, dict[str, int]]] = {}


def _count_documents(served: Any, total: int) -> tuple[int, int, dict[str, int]]:
    """Articles, documents and documents per language of a collection, from its chunks'
    metadata (read in pages of 5,000)."""
    documents: dict[str, str] = {}  # doc key -> language
    article_ids: set[str] = set()
    for offset in range(0, total, 5000):
        got = served.get(include=["metadatas"], limit=5000, offset=offset)
        for cid, chunk_meta in zip(got["ids"], got["metadatas"] or [], strict=False):
            chunk_meta = chunk_meta or {}
            key = str(chunk_meta.get("doc_key", cid.rsplit(":", 1)[0]))
            documents[key] = str(chunk_meta.get("language", "") or "?")
            article_ids.add(str(chunk_meta.get("article_id", key.split("#")[0])))
    languages: dict[str, int] = {}
    for language in documents.values():
        languages[language] = languages.get(language, 0) + 1
    return len(article_ids), len(documents), dict(sorted(languages.items()))
