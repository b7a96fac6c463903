"""Which reply the offline drafter writes: the scenario (FAQ, playbook, abstain), the articles used and the facts picked from them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from copilot.kb.articles import Article
from copilot.retrieval.types import Hit

TOPICAL_PLAYBOOKS = ("playbook/liquidation", "playbook/fee-dispute", "playbook/technical-fault")


ESCALATION = "playbook/escalation"
TECHNICAL = "playbook/technical-fault"


ANGRY = "playbook/angry-customer"


MAX_FACTS = 3


MIN_FAQ_SCORE = 0.5  # an FAQ below this (calibrated) score is not used for facts


CLOSE_SCORE = 0.15  # playbooks this close in score are ordered by their "when" section


# Without cues in the message, a topical playbook ranked first must beat the best FAQ by
# this much (calibrated score); chosen on evals/retrieval/queries_v1 (docs/drafting.md).
PLAYBOOK_MARGIN = 0.1


Lookup = Callable[[str, str], Article | None]


_WORD = re.compile(r"[a-z0-9]+")


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")


_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "with",
        "that",
        "this",
        "have",
        "has",
        "are",
        "was",
        "not",
        "but",
        "can",
        "how",
        "what",
        "why",
        "when",
        "where",
        "from",
        "into",
        "any",
        "all",
        "our",
        "out",
        "get",
        "got",
        "its",
        "it's",
        "been",
        "did",
        "does",
        "just",
        "still",
    ]
)


def _terms(text: str) -> set[str]:
    """Lower-case words (3+ letters) and CJK character bigrams, for overlap scoring."""
    low = text.lower()
    terms = {w for w in _WORD.findall(low) if len(w) >= 3 and w not in _STOP}
    for run in _CJK.findall(low):
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    return terms


def pick_facts(article: Article, message: str, limit: int = MAX_FACTS) -> list[str]:
    """Up to ``limit`` key facts of ``article`` most related to ``message``, in article order."""
    facts = article.bullets("key-facts")
    if len(facts) <= limit:
        return facts
    wanted = _terms(message)
    scored = sorted(range(len(facts)), key=lambda i: (-len(_terms(facts[i]) & wanted), i))
    return [facts[i] for i in sorted(scored[:limit])]


def choose_scenario(
    article_ids: Sequence[str],
    emotion: int,
    escalation: bool,
    *,
    evidence: Iterable[str] = (),
    scores: Mapping[str, float] | None = None,
) -> str | None:
    """The playbook for the situation, or None for a plain FAQ answer.

    ``article_ids`` are the retrieved articles, best first, without repeats;
    ``evidence`` the topical playbooks whose cues the message carries
    (:meth:`Phrases.evidence`); ``scores`` the calibrated score of each article.

    A topical playbook needs evidence of its situation: its cues in the message
    (the best-ranked retrieved playbook with cues wins), or rank one with a margin of
    at least ``PLAYBOOK_MARGIN`` over the best FAQ (for an upset customer, no FAQ
    scoring higher); the technical-fault playbook only on its cues. Being ranked first is not enough: a phishing or fee question
    that merely resembles a liquidation complaint gets its FAQ.
    """
    if escalation:
        return ESCALATION
    cued = set(evidence)
    for aid in article_ids:
        if aid in TOPICAL_PLAYBOOKS and aid in cued:
            return aid
    top3 = list(article_ids[:3])
    first = top3[0] if top3 else None
    # the technical-fault reply asks for the error, device and app version: only for a
    # message that tells of a fault (its cues), never for a how-to question that resembles one
    if first in TOPICAL_PLAYBOOKS and first != TECHNICAL and scores is not None:
        best_faq = max((v for a, v in scores.items() if a.startswith("faq/")), default=0.0)
        margin = scores.get(first, 0.0) - best_faq
        if margin >= PLAYBOOK_MARGIN or (emotion >= 1 and margin >= 0):
            return first
    if (emotion >= 2 and ANGRY in top3) or emotion >= 3 or (first == ANGRY and emotion >= 1):
        return ANGRY
    if first == ESCALATION and emotion >= 2:
        return ESCALATION
    return None


def rank_articles(hits: Sequence[Hit], message: str, lookup: Lookup, language: str) -> list[str]:
    """Article ids best first; close topical playbooks are re-ordered by their "when" section.

    Retrieval sometimes puts two playbooks within a few points of each other
    (a liquidation complaint that also mentions money); the playbook whose
    "when to use" text shares more terms with the message goes first.
    """
    best: dict[str, float] = {}
    for h in hits:
        best.setdefault(h.article_id, float(h.score))
    ids = list(best)
    topical = [a for a in ids[:3] if a in TOPICAL_PLAYBOOKS]
    if len(topical) < 2:
        return ids
    lead = max(best[a] for a in topical)
    close = [a for a in topical if lead - best[a] <= CLOSE_SCORE]
    if len(close) < 2:
        return ids
    wanted = _terms(message)

    def overlap(aid: str) -> int:
        art = lookup(aid, language)
        when = art.section("when") if art is not None else None
        text = f"{art.title} {when.text}" if art is not None and when is not None else ""
        return len(_terms(text) & wanted)

    ordered = sorted(close, key=lambda a: (-overlap(a), ids.index(a)))
    slots = sorted(ids.index(a) for a in close)
    for slot, aid in zip(slots, ordered, strict=True):
        ids[slot] = aid
    return ids
