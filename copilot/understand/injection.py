"""The learned prompt-injection flag on a customer's message.

The message is read as segments: the whole message, windows of two sentences (long
messages), quoted or pasted blocks (``>`` lines, forwarded e-mails, HTML comments, code
blocks) and decoded base64 / percent-encoded runs, each after undoing obfuscation
(:mod:`copilot.text.deobfuscate`). One trained head (:mod:`copilot.heads`) scores every
segment over two views (the segment, the whole message) plus three signals (a rule cue in
the segment, a decoded run, a quoted block); the message is flagged when its best segment
reaches the threshold of its language, and the flag points at that segment.

Trained by ``python -m copilot guardrail train`` (:mod:`copilot.guard.injection_training`)
into ``COPILOT_MODELS_DIR/injection.npz`` + ``.json``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copilot.embed.base import Embedder
from copilot.heads.features import fold
from copilot.heads.model import HeadSet, WeightsError
from copilot.heads.vectors import VectorCache
from copilot.text.deobfuscate import deobfuscate, encoded_runs
from copilot.text.sentences import sentence_spans

LABEL = "prompt_injection"
VIEWS = ("segment", "message")
EXTRAS = ("rule_cue", "decoded", "quoted")
MAX_WINDOWS = 40

_QUOTED = (
    re.compile(r"(?m)(?:^[ \t]*>.*(?:\n|$))+"),  # e-mail quoting
    re.compile(r"<!--.*?-->", re.S),  # HTML comments
    re.compile(r"```.*?```", re.S),  # code blocks
    re.compile(
        r"(?ims)^[ \t]*(?:-{2,}\s*(?:original message|forwarded message)\s*-{2,}|"
        r"begin forwarded message:|from:\s.+$|差出人[:：]|发件人[:：]|寄件者[:：]|転送されたメッセージ|"
        r"-{3,}\s*転送|-{3,}\s*转发|-{3,}\s*轉寄).*\Z"
    ),  # everything after a forwarding marker
)


@dataclass(frozen=True)
class Segment:
    """A piece of the message to score: its span in the original, its plain reading, kind."""

    span: tuple[int, int]
    text: str
    kind: str  # message | window | quoted | decoded


def segments(message: str) -> list[Segment]:
    """The segments of ``message`` (the whole message first)."""
    out = [Segment((0, len(message)), deobfuscate(message), "message")]
    spans = sentence_spans(message)
    if len(spans) > 2:
        starts = range(len(spans) - 1)
        step = max(1, -(-len(starts) // MAX_WINDOWS))
        for i in starts[::step]:
            s, e = spans[i][0], spans[i + 1][1]
            out.append(Segment((s, e), deobfuscate(message[s:e]), "window"))
    for rx in _QUOTED:
        for m in rx.finditer(message):
            s, e = m.span()
            if e - s >= 8 and (s, e) != (0, len(message)):
                out.append(Segment((s, e), deobfuscate(message[s:e]), "quoted"))
    for s, e, decoded in encoded_runs(message):
        out.append(Segment((s, e), deobfuscate(decoded), "decoded"))
    return out


def segment_extras(segs: Sequence[Segment]) -> np.ndarray:
    """The extra signals of each segment: ``(segments, 1, len(EXTRAS))``."""
    from copilot.understand.signals import find_injection

    out = np.zeros((len(segs), 1, len(EXTRAS)), np.float32)
    for i, seg in enumerate(segs):
        out[i, 0, 0] = 1.0 if find_injection(seg.text) else 0.0
        out[i, 0, 1] = 1.0 if seg.kind == "decoded" else 0.0
        out[i, 0, 2] = 1.0 if seg.kind == "quoted" else 0.0
    return out


@dataclass(frozen=True)
class InjectionHit:
    """The best segment of a flagged message."""

    span: tuple[int, int]
    probability: float
    kind: str


class InjectionFlagger:
    """The trained injection head and its embedder; thread-safe."""

    def __init__(self, heads: HeadSet, embedder: Embedder) -> None:
        self.heads = heads
        self.embedder = embedder
        self.vectors = VectorCache(embedder)

    @classmethod
    def load(
        cls, folder: Path, name: str = "injection", *, data_sha256: str | None = None
    ) -> InjectionFlagger:
        """Load and verify the weights (embedder, features, training data)."""
        from copilot.embed.registry import get_embedder

        heads = HeadSet.load(folder, name)
        meta = folder / f"{name}.json"
        embedder = get_embedder(heads.embedder)
        if heads.embedder_model != embedder.model_id:
            raise WeightsError(
                f"{meta}: trained on {heads.embedder_model}, but the installed "
                f"{embedder.name} model is {embedder.model_id}; retrain the heads"
            )
        if (
            heads.labels != (LABEL,)
            or heads.extras != EXTRAS
            or tuple(heads.manifest.get("views", ())) != VIEWS
        ):
            raise WeightsError(
                f"{meta}: made for other labels or features; retrain with "
                "`python -m copilot guardrail train`"
            )
        trained_on = heads.manifest.get("data", {}).get("sha256")
        if data_sha256 is not None and trained_on != data_sha256:
            raise WeightsError(
                f"{meta}: stale: trained on data {str(trained_on)[:12]}..., but the labelled "
                f"messages are now {data_sha256[:12]}...; retrain with "
                "`python -m copilot guardrail train`"
            )
        return cls(heads, embedder)

    def texts_for(self, message: str) -> list[str]:
        """Every text :meth:`hit` embeds for ``message`` (to prime a batch)."""
        segs = segments(message)
        return [t for s in segs for t in (s.text, segs[0].text)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` (cached)."""
        return self.vectors.embed(texts)

    def prime(self, texts: Sequence[str]) -> None:
        """Embed ``texts`` in one batch ahead of a batch of checks."""
        self.vectors.prime(texts)

    def clear_cache(self) -> None:
        """Forget every cached vector."""
        self.vectors.clear()

    def settle_cache(self) -> None:
        """Keep primed vectors as recent ones (bounded) instead of forgetting them."""
        self.vectors.settle()

    def scores(self, message: str) -> tuple[list[Segment], np.ndarray]:
        """The segments of ``message`` and P(injection) of each."""
        segs = segments(message)
        whole = segs[0].text
        vectors = self.embed([t for s in segs for t in (s.text, whole)])
        vectors = vectors.reshape(len(segs), len(VIEWS) * self.embedder.dim)
        probs = self.heads.probabilities(
            vectors, [fold(s.text) for s in segs], segment_extras(segs)
        )
        return segs, probs[:, 0]

    def hit(self, message: str, language: str) -> InjectionHit | None:
        """The flagged segment of ``message`` (the most likely one), or None."""
        if not message.strip():
            return None
        segs, probs = self.scores(message)
        best = int(np.argmax(probs))
        p = float(probs[best])
        if p < self.heads.threshold(LABEL, language):
            return None
        # point at the most likely part, not at the whole of a long message
        parts = [i for i, s in enumerate(segs) if s.kind != "message"]
        if segs[best].kind == "message" and parts:
            best = max(parts, key=lambda i: float(probs[i]))
        return InjectionHit(segs[best].span, p, segs[best].kind)
