"""Passage vectors cached on disk by text hash, so re-ingesting or re-scoring text costs nothing.

One SQLite file per data folder (``COPILOT_EMBED_CACHE``, default
``<COPILOT_DATA_DIR>/cache/embeddings-v2.sqlite``), shared by every embedder: keys carry
the model id, the model file's fingerprint (:mod:`copilot.embed.fingerprint`: a model file
changed under the same id must not be served the old file's vectors) and the engine,
because a CPU-tuned engine's vectors differ from the bundled one's in the fourth decimal
and a cache must return what this process would compute.
Safe across threads and processes (WAL); a folder that cannot be written means no cache.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

_lock = threading.Lock()
_caches: dict[Path, VectorCache | None] = {}


class VectorCache:
    """text-key -> float32 vector, in SQLite."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB)")
        self._conn.commit()

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys``."""
        out: dict[str, np.ndarray] = {}
        with _lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                for key, blob in self._conn.execute(
                    f"SELECT key, v FROM vec WHERE key IN ({marks})", part
                ):
                    out[key] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors by key."""
        with _lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO vec VALUES (?, ?)",
                [(k, v.astype(np.float32).tobytes()) for k, v in items.items()],
            )
            self._conn.commit()


def cache_key(
    model_id: str, engine: str, kind: str, text: str, fingerprint: str | None = None
) -> str:
    """The cache key of one text embedded by one model build (``fingerprint``: the model
    file's, for embedders that run one)."""
    model = f"{model_id}@{fingerprint}" if fingerprint else model_id
    return hashlib.sha256(f"{model}\n{engine}\n{kind}\n{text}".encode()).hexdigest()


def open_cache(path: Path) -> VectorCache | None:
    """The cache at ``path`` (opened once per process), or None when it cannot be opened."""
    with _lock:
        if path not in _caches:
            try:
                _caches[path] = VectorCache(path)
            except (OSError, sqlite3.Error):
                _caches[path] = None  # a read-only folder: embed without caching
        return _caches[path]


def cached(
    cache: VectorCache | None,
    keys: list[str],
    texts: list[str],
    compute: Callable[[list[str]], np.ndarray],
    dim: int,
) -> np.ndarray:
    """Rows for ``texts``: cached ones read, the others computed with ``compute(list)`` and stored."""
    found = cache.get(keys) if cache else {}
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        fresh = np.atleast_2d(np.asarray(compute([texts[i] for i in missing]), dtype=np.float32))
        new = {keys[i]: fresh[j] for j, i in enumerate(missing)}
        if cache:
            cache.put(new)
        found.update(new)
    if not keys:
        return np.zeros((0, dim), dtype=np.float32)
    return np.vstack([found[k] for k in keys]).astype(np.float32)
