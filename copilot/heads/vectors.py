"""Embeddings of the texts a set of heads reads, with a small in-memory cache (recent texts)
and a primed batch (texts embedded together ahead of a batch of checks)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from copilot.embed.base import Embedder

CACHE_SIZE = 4096


class VectorCache:
    """Thread-safe vectors of texts from one embedder."""

    def __init__(self, embedder: Embedder, size: int = CACHE_SIZE) -> None:
        self.embedder = embedder
        self.size = size
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._primed: dict[str, np.ndarray] = {}

    def _missing(self, texts: Sequence[str]) -> list[str]:
        with self._lock:
            return [
                t for t in dict.fromkeys(texts) if t not in self._recent and t not in self._primed
            ]

    def prime(self, texts: Sequence[str]) -> None:
        """Embed ``texts`` in one batch and keep them until :meth:`clear` (a batch of drafts
        checked together: ``check --input``)."""
        missing = self._missing(texts)
        if missing:
            vectors = self.embedder.passages(missing, use_cache=False)
            with self._lock:
                self._primed.update(zip(missing, vectors, strict=True))

    def settle(self) -> None:
        """Primed vectors become ordinary recent ones (the newest :attr:`size` kept): a
        caller priming batch after batch keeps what repeats across batches, bounded."""
        with self._lock:
            self._recent.update(self._primed)
            self._primed.clear()
            while len(self._recent) > self.size:
                self._recent.popitem(last=False)

    def clear(self) -> None:
        """Forget every vector (primed and recent)."""
        with self._lock:
            self._recent.clear()
            self._primed.clear()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` ``(len(texts), dim)``."""
        if not texts:
            return np.zeros((0, self.embedder.dim), np.float32)
        missing = self._missing(texts)
        fresh = self.embedder.passages(missing, use_cache=False) if missing else None
        with self._lock:
            known: dict[str, np.ndarray] = {}
            for t in dict.fromkeys(texts):
                vec = self._primed.get(t)
                if vec is None:
                    vec = self._recent.get(t)
                if vec is not None:
                    known[t] = vec
            if fresh is not None:
                for text, vec in zip(missing, fresh, strict=True):
                    self._recent[text] = vec
                    known[text] = vec
                while len(self._recent) > self.size:
                    self._recent.popitem(last=False)
        return np.vstack([known[t] for t in texts])
