"""Keyword retrieval: language-aware tokenisation and a BM25 index (bm25s) kept beside Chroma.

Tokens are built per script run, so mixed-language text needs no switch:
Latin words are lower-cased, stop words dropped and plurals/-ing/-ed stripped;
Han and kana runs become character bigrams (a lone character stays a unigram).
Full-width forms are folded first (NFKC), so ``ＵＳＤＴ`` matches ``USDT``.

The index is derived from the Chroma collection (one KB version) and persisted under
``DATA_DIR/bm25/<collection>-<hash of store+collection>/``, checked against the
collection's ``kb_version``: a known version loads it; a new one rebuilds the BM25
matrix, re-reading from Chroma only the chunks whose article changed since the index
in hand. Indexes of versions no longer kept are pruned after a switch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import threading
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from copilot.settings import Settings

TOKENIZER_VERSION = 2
FORMAT_VERSION = 1
_PAGE = 2000

_STOP_EN_TEXT = """
a an and are as at be but by for if in into is it no not of on or such that the their then there
these they this to was will with i im me my we our you your he she his her its am been being do
does did doing have has had having can could would should just so too very what which who whom how
when where why all any some from up down out about over than please hi hello hey thanks thank
"""
_STOP_EN = frozenset(_STOP_EN_TEXT.split())
_RUN_RE = re.compile(
    r"[0-9a-z\u00c0-\u024f]+"  # Latin words and numbers (with accents)
    r"|[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u30fc]+"  # Han/kana
)


def normalize(text: str) -> str:
    """NFKC (full-width to half-width) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A minimal English stemmer: plurals, -ing and -ed (words with digits are kept)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    return word


def tokenize(text: str) -> list[str]:
    """Tokens of a text in any mix of English, Japanese and Chinese (see the module docstring)."""
    tokens: list[str] = []
    for run in _RUN_RE.findall(normalize(text)):
        if run[0] < "\u3000":  # Latin or digits
            if run in _STOP_EN or (len(run) == 1 and not run.isdigit()):
                continue
            tokens.append(_stem(run))
        elif len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


