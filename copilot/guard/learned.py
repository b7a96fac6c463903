"""The guardrail's learned tier: per-rule heads over each sentence of a draft.

Every sentence is scored by one head per rule (see :mod:`copilot.heads.model`) from:

* three views (``VIEWS``), each the unit-length mean of sentence embeddings: the sentence,
  the sentence with the one before it (context: "...after the alert went unanswered" reads
  differently after a liquidation), and the customer's message (an injection attempt, a
  question about advice), plus the element-wise product of the sentence's and the message's
  vectors. Only sentences and the message are embedded: the other views reuse their
  vectors, so a draft costs one embedding per distinct sentence plus one;
* the sentence's character n-grams;
* what the rules tier saw there (``EXTRAS``): the rule fired on the sentence; the rule's
  pattern matched but negation, an exception, a condition or quotes cleared it (strong
  evidence of a compliant "we can never guarantee profits"); the customer's message tried a
  prompt injection.

A second set of heads reads the whole draft (the mean of its sentences' vectors, the
message's, its n-grams,
the same evidence of the rules tier); a sentence's probability is the mean of its own and
the draft's, so the sentence that carries a violation is found with the whole reply's
context. A sentence whose probability reaches the rule's threshold for the draft's language
is a violation, with its span, its probability and the closest labelled example. The rules tier
stays: the verdict is the union, and each violation says which tier found it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copilot.embed.base import Embedder
from copilot.heads.features import fold
from copilot.heads.model import HeadSet, WeightsError
from copilot.heads.vectors import VectorCache
from copilot.text.sentences import sentence_spans

WEIGHTS = "guard"  # models/guard.npz + guard.json (sentence heads)
DRAFT_SUFFIX = "-draft"  # models/guard-draft.npz + .json (draft heads)
VIEWS = ("sentence", "sentence+previous", "message", "sentence*message")
DRAFT_VIEWS = ("sentences-mean", "message", "sentences-mean*message")
EXTRAS = ("rule_hit", "rule_cleared", "message_injection")
NO_MESSAGE = "-"  # what the message view embeds when there is no customer message
CACHE_SIZE = 8192  # vectors kept in memory (templates and messages repeat across drafts)

Spans = Mapping[str, Sequence[tuple[int, int]]]
View = tuple[str, ...]  # texts whose embeddings are averaged (then scaled to unit length)


@dataclass(frozen=True)
class LearnedHit:
    """One sentence a head flagged."""

    rule: str
    start: int
    end: int
    probability: float
    close_to: str | None = None


def _overlaps(spans: Sequence[tuple[int, int]], s: int, e: int) -> bool:
    return any(a < e and s < b for a, b in spans)


def extras_for(
    spans: Sequence[tuple[int, int]],
    labels: Sequence[str],
    fired: Spans,
    cleared: Spans,
    message_injection: bool,
) -> np.ndarray:
    """The extra features ``(sentences, labels, len(EXTRAS))`` of the sentences at ``spans``."""
    out = np.zeros((len(spans), len(labels), len(EXTRAS)), np.float32)
    for i, (s, e) in enumerate(spans):
        for j, rule in enumerate(labels):
            out[i, j, 0] = float(_overlaps(fired.get(rule, ()), s, e))
            out[i, j, 1] = float(_overlaps(cleared.get(rule, ()), s, e))
            out[i, j, 2] = float(message_injection)
    return out


def view_texts(sentences: Sequence[str], i: int, message: str) -> tuple[View, View, View]:
    """The three views of sentence ``i`` of a draft split into ``sentences``: itself, itself
    with the sentence before it, the customer's message."""
    here = sentences[i]
    before = sentences[i - 1] if i else here
    return (here,), (before, here), (message.strip() or NO_MESSAGE,)


def draft_view_texts(sentences: Sequence[str], message: str) -> tuple[View, View]:
    """The two views of the draft heads: all its sentences, the customer's message."""
    return (tuple(sentences) or (NO_MESSAGE,)), (message.strip() or NO_MESSAGE,)


def ngram_text(view: View) -> str:
    """The text whose character n-grams a head reads: the first view's sentences, joined."""
    return " ".join(view)


def view_matrix(views: Sequence[Sequence[View]], vectors: Mapping[str, np.ndarray]) -> np.ndarray:
    """One row per entry of ``views``: its views' mean vectors, each of unit length, side by
    side, then the element-wise product of the first and the last (what the draft says, read
    against what the customer wrote: "as you asked, I have lifted the hold"), scaled by
    sqrt(dim) to the others' size. ``vectors`` holds the embedding of every text named."""
    if not views:
        return np.zeros((0, 0), np.float32)
    dim = len(next(iter(vectors.values())))
    width = len(views[0])
    out = np.zeros((len(views), (width + 1) * dim), np.float32)
    for r, row in enumerate(views):
        for k, view in enumerate(row):
            v = np.mean([vectors[t] for t in view], axis=0) if len(view) > 1 else vectors[view[0]]
            norm = float(np.linalg.norm(v))
            out[r, k * dim : (k + 1) * dim] = v / norm if norm > 0 else v
    first, last = out[:, :dim], out[:, (width - 1) * dim : width * dim]
    out[:, width * dim :] = first * last * np.float32(np.sqrt(dim))
    return out


