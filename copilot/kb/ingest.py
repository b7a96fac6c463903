"""Incremental ingestion into Chroma, keyed by each document's content hash.

An unchanged KB embeds nothing; a changed article's chunks are replaced; a
deleted article's chunks are removed. The KB version (a hash over every
document's content hash) is stored in the collection's metadata so drafts can
record which KB they were grounded in.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.embed.base import Embedder
from copilot.errors import CopilotError, InputError, Problem
from copilot.jsonl import read_jsonl
from copilot.kb.articles import Article, kb_version
from copilot.kb.chunking import MAX_CHUNK_TOKENS, Chunk, chunk_article, split_long
from copilot.kb.vectorstore import embedder_metadata
from copilot.text.language import detect_language
from copilot.tokens import count_tokens

BATCH = 64


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
    chunks_deleted: int = 0
    kb_version: str = ""
    seconds: float = 0.0
    changed_keys: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One human-readable line."""
        return (
            f"added {self.added}, updated {self.updated}, removed {self.removed}, "
            f"unchanged {self.unchanged} ({self.chunks_embedded} chunks embedded, "
            f"{self.chunks_deleted} deleted) in {self.seconds:.2f}s; KB version {self.kb_version}"
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


def stored_documents(collection: Any) -> dict[str, tuple[str, list[str]]]:
    """``doc_key -> (content hash, chunk ids)`` for everything in the collection."""
    out: dict[str, tuple[str, list[str]]] = {}
    total = collection.count()
    page = 5000
    for offset in range(0, total, page):
        got = collection.get(include=["metadatas"], limit=page, offset=offset)
        for cid, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
            key = str((meta or {}).get("doc_key", cid.rsplit(":", 1)[0]))
            digest = str((meta or {}).get("article_hash", ""))
            entry = out.setdefault(key, (digest, []))
            entry[1].append(cid)
    return out


ProgressFn = Callable[[int], None]


def ingest(
    collection: Any,
    docs: list[SourceDoc],
    embedder: Embedder,
    *,
    progress: Callable[[int], ProgressFn] | None = None,
    remove_missing: bool = True,
    use_cache: bool = True,
) -> IngestReport:
    """Bring ``collection`` in step with ``docs``; return counts and the new KB version.

    ``progress(total_chunks)`` may return a callback called with each batch size.
    """
    start = time.perf_counter()
    keys = [d.key for d in docs]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise CopilotError(f"duplicate document keys: {', '.join(dup[:5])}")
    report = IngestReport()
    stored = stored_documents(collection)
    to_embed: list[Chunk] = []
    to_delete: list[str] = []
    for doc in docs:
        previous = stored.get(doc.key)
        if previous is None:
            report.added += 1
        elif previous[0] == doc.content_hash and len(previous[1]) == len(doc.chunks):
            report.unchanged += 1
            continue
        else:
            report.updated += 1
            to_delete.extend(previous[1])
        report.changed_keys.append(doc.key)
        to_embed.extend(doc.chunks)
    if remove_missing:
        wanted = set(keys)
        for key, (_, ids) in stored.items():
            if key not in wanted:
                report.removed += 1
                report.changed_keys.append(key)
                to_delete.extend(ids)
    for i in range(0, len(to_delete), 5000):
        collection.delete(ids=to_delete[i : i + 5000])
    report.chunks_deleted = len(to_delete)
    tick = progress(len(to_embed)) if progress and to_embed else None
    for i in range(0, len(to_embed), BATCH):
        batch = to_embed[i : i + BATCH]
        vectors = embedder.passages([c.text for c in batch], use_cache=use_cache)
        collection.upsert(
            ids=[c.id for c in batch],
            documents=[c.text for c in batch],
            metadatas=[c.metadata for c in batch],
            embeddings=vectors,
        )
        if tick:
            tick(len(batch))
    report.chunks_embedded = len(to_embed)
    if remove_missing:
        version = kb_version((d.key, d.content_hash) for d in docs)
    else:
        merged = {k: h for k, (h, _) in stored.items()} | {d.key: d.content_hash for d in docs}
        version = kb_version(merged.items())
    report.kb_version = version
    if collection.metadata is None or collection.metadata.get("kb_version") != version:
        collection.modify(
            metadata={
                **embedder_metadata(embedder),
                "kb_version": version,
                "documents": len(docs),
            }
        )
    report.seconds = time.perf_counter() - start
    return report


def collection_kb_version(collection: Any) -> str:
    """The KB version recorded by the last ingest ('' when never ingested)."""
    return str((collection.metadata or {}).get("kb_version", ""))
