"""The guardrail's learned tier: per-rule heads over each sentence of a draft.

Every sentence is scored by one head per rule (see :mod:`copilot.heads.model`) from:

* three embeddings (``VIEWS``): the sentence, the sentence with the text just before it
  (context: "...after the alert went unanswered" reads differently after a liquidation), and
  the customer's message (an injection attempt, a question about advice);
* the sentence's character n-grams;
* what the rules tier saw there (``EXTRAS``): the rule fired on the sentence; the rule's
  pattern matched but negation, an exception, a condition or quotes cleared it (strong
  evidence of a compliant "we can never guarantee profits"); the customer's message tried a
  prompt injection.

A second set of heads reads the whole draft (its embedding, the message's, its n-grams,
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
VIEWS = ("sentence", "window", "message")
DRAFT_VIEWS = ("draft", "message")
EXTRAS = ("rule_hit", "rule_cleared", "message_injection")
WINDOW_CHARS = 160  # the text before a sentence that its "window" view adds
NO_MESSAGE = "-"  # what the message view embeds when there is no customer message
CACHE_SIZE = 8192  # vectors kept in memory (templates and messages repeat across drafts)

Spans = Mapping[str, Sequence[tuple[int, int]]]


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


def view_texts(draft: str, span: tuple[int, int], message: str) -> tuple[str, str, str]:
    """The three texts embedded for the sentence at ``span``: itself, with its window, the
    customer's message."""
    s, e = span
    window = (draft[max(0, s - WINDOW_CHARS) : s] + " " + draft[s:e]).strip()
    return draft[s:e], window, (message.strip() or NO_MESSAGE)


def draft_view_texts(draft: str, message: str) -> tuple[str, str]:
    """The two texts embedded for the draft heads: the draft and the customer's message."""
    return draft.strip() or NO_MESSAGE, message.strip() or NO_MESSAGE


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
        """Every text :meth:`hits` embeds for ``draft`` (to prime a batch)."""
        out = [t for span in sentence_spans(draft) for t in view_texts(draft, span, message)]
        if self.draft_heads is not None:
            out += draft_view_texts(draft, message)
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` (cached)."""
        return self.vectors.embed(texts)

    def prime(self, texts: Sequence[str]) -> None:
        """Embed ``texts`` in one batch ahead of a batch of checks."""
        self.vectors.prime(texts)

    def clear_cache(self) -> None:
        """Forget every cached vector."""
        self.vectors.clear()

    def features(
        self, draft: str, spans: Sequence[tuple[int, int]], message: str
    ) -> tuple[np.ndarray, list[str]]:
        """The concatenated view embeddings ``(sentences, 3 * dim)`` and folded sentences."""
        views = [view_texts(draft, span, message) for span in spans]
        flat = [t for v in views for t in v]
        vectors = self.embed(flat).reshape(len(spans), len(VIEWS) * self.embedder.dim)
        return vectors, [fold(v[0]) for v in views]

    def draft_probabilities(
        self, draft: str, fired: Spans, cleared: Spans, message_injection: bool, message: str
    ) -> np.ndarray | None:
        """P(rule) of the whole draft ``(rules,)`` from the draft heads (None without them)."""
        if self.draft_heads is None:
            return None
        texts = draft_view_texts(draft, message)
        vectors = self.embed(list(texts)).reshape(1, len(DRAFT_VIEWS) * self.embedder.dim)
        extras = extras_for([(0, len(draft))], self.rules, fired, cleared, message_injection)
        return np.asarray(self.draft_heads.probabilities(vectors, [fold(draft)], extras)[0])

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
        whole = self.draft_probabilities(draft, fired, cleared, message_injection, message)
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