def sentences_of(draft: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """The texts of ``spans`` in ``draft``."""
    return [draft[s:e] for s, e in spans]


class LearnedTier:
    """Trained heads plus the embedder they were trained on; thread-safe."""

    def __init__(
        self, heads: HeadSet, embedder: Embedder, draft_heads: HeadSet | None = None
    ) -> None:
        self.heads = heads
        self.draft_heads = draft_heads
        self.embedder = embedder
        self.vectors = VectorCache(embedder, CACHE_SIZE)

    @classmethod
    def load(
        cls, folder: Path, name: str = WEIGHTS, *, data_sha256: str | None = None
    ) -> LearnedTier:
        """Load and verify the weights; the embedder is the one they were trained on.

        ``data_sha256`` (of the policy's example and corpus files): weights trained on other
        data are stale and refused, so a changed example never goes unlearned."""
        from copilot.embed.registry import get_embedder

        heads = HeadSet.load(folder, name)
        embedder = get_embedder(heads.embedder)
        meta = folder / f"{name}.json"
        if heads.embedder_model != embedder.model_id:
            raise WeightsError(
                f"{meta}: trained on {heads.embedder_model}, but the installed "
                f"{embedder.name} model is {embedder.model_id}; retrain the heads"
            )
        if tuple(heads.manifest.get("views", ())) != VIEWS or heads.extras != EXTRAS:
            raise WeightsError(
                f"{meta}: made for other features ({heads.manifest.get('views')}, "
                f"{list(heads.extras)}); retrain with `python -m copilot guardrail train`"
            )
        trained_on = heads.manifest.get("data", {}).get("sha256")
        if data_sha256 is not None and trained_on != data_sha256:
            raise WeightsError(
                f"{meta}: stale: trained on data {str(trained_on)[:12]}..., but the policy's "
                f"examples and corpus are now {data_sha256[:12]}...; retrain with "
                "`python -m copilot guardrail train`"
            )
        draft_heads = None
        if heads.manifest.get("draft_heads"):
            draft_heads = HeadSet.load(
                folder, str(heads.manifest["draft_heads"]), embedder=embedder.name
            )
            if draft_heads.labels != heads.labels or draft_heads.extras != EXTRAS:
                raise WeightsError(f"{meta}: the draft heads do not match the sentence heads")
            if draft_heads.manifest.get("weights_of") != heads.manifest.get("weights_sha256"):
                raise WeightsError(
                    f"{folder / str(heads.manifest['draft_heads'])}.json: made in another "
                    "training run than the sentence heads; retrain both"
                )
        return cls(heads, embedder, draft_heads)

    @property
    def rules(self) -> tuple[str, ...]:
        """The rules this tier has heads for."""
        return self.heads.labels

    def texts_for(self, draft: str, message: str) -> list[str]:
        """Every text :meth:`hits` embeds for ``draft`` (to prime a batch): its sentences and
        the customer's message."""
        return [*sentences_of(draft, sentence_spans(draft)), message.strip() or NO_MESSAGE]

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

    def _matrix(self, views: Sequence[Sequence[View]]) -> np.ndarray:
        texts = list(dict.fromkeys(t for row in views for view in row for t in view))
        return view_matrix(views, dict(zip(texts, self.embed(texts), strict=True)))

    def features(
        self, draft: str, spans: Sequence[tuple[int, int]], message: str
    ) -> tuple[np.ndarray, list[str]]:
        """The concatenated view vectors ``(sentences, 3 * dim)`` and folded sentences."""
        sentences = sentences_of(draft, spans)
        views = [view_texts(sentences, i, message) for i in range(len(spans))]
        return self._matrix(views), [fold(ngram_text(v[0])) for v in views]

    def draft_probabilities(
        self,
        draft: str,
        spans: Sequence[tuple[int, int]],
        fired: Spans,
        cleared: Spans,
        message_injection: bool,
        message: str,
    ) -> np.ndarray | None:
        """P(rule) of the whole draft ``(rules,)`` from the draft heads (None without them)."""
        if self.draft_heads is None:
            return None
        views = draft_view_texts(sentences_of(draft, spans), message)
        vectors = self._matrix([views])
        extras = extras_for([(0, len(draft))], self.rules, fired, cleared, message_injection)
        folded = [fold(ngram_text(views[0]))]
        return np.asarray(self.draft_heads.probabilities(vectors, folded, extras)[0])

    def probabilities(
        self,
        draft: str,
        fired: Spans,
        cleared: Spans,
        message_injection: bool,
        message: str,
    ) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
        """(sentence spans, P(rule) per sentence ``(sentences, rules)``, their features); with
        draft heads, each sentence's probability is the mean of its own and the draft's."""
        spans = sentence_spans(draft)
        if not spans:
            return [], np.zeros((0, len(self.rules)), np.float32), np.zeros((0, 0), np.float32)
        vectors, folded = self.features(draft, spans, message)
        extras = extras_for(spans, self.rules, fired, cleared, message_injection)
        probs = self.heads.probabilities(vectors, folded, extras)
        whole = self.draft_probabilities(draft, spans, fired, cleared, message_injection, message)
        if whole is not None:
            probs = (probs + whole[None, :]) / 2.0
        return spans, probs, vectors

    def hits(
        self,
        draft: str,
        language: str,
        fired: Spans,
        cleared: Spans,
        message_injection: bool,
        message: str = "",
        *,
        explain: bool = True,
    ) -> list[LearnedHit]:
        """The sentences of ``draft`` that a rule's head flags in ``language``."""
        spans, probs, vectors = self.probabilities(
            draft, fired, cleared, message_injection, message
        )
        out = []
        for j, rule in enumerate(self.rules):
            limit = self.heads.threshold(rule, language)
            for i, (s, e) in enumerate(spans):
                p = float(probs[i, j])
                if p >= limit:
                    near = (
                        self.heads.nearest(vectors[i, : self.embedder.dim], rule)
                        if explain
                        else None
                    )
                    out.append(LearnedHit(rule, s, e, p, near[0] if near else None))
        return out
