"""Learned message understanding: what a customer message (with its thread and the agent's
note) is about, what situation it reveals and how upset the customer is.

One set of heads (:mod:`copilot.heads`) over two USE-m3 embeddings, the message and its
context (the thread's last turns and the agent note), and the message's character n-grams:

* ``topics``: multi-label over the 20 article ids plus ``greeting_or_vague`` and
  ``out_of_scope``; the primary topic is the most probable one, the others are kept when
  their probability reaches their threshold;
* ``flags``: ``account_compromised``, ``asks_for_prediction_or_advice``, ``accusation``,
  ``refund_or_compensation_demand``, ``deadline``;
* ``emotion`` 0-3 from three ordinal heads (level >= 1, >= 2, >= 3); an accusation or a
  refund demand is at least 2 (the labelling rule).

Probabilities are calibrated (a Platt scaling of each head on out-of-fold scores, folded
into the weights). The weights (``models/understand.npz`` + ``.json``) carry the sha256 of
the training data; weights made from other data, changed or trained on another embedder
are refused (:class:`~copilot.heads.model.WeightsError`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from copilot.embed.base import Embedder
from copilot.heads.features import fold
from copilot.heads.model import HeadSet, WeightsError
from copilot.understand.messages import FLAGS, OUT_OF_SCOPE, TOPICS, VAGUE

FOLLOW_UP_TURNS = 3  # earlier customer turns a vague follow-up looks back through
WEIGHTS = "understand"  # models/understand.npz + understand.json
VIEWS = ("message", "context")
EMOTION_HEADS = ("emotion>=1", "emotion>=2", "emotion>=3")
LABELS = (*TOPICS, *FLAGS, *EMOTION_HEADS)
NO_CONTEXT = "-"  # what the context view embeds when there is no thread and no note
CONTEXT_TURNS = 3  # the thread's last turns the context view reads
CONTEXT_CHARS = 600  # and at most this many characters of them (the most recent)
CACHE_SIZE = 4096
# the labelling rule "the matter first": an escalation or an upset customer's playbook ranked
# first yields to the next topic when it is an article of its own at P >= MATTER_FIRST (on
# the training data's dev split, stop 27: top topic 78.8 -> 80.3%; docs/understanding.md)
UPSET_TOPICS = ("playbook/escalation", "playbook/angry-customer")
MATTER_FIRST = 0.3


class TurnLike(Protocol):
    """A thread turn: ``draft.types.Turn`` or ``messages.ThreadTurn``."""

    @property
    def role(self) -> str: ...

    @property
    def text(self) -> str: ...


def context_text(thread: Sequence[TurnLike] = (), agent_note: str | None = None) -> str:
    """The context view: the thread's last turns (oldest first) and the agent note."""
    parts = [t.text.strip() for t in list(thread)[-CONTEXT_TURNS:] if t.text.strip()]
    if agent_note and agent_note.strip():
        parts.append(agent_note.strip())
    text = "\n".join(parts)[-CONTEXT_CHARS:].strip()
    return text or NO_CONTEXT


