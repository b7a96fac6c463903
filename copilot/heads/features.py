"""The text features the learned heads read: folded text, character n-grams (TF-IDF).

Folding makes texts that mean the same look the same: Unicode NFKC (full-width forms),
lower case, invisible characters removed, Traditional Chinese mapped to Simplified,
citation marks and digits folded (``[faq/fees]`` -> ``[src]``, ``30`` -> ``00``).
The n-gram vocabulary and its IDF weights are fitted at training time and shipped in the
weights file; turning a text into its TF-IDF row needs only Python and NumPy, so nothing
from the training library is imported at run time.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from copilot.text.chinese import is_traditional, to_simplified

_INVISIBLE = re.compile("[\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\u00ad]")
_CITATION = re.compile(r"\[\s*[a-z]+/[a-z0-9-]+(?:\s*[,;]\s*[a-z]+/[a-z0-9-]+)*\s*\]")
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s+")
_KANA = re.compile(r"[\u3040-\u30ff]")


def fold(text: str) -> str:
    """``text`` as the heads read it (see the module docstring)."""
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    if not _KANA.search(text) and is_traditional(text):
        text = to_simplified(text)
    text = _CITATION.sub("[src]", text.lower())
    text = _DIGIT.sub("0", text)
    return _SPACE.sub(" ", text).strip()


# sublinear term frequency 1 + log(count), as float32, for the usual counts
_TF = np.asarray([0.0] + [1.0 + math.log(c) for c in range(1, 257)], dtype=np.float32)


def _sublinear_tf(counts: Iterable[int], size: int) -> np.ndarray:
    """``1 + log(count)`` of each count (from a table unless a count is large)."""
    c = np.fromiter(counts, dtype=np.int64, count=size)
    if int(c.max()) < len(_TF):
        return _TF[c]
    return np.asarray([1.0 + math.log(int(n)) for n in c], dtype=np.float32)


def _grams(folded: str, n_min: int, n_max: int) -> list[str]:
    """Every character n-gram of a folded text, padded with a space each side, shortest
    first, in text order."""
    padded = f" {folded} "
    size = len(padded)
    return [padded[i : i + n] for n in range(n_min, n_max + 1) for i in range(size - n + 1)]


def char_ngrams(folded: str, n_min: int, n_max: int) -> Counter[str]:
    """Counts of the character n-grams of a folded text (spaces included)."""
    # one C-level count over every gram, then the blank grams out (3x faster than a loop)
    counts: Counter[str] = Counter(_grams(folded, n_min, n_max))
    for blank in [gram for gram in counts if not gram.strip()]:
        del counts[blank]
    return counts


@dataclass(frozen=True)
class NgramVocab:
    """A fitted character n-gram vocabulary with IDF weights (sublinear tf, l2-normalised rows)."""

    grams: tuple[str, ...]
    idf: np.ndarray
    n_min: int = 1
    n_max: int = 3
    index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.index:
            self.index.update({g: i for i, g in enumerate(self.grams)})

    def __len__(self) -> int:
        return len(self.grams)

    @classmethod
    def fit(
        cls,
        folded: Sequence[str],
        *,
        n_min: int = 1,
        n_max: int = 3,
        min_df: int = 2,
        max_features: int = 60000,
    ) -> NgramVocab:
        """Keep the ``max_features`` n-grams found in the most texts (at least ``min_df``)."""
        df: Counter[str] = Counter()
        for text in folded:
            df.update(char_ngrams(text, n_min, n_max).keys())
        kept = sorted((g for g, n in df.items() if n >= min_df), key=lambda g: (-df[g], g))[
            :max_features
        ]
        kept.sort()
        total = len(folded)
        idf = np.asarray(
            [math.log((1 + total) / (1 + df[g])) + 1.0 for g in kept], dtype=np.float32
        )
        return cls(tuple(kept), idf, n_min, n_max)

    def row(self, folded: str) -> tuple[np.ndarray, np.ndarray]:
        """(indices, values) of one folded text's TF-IDF row, in the order the n-grams first
        occur (as :func:`char_ngrams` counts them; blank grams are never in the vocabulary)."""
        grams = _grams(folded, self.n_min, self.n_max)
        # one C-level pass: each gram to its index (None when unknown), counted in order
        counts: Counter[int | None] = Counter(map(self.index.get, grams))
        counts.pop(None, None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = _sublinear_tf(counts.values(), len(counts))
        values = tf * self.idf[ids]
        values /= max(1e-12, float(np.linalg.norm(values)))
        return ids, values

    def rows(self, folded: Iterable[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """TF-IDF rows of several folded texts."""
        return [self.row(t) for t in folded]

    def matrix(self, folded: Sequence[str]) -> Any:
        """A ``scipy.sparse.csr_matrix`` of the rows (training only)."""
        from scipy.sparse import csr_matrix

        rows = self.rows(folded)
        indptr = np.cumsum([0] + [len(i) for i, _ in rows])
        indices = np.concatenate([i for i, _ in rows]) if rows else np.zeros(0, np.int64)
        data = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, np.float32)
        return csr_matrix((data, indices, indptr), shape=(len(rows), len(self)))


def sparse_scores(
    rows: Sequence[tuple[np.ndarray, np.ndarray]], weights: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """``rows @ weights.T + bias`` for sparse rows: shape ``(len(rows), weights.shape[0])``."""
    out = np.tile(bias.astype(np.float32), (len(rows), 1))
    for r, (idx, val) in enumerate(rows):
        if len(idx):
            out[r] += weights[:, idx] @ val
    return out