@lru_cache(maxsize=8192)
def _token_set(text: str) -> frozenset[str]:
    """Distinct tokens of a chunk (cached: the same candidates come back query after query)."""
    return frozenset(tokenize(text))


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk as the keyword index sees it (metadata copied from Chroma)."""

    id: str
    doc_key: str
    article_id: str
    language: str
    type: str
    title: str
    tags: tuple[str, ...]
    section: str
    heading_path: str
    article_hash: str
    text: str

    @classmethod
    def from_chroma(cls, chunk_id: str, text: str, meta: dict[str, Any] | None) -> ChunkRecord:
        """Build from a Chroma id, document and metadata (as written by ``copilot.kb.ingest``)."""
        meta = meta or {}
        doc_key = str(meta.get("doc_key") or chunk_id.rsplit(":", 1)[0])
        tags = tuple(t for t in str(meta.get("tags", "")).split(",") if t)
        return cls(
            id=chunk_id,
            doc_key=doc_key,
            article_id=str(meta.get("article_id") or doc_key.split("#", 1)[0]),
            language=str(meta.get("language", "")),
            type=str(meta.get("type", "")),
            title=str(meta.get("title", "")),
            tags=tags,
            section=str(meta.get("section", "")),
            heading_path=str(meta.get("heading_path", "")),
            article_hash=str(meta.get("article_hash", "")),
            text=text or "",
        )

    def index_text(self) -> str:
        """What BM25 indexes: the chunk text plus the article's English tags."""
        return self.text + ("\n" + " ".join(t.replace("-", " ") for t in self.tags))

    def to_row(self) -> list[Any]:
        """Compact JSON form."""
        return [
            self.id,
            self.doc_key,
            self.article_id,
            self.language,
            self.type,
            self.title,
            list(self.tags),
            self.section,
            self.heading_path,
            self.article_hash,
            self.text,
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> ChunkRecord:
        """Inverse of :meth:`to_row`."""
        values = list(row)
        values[6] = tuple(values[6])
        return cls(*values)


class LexicalIndex:
    """An immutable BM25 index over chunk records; ``search`` is thread-safe."""

    def __init__(self, records: Sequence[ChunkRecord], bm25: Any, kb_version: str) -> None:
        self.records = list(records)
        self.kb_version = kb_version
        self.bm25 = bm25
        self.row_of = {r.id: i for i, r in enumerate(self.records)}
        self.doc_rows: dict[str, list[int]] = {}
        for i, r in enumerate(self.records):
            self.doc_rows.setdefault(r.doc_key, []).append(i)
        self._idf: dict[str, float] = {}
        self._max_idf = 1.0
        if bm25 is not None:
            indptr = np.asarray(bm25.scores["indptr"])
            df = np.diff(indptr)
            n = len(self.records)
            self._max_idf = math.log(1 + (n - 0.5) / 1.5)  # a token in one chunk
            self._idf = {
                tok: math.log(1 + (n - int(df[i]) + 0.5) / (int(df[i]) + 0.5))
                for tok, i in bm25.vocab_dict.items()
                if tok and i < len(df)
            }

    def __len__(self) -> int:
        return len(self.records)

    @classmethod
    def build(cls, records: Sequence[ChunkRecord], kb_version: str) -> LexicalIndex:
        """Tokenise every record and build the BM25 matrix (Lucene BM25, k1=1.2, b=0.75)."""
        import bm25s

        if not records:
            return cls([], None, kb_version)
        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        corpus = [tokenize(r.index_text()) or [""] for r in records]
        bm25.index(corpus, show_progress=False)
        return cls(records, bm25, kb_version)

    def search(
        self, query: str | list[str], n: int, rows: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``n`` (row, BM25 score) with a score above zero, best first.

        ``rows``: an optional 0/1 mask over records (filters).
        """
        if self.bm25 is None or n <= 0:
            return []
        tokens = tokenize(query) if isinstance(query, str) else query
        vocab = self.bm25.vocab_dict
        ids = sorted({vocab[t] for t in tokens if t in vocab and t})
        if not ids:
            return []
        scores = self.bm25.get_scores_from_ids(ids)
        if rows is not None:
            scores = scores * rows
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def idf(self, token: str) -> float:
        """Inverse document frequency; a token the index has never seen counts as a rare one."""
        return self._idf.get(token, self._max_idf)

    def coverage(self, query: str | list[str], row: int) -> float:
        """Share (0..1) of the query's IDF weight whose tokens occur in chunk ``row``."""
        tokens = set(tokenize(query) if isinstance(query, str) else query)
        if not tokens:
            return 0.0
        present = _token_set(self.records[row].index_text())
        total = sum(self.idf(t) for t in tokens)
        hit = sum(self.idf(t) for t in tokens if t in present)
        return hit / total if total > 0 else 0.0

    def mask(self, doc_keys: Iterable[str]) -> np.ndarray:
        """A 0/1 row mask selecting the chunks of ``doc_keys``."""
        out = np.zeros(len(self.records), dtype=np.float32)
        for key in doc_keys:
            out[self.doc_rows.get(key, [])] = 1.0
        return out

    # ---- persistence ----------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the index as a new build folder and switch ``CURRENT`` to it atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        build = f"{self.kb_version or 'none'}-{uuid.uuid4().hex[:8]}"
        tmp = folder / f".tmp-{build}"
        tmp.mkdir()
        if self.bm25 is not None:
            self.bm25.save(str(tmp / "bm25s"), show_progress=False)
        with (tmp / "chunks.json").open("w", encoding="utf-8") as fh:
            json.dump([r.to_row() for r in self.records], fh, ensure_ascii=False)
        manifest = {
            "format": FORMAT_VERSION,
            "tokenizer": TOKENIZER_VERSION,
            "kb_version": self.kb_version,
            "chunks": len(self.records),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        tmp.rename(folder / build)
        pointer = folder / f".CURRENT-{build}"
        pointer.write_text(build, encoding="utf-8")
        os.replace(pointer, folder / "CURRENT")
        keep = {build, (folder / "CURRENT").read_text(encoding="utf-8").strip()}
        for old in folder.iterdir():  # earlier builds nobody points at any more
            if old.is_dir() and old.name not in keep and not old.name.startswith(".tmp-"):
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None when missing, unreadable or built by another tokenizer."""
        try:
            build = (folder / "CURRENT").read_text(encoding="utf-8").strip()
            path = folder / build
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
            if (
                manifest.get("format") != FORMAT_VERSION
                or manifest.get("tokenizer") != TOKENIZER_VERSION
            ):
                return None
            with (path / "chunks.json").open(encoding="utf-8") as fh:
                records = [ChunkRecord.from_row(r) for r in json.load(fh)]
            bm25 = None
            if records:
                import bm25s

                bm25 = bm25s.BM25.load(str(path / "bm25s"), show_progress=False)
            return cls(records, bm25, str(manifest.get("kb_version", "")))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None


def index_folder(settings: Settings, collection_name: str) -> Path:
    """Where the BM25 index of a collection lives: one folder per Chroma store and collection."""
    store = settings.chroma_url or str(settings.chroma_dir.resolve())
    digest = hashlib.sha256(f"{store}\n{collection_name}".encode()).hexdigest()[:10]
    return settings.data_dir / "bm25" / f"{collection_name}-{digest}"


def _collection_version(collection: Any) -> str:
    return str((collection.metadata or {}).get("kb_version", ""))


def fetch_records(collection: Any, previous: LexicalIndex | None = None) -> list[ChunkRecord]:
    """Every chunk of the collection; texts of chunks unchanged since ``previous`` are reused."""
    ids: list[str] = []
    metas: list[dict[str, Any]] = []
    total = collection.count()
    for offset in range(0, total, _PAGE):
        got = collection.get(include=["metadatas"], limit=_PAGE, offset=offset)
        ids.extend(got["ids"])
        metas.extend(m or {} for m in (got["metadatas"] or [{}] * len(got["ids"])))
    old: dict[str, ChunkRecord] = (
        {r.id: r for r in previous.records} if previous is not None else {}
    )
    texts: dict[str, str] = {}
    missing: list[str] = []
    for cid, meta in zip(ids, metas, strict=True):
        prev = old.get(cid)
        if prev is not None and prev.article_hash == str(meta.get("article_hash", "")):
            texts[cid] = prev.text
        else:
            missing.append(cid)
    for i in range(0, len(missing), _PAGE):
        got = collection.get(ids=missing[i : i + _PAGE], include=["documents"])
        texts.update(zip(got["ids"], got["documents"] or [], strict=False))
    records = [
        ChunkRecord.from_chroma(c, texts.get(c, ""), m) for c, m in zip(ids, metas, strict=True)
    ]
    records.sort(key=lambda r: r.id)
    return records


_sync_lock = threading.Lock()


def sync_index(
    settings: Settings, collection_name: str, collection: Any, current: LexicalIndex | None = None
) -> LexicalIndex:
    """The BM25 index in step with ``collection``: ``current`` or the saved one when its KB
    version and size match, else rebuilt.

    Rebuilding re-reads from Chroma only the chunks whose article changed since ``current``
    (or the saved index) and saves the result, so the next process loads it.
    """
    folder = index_folder(settings, collection_name)
    version = _collection_version(collection)
    count = collection.count()

    def fits(index: LexicalIndex | None) -> bool:
        return index is not None and index.kb_version == version and len(index) == count

    with _sync_lock:
        if current is not None and fits(current):
            return current
        saved = LexicalIndex.load(folder)
        if saved is not None and fits(saved):
            return saved
        index = LexicalIndex.build(fetch_records(collection, current or saved), version)
        index.save(folder)
        return index


def prune_indexes(settings: Settings, base: str, keep: set[str]) -> list[Path]:
    """Remove the saved BM25 indexes of ``base``'s versions older than the newest in ``keep``
    (and of a pre-version ``base`` collection) that are not in ``keep``; returns the folders
    removed. Newer versions' indexes stay: another process may just have built them."""
    from copilot.kb.versions import is_version_of

    root = settings.data_dir / "bm25"
    versions = [k for k in keep if is_version_of(base, k)]
    removed: list[Path] = []
    if not root.is_dir() or not versions:
        return removed
    newest = max(versions)
    for folder in root.iterdir():
        name, sep, digest = folder.name.rpartition("-")
        if not sep or len(digest) != 10 or name in keep:
            continue
        if not (name == base or (is_version_of(base, name) and name < newest)):
            continue
        if index_folder(settings, name) != folder:  # another store's index
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