@dataclass(frozen=True)
class Understanding:
    """What the model read in one message; probabilities are calibrated."""

    topics: tuple[tuple[str, float], ...]  # detected topics, primary first, with P(topic)
    flags: tuple[tuple[str, float], ...]  # detected situation flags with P(flag)
    emotion: int
    probabilities: dict[str, float] = field(default_factory=dict, compare=False)
    inherited: bool = False  # the topics come from the thread (a short follow-up)
    # the topics in probability order when the matter-first rule re-ordered them, else None
    ranked: tuple[tuple[str, float], ...] | None = None

    def by_probability(self) -> Understanding:
        """This reading with its topics in probability order (the drafting's routes read
        the model's ranking; the matter-first order is what the message is about)."""
        if self.ranked is None:
            return self
        return replace(self, topics=self.ranked, ranked=None)

    @property
    def primary(self) -> str:
        """The main topic."""
        return self.topics[0][0]

    @property
    def confidence(self) -> float:
        """P(primary topic)."""
        return self.topics[0][1]

    def has(self, flag: str) -> bool:
        """True when ``flag`` was detected."""
        return any(f == flag for f, _ in self.flags)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (probabilities rounded to 3 places)."""
        return {
            "topics": [{"id": t, "p": round(p, 3)} for t, p in self.topics],
            "flags": [{"flag": f, "p": round(p, 3)} for f, p in self.flags],
            "emotion": self.emotion,
            "inherited": self.inherited,
        }


def rank_topics(p: dict[str, float]) -> list[str]:
    """The topics in ``p``, most probable first (ties in ``TOPICS`` order)."""
    return sorted((t for t in TOPICS if t in p), key=lambda t: (-p[t], TOPICS.index(t)))


def decide(heads: HeadSet, probs: np.ndarray, language: str) -> Understanding:
    """The decisions for one row of probabilities ``(labels,)`` in ``language``."""
    p = {label: float(probs[i]) for i, label in enumerate(heads.labels)}
    ranked = rank_topics(p)
    primary = ranked[0]
    topics = [(primary, p[primary])]
    if primary not in ("greeting_or_vague", "out_of_scope"):
        for t in ranked[1:3]:
            if t not in ("greeting_or_vague", "out_of_scope") and p[t] >= heads.threshold(
                t, language
            ):
                topics.append((t, p[t]))
    flags = tuple((f, p[f]) for f in FLAGS if p[f] >= heads.threshold(f, language))
    steps = [p[h] >= heads.threshold(h, language) for h in EMOTION_HEADS]
    emotion = 0
    for reached in steps:  # ordinal: a level counts only when every lower one does
        if not reached:
            break
        emotion += 1
    if any(f in ("accusation", "refund_or_compensation_demand") for f, _ in flags):
        emotion = max(emotion, 2)
    matter = _matter(ranked, p)
    if matter is None:
        return Understanding(tuple(topics), flags, emotion, p)
    first = [(matter, p[matter]), topics[0]]
    ordered = first + [t for t in topics[1:] if t[0] != matter]
    return Understanding(tuple(ordered), flags, emotion, p, ranked=tuple(topics))


def _matter(ranked: Sequence[str], p: dict[str, float]) -> str | None:
    """The topic that goes first under the matter-first rule, or None (see MATTER_FIRST)."""
    if ranked[0] not in UPSET_TOPICS:
        return None
    for t in ranked[1:3]:
        if t in (VAGUE, OUT_OF_SCOPE) or t in UPSET_TOPICS:
            continue
        return t if p[t] >= MATTER_FIRST else None
    return None


class MessageModel:
    """The trained heads plus the embedder they were trained on; thread-safe."""

    def __init__(self, heads: HeadSet, embedder: Embedder) -> None:
        self.heads = heads
        self.embedder = embedder
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    @classmethod
    def load(
        cls, folder: Path, name: str = WEIGHTS, *, data_sha256: str | None = None
    ) -> MessageModel:
        """Load and verify the weights. ``data_sha256`` (of the training files, when they are
        at hand): weights trained on other data are stale and refused."""
        from copilot.embed.registry import get_embedder

        heads = HeadSet.load(folder, name)
        meta = folder / f"{name}.json"
        if heads.labels != LABELS or tuple(heads.manifest.get("views", ())) != VIEWS:
            raise WeightsError(
                f"{meta}: made for other labels or views; retrain with "
                "`python -m copilot understand train`"
            )
        trained_on = heads.manifest.get("data", {}).get("sha256")
        if data_sha256 is not None and trained_on != data_sha256:
            raise WeightsError(
                f"{meta}: stale: trained on data {str(trained_on)[:12]}..., but the labelled "
                f"messages are now {data_sha256[:12]}...; retrain with "
                "`python -m copilot understand train`"
            )
        embedder = get_embedder(heads.embedder)
        if heads.embedder_model != embedder.model_id:
            raise WeightsError(
                f"{meta}: trained on {heads.embedder_model}, but the installed "
                f"{embedder.name} model is {embedder.model_id}; retrain the heads"
            )
        return cls(heads, embedder)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``, from a small in-memory cache."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        fresh = self.embedder.passages(missing, use_cache=False) if missing else None
        with self._lock:
            known = dict(self._vectors)
            if fresh is not None:
                for text, vec in zip(missing, fresh, strict=True):
                    self._vectors[text] = vec
                    known[text] = vec
                while len(self._vectors) > CACHE_SIZE:
                    self._vectors.popitem(last=False)
        return np.vstack([known[t] for t in texts])

    def probabilities(self, rows: Sequence[tuple[str, str]]) -> np.ndarray:
        """P(label) ``(rows, labels)`` for (message, context) pairs."""
        if not rows:
            return np.zeros((0, len(self.heads.labels)), np.float32)
        flat = [t for pair in rows for t in pair]
        vectors = self.embed(flat).reshape(len(rows), len(VIEWS) * self.embedder.dim)
        return self.heads.probabilities(vectors, [fold(m) for m, _ in rows])

    def understand(
        self,
        message: str,
        language: str,
        thread: Sequence[TurnLike] = (),
        agent_note: str | None = None,
    ) -> Understanding:
        """What ``message`` (in ``language``, with its thread and the agent note) says."""
        now = self.probabilities(
            [(message.strip() or NO_CONTEXT, context_text(thread, agent_note))]
        )
        u = decide(self.heads, now[0], language)
        earlier = [t.text for t in thread if t.role == "customer" and t.text.strip()]
        if u.primary != VAGUE or u.flags or not earlier:
            return u
        # a follow-up with nothing answerable of its own ("Any update???"): the thread's topic,
        # from the latest earlier customer turn that has one ("OK, I'll wait" has none)
        for text in reversed(earlier[-FOLLOW_UP_TURNS:]):
            before = self.probabilities([(text.strip(), context_text(thread[:-1], agent_note))])
            asked = decide(self.heads, before[0], language)
            if asked.primary not in (VAGUE, OUT_OF_SCOPE):
                return Understanding(
                    asked.topics,
                    asked.flags,
                    max(u.emotion, asked.emotion),
                    u.probabilities,
                    True,
                    asked.ranked,
                )
        return u
