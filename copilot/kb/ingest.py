"""Incremental ingestion into Chroma, keyed by each document's content hash.

An unchanged KB embeds nothing; a changed article's chunks are embedded again; a
deleted article's chunks are dropped. The KB version (a hash over every document's
content hash) is stored in the collection's metadata so drafts can record which KB
they were grounded in.

:func:`ingest_version` builds a new version collection from the served one (unchanged
chunks copied with their vectors), which :mod:`copilot.kb.versions` then switches
readers to in one step; :func:`ingest` updates one collection in place (benchmarks,
collections nobody reads while they change).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.embed.base import Embedder
from copilot.errors import CopilotError, InputError, Problem
from copilot.jsonl import read_jsonl
from copilot.kb.articles import Article, kb_version
from copilot.kb.chunking import MAX_CHUNK_TOKENS, Chunk, chunk_article, split_long
from copilot.kb.vectorstore import embedder_metadata
from copilot.text.language import detect_language
from copilot.tokens import count_tokens

BATCH = 64  # chunks per embedding call
WRITE_BATCH = 512  # chunks per Chroma write (measured: 64 costs twice the CPU per chunk)
AHEAD = 2 * WRITE_BATCH // BATCH  # embedded batches at most waiting to be written
COPY_PAGE = 1000  # chunks copied from the served version per request


@dataclass(frozen=True)
class SourceDoc:
    """One document (an article in one language, or one external JSONL record) and its chunks."""

    key: str
    content_hash: str
    chunks: tuple[Chunk, ...]


@dataclass
class IngestReport:
    """What an ingest run did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_copied: int = 0
    chunks_deleted: int = 0
    kb_version: str = ""
    seconds: float = 0.0
    collection: str = ""  # the version collection served after this ingest
    switched: bool = False  # True when this ingest switched readers to a new version
    changed_keys: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One human-readable line."""
        served = f" ({'now serving' if self.switched else 'serving'} {self.collection})"
        return (
            f"added {self.added}, updated {self.updated}, removed {self.removed}, "
            f"unchanged {self.unchanged} ({self.chunks_embedded} chunks embedded, "
            f"{self.chunks_copied} copied, {self.chunks_deleted} deleted) in "
            f"{self.seconds:.2f}s; KB version {self.kb_version}"
            + (served if self.collection else "")
        )


def docs_from_articles(articles: Iterable[Article]) -> list[SourceDoc]:
    """Chunk every article."""
    return [SourceDoc(a.key, a.content_hash, tuple(chunk_article(a))) for a in articles]


def docs_from_jsonl(
    path: Path, id_field: str = "doc_id", text_fields: list[str] | None = None
) -> list[SourceDoc]:
    """One document per JSONL record, e.g. ``banking77_intent_kb.jsonl`` (list values joined).

    Without ``text_fields``, every text or list-of-text field except ``id_field`` is used.
    Bad lines raise :class:`InputError` naming every bad line.
    """
    docs: list[SourceDoc] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for line, obj in read_jsonl(path):
        if isinstance(obj, Problem):
            problems.append(obj)
            continue
        doc_id = obj.get(id_field)
        if not isinstance(doc_id, (str, int)) or str(doc_id) == "":
            problems.append(Problem(str(path), line, f"field '{id_field}': missing or not text"))
            continue
        doc_id = str(doc_id)
        if doc_id in seen:
            problems.append(Problem(str(path), line, f"field '{id_field}': duplicate {doc_id!r}"))
            continue
        seen.add(doc_id)
        names = text_fields or [k for k in obj if k != id_field]
        parts: list[str] = []
        for name in names:
            value = obj.get(name)
            if value is None and text_fields:
                problems.append(Problem(str(path), line, f"field '{name}': missing"))
                continue
            if isinstance(value, str):
                parts.append(value.replace("_", " ") if name in ("intent", id_field) else value)
            elif isinstance(value, list):
                parts.extend(str(v) for v in value if isinstance(v, (str, int, float)))
        text = "\n".join(p for p in parts if p.strip())
        if not text.strip():
            problems.append(Problem(str(path), line, "record has no text in the text fields"))
            continue
        language = str(obj.get("lang") or obj.get("language") or detect_language(text))
        # the text is hashed too: ingesting with other --text-fields must re-embed
        digest = hashlib.sha256(
            (json.dumps(obj, sort_keys=True) + "\n" + text).encode()
        ).hexdigest()
        key = f"{doc_id}#{language}"
        pieces = split_long(text, MAX_CHUNK_TOKENS)
        chunks = tuple(
            Chunk(
                id=f"{key}:{i}",
                text=piece,
                metadata={
                    "article_id": doc_id,
                    "doc_key": key,
                    "language": language,
                    "type": "external",
                    "title": doc_id.replace("_", " "),
                    "tags": ",",
                    "heading_path": doc_id,
                    "section": "",
                    "line": line,
                    "tokens": count_tokens(piece),
                    "article_hash": digest,
                    "article_version": 1,
                },
            )
            for i, piece in enumerate(pieces)
        )
        docs.append(SourceDoc(key, digest, chunks))
    if problems:
        raise InputError(problems)
    return docs


@dataclass
class StoredDoc:
    """One document as a collection holds it: content hash, chunk ids, chunk format."""

    content_hash: str
    ids: list[str] = field(default_factory=list)
    doc_format: int = 1


def stored_documents(collection: Any) -> dict[str, StoredDoc]:
    """``doc_key -> StoredDoc`` for everything in the collection."""
    out: dict[str, StoredDoc] = {}
    total = collection.count()
    page = 5000
    for offset in range(0, total, page):
        got = collection.get(include=["metadatas"], limit=page, offset=offset)
        for cid, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
            meta = meta or {}
            key = str(meta.get("doc_key", cid.rsplit(":", 1)[0]))
            entry = out.setdefault(key, StoredDoc(str(meta.get("article_hash", ""))))
            entry.ids.append(cid)
            if cid.endswith(":0"):
                entry.doc_format = int(meta.get("doc_format", 1) or 1)
    return out


ProgressFn = Callable[[int], None]


@dataclass
class _Plan:
    """What an ingest must do, from the stored documents and the wanted ones."""

    report: IngestReport
    to_embed: list[Chunk]
    to_drop: list[str]  # stored chunk ids of changed and removed documents
    to_keep: list[str]  # stored chunk ids of unchanged documents
    version: str


def _plan(stored: dict[str, StoredDoc], docs: list[SourceDoc], remove_missing: bool) -> _Plan:
    keys = [d.key for d in docs]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise CopilotError(f"duplicate document keys: {', '.join(dup[:5])}")
    report = IngestReport()
    plan = _Plan(report, [], [], [], "")
    for doc in docs:
        previous = stored.get(doc.key)
        wanted_format = int(doc.chunks[0].metadata.get("doc_format", 1)) if doc.chunks else 1
        if previous is None:
            report.added += 1
        elif (
            previous.content_hash == doc.content_hash
            and len(previous.ids) == len(doc.chunks)
            and previous.doc_format == wanted_format
        ):
            report.unchanged += 1
            plan.to_keep.extend(previous.ids)
            continue
        else:
            report.updated += 1
            plan.to_drop.extend(previous.ids)
        report.changed_keys.append(doc.key)
        plan.to_embed.extend(doc.chunks)
    wanted = set(keys)
    for key, entry in stored.items():
        if key in wanted:
            continue
        if remove_missing:
            report.removed += 1
            report.changed_keys.append(key)
            plan.to_drop.extend(entry.ids)
        else:
            plan.to_keep.extend(entry.ids)
    if remove_missing:
        plan.version = kb_version((d.key, d.content_hash) for d in docs)
    else:
        merged = {k: e.content_hash for k, e in stored.items()} | {
            d.key: d.content_hash for d in docs
        }
        plan.version = kb_version(merged.items())
    report.kb_version = plan.version
    return plan


def _doc_key(chunk: Chunk) -> str:
    return str(chunk.metadata.get("doc_key", chunk.id.rsplit(":", 1)[0]))


def _files(chunks: list[Chunk]) -> dict[str, str]:
    """``doc_key -> article file`` (an article's first chunk names its file)."""
    return {
        _doc_key(c): str(c.metadata["article_path"])
        for c in chunks
        if c.metadata.get("article_path")
    }


def _where(batch: list[Chunk], files: dict[str, str] | None = None) -> str:
    """The documents a batch of chunks comes from, by file where known."""
    files = {**_files(batch), **(files or {})}
    keys = list(dict.fromkeys(_doc_key(c) for c in batch))
    shown = [f"{files[k]} ({k})" if k in files else k for k in keys]
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    return ", ".join(shown[:3]) + more


def _embed_batch(
    embedder: Embedder, batch: list[Chunk], use_cache: bool, files: dict[str, str]
) -> Any:
    """The vectors of one batch; a failure names the documents it comes from."""
    try:
        return embedder.passages([c.text for c in batch], use_cache=use_cache)
    except CopilotError as exc:
        raise CopilotError(
            f"embedding {_where(batch, files)}: {exc}", exit_code=exc.exit_code
        ) from exc
    except Exception as exc:  # an engine's own error: still say which documents
        raise CopilotError(
            f"embedding {_where(batch, files)}: {type(exc).__name__}: {exc}"
        ) from exc


def _embed_into(
    collection: Any,
    chunks: list[Chunk],
    embedder: Embedder,
    progress: Callable[[int], ProgressFn] | None,
    use_cache: bool,
) -> None:
    """Embed ``chunks`` and write them, in order, as a pipeline: one thread embeds batches of
    ``BATCH`` (at most ``AHEAD`` ahead) while this one writes them ``WRITE_BATCH`` at a time
    (Chroma costs about half as much per chunk in writes of 512 as of 64). ``progress`` ticks
    per embedded batch. A failed batch stops the pipeline before anything after it is
    written, and its error names its documents."""
    tick = progress(len(chunks)) if progress and chunks else None
    batches = [chunks[i : i + BATCH] for i in range(0, len(chunks), BATCH)]
    if not batches:
        return
    files = _files(chunks)
    pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-embed")
    pending: deque[tuple[list[Chunk], Future[Any]]] = deque()
    upcoming = iter(batches)

    def submit() -> None:
        batch = next(upcoming, None)
        if batch is not None:
            pending.append((batch, pool.submit(_embed_batch, embedder, batch, use_cache, files)))

    def write(done: list[tuple[list[Chunk], Any]]) -> None:
        rows = [c for batch, _ in done for c in batch]
        collection.upsert(
            ids=[c.id for c in rows],
            documents=[c.text for c in rows],
            metadatas=[c.metadata for c in rows],
            embeddings=np.vstack([np.asarray(v, dtype=np.float32) for _, v in done]),
        )

    try:
        for _ in range(AHEAD):
            submit()
        ready: list[tuple[list[Chunk], Any]] = []
        while pending:
            batch, future = pending.popleft()
            ready.append((batch, future.result()))
            submit()
            if tick:  # per embedded batch, as before: the bar moves at the model's pace
                tick(len(batch))
            if sum(len(b) for b, _ in ready) >= WRITE_BATCH or not pending:
                write(ready)
                ready = []
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _finish(collection: Any, plan: _Plan, embedder: Embedder, documents: int) -> None:
    if collection.metadata is None or collection.metadata.get("kb_version") != plan.version:
        collection.modify(
            metadata={
                **embedder_metadata(embedder),
                "kb_version": plan.version,
                "documents": documents,
            }
        )


def ingest(
    collection: Any,
    docs: list[SourceDoc],
    embedder: Embedder,
    *,
    progress: Callable[[int], ProgressFn] | None = None,
    remove_missing: bool = True,
    use_cache: bool = True,
) -> IngestReport:
    """Bring ``collection`` in step with ``docs`` in place; return counts and the KB version.

    Readers of ``collection`` see the change as it happens: a served KB is updated with
    :func:`ingest_version` instead. ``progress(total_chunks)`` may return a callback called
    with each batch size.
    """
    start = time.perf_counter()
    plan = _plan(stored_documents(collection), docs, remove_missing)
    for i in range(0, len(plan.to_drop), 5000):
        collection.delete(ids=plan.to_drop[i : i + 5000])
    plan.report.chunks_deleted = len(plan.to_drop)
    _embed_into(collection, plan.to_embed, embedder, progress, use_cache)
    plan.report.chunks_embedded = len(plan.to_embed)
    _finish(collection, plan, embedder, len(docs))
    plan.report.seconds = time.perf_counter() - start
    return plan.report


def plan_is_noop(source: Any, docs: list[SourceDoc], *, remove_missing: bool = True) -> bool:
    """True when ``source`` already holds exactly ``docs`` (nothing to embed, copy or drop)."""
    if source is None:
        return False
    plan = _plan(stored_documents(source), docs, remove_missing)
    return not plan.to_embed and not plan.to_drop and collection_kb_version(source) == plan.version


def ingest_version(
    target: Any,
    source: Any | None,
    docs: list[SourceDoc],
    embedder: Embedder,
    *,
    progress: Callable[[int], ProgressFn] | None = None,
    remove_missing: bool = True,
    use_cache: bool = True,
) -> IngestReport:
    """Fill ``target``, a new empty collection, with the KB ``docs``: chunks of documents
    unchanged since ``source`` (the served version, or None) are copied with their vectors,
    only changed ones are embedded. ``source`` is only read. The KB version is written on
    ``target`` last, once it is complete.
    """
    start = time.perf_counter()
    stored = stored_documents(source) if source is not None else {}
    plan = _plan(stored, docs, remove_missing)
    for i in range(0, len(plan.to_keep), COPY_PAGE):
        assert source is not None  # only a source has chunks to keep
        ids = plan.to_keep[i : i + COPY_PAGE]
        got = source.get(ids=ids, include=["embeddings", "documents", "metadatas"])
        target.add(
            ids=got["ids"],
            embeddings=got["embeddings"],
            documents=got["documents"],
            metadatas=got["metadatas"],
        )
    plan.report.chunks_copied = len(plan.to_keep)
    plan.report.chunks_deleted = len(plan.to_drop)
    _embed_into(target, plan.to_embed, embedder, progress, use_cache)
    plan.report.chunks_embedded = len(plan.to_embed)
    _finish(target, plan, embedder, len(docs))
    plan.report.seconds = time.perf_counter() - start
    return plan.report


def collection_kb_version(collection: Any) -> str:
    """The KB version recorded by the last ingest ('' when never ingested)."""
    return str((collection.metadata or {}).get("kb_version", ""))
