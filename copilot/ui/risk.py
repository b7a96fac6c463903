"""What the risk strip above the draft reads from a :class:`DraftResult`: the detected topics
with their confidence, the emotion level, whether escalation cues fired, and the top source
with its score and the passage retrieval used. Pure functions (no streamlit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from copilot.text.pii import Vault


def topics(result: Any) -> list[tuple[str, float | None]]:
    """The detected topics, most likely first, with their probability (learned
    understanding); empty when the rules routed the draft."""
    understood = getattr(result, "understanding", None) or {}
    out: list[tuple[str, float | None]] = []
    for item in understood.get("topics") or []:
        if isinstance(item, Mapping) and item.get("id"):
            p = item.get("p")
            out.append((str(item["id"]), float(p) if isinstance(p, int | float) else None))
    return out


def emotion(result: Any) -> int | None:
    """The emotion level 0-3: the message flag's, else the learned understanding's."""
    levels = [f.level for f in result.flags if f.kind == "emotion" and isinstance(f.level, int)]
    if levels:
        return max(levels)
    understood = getattr(result, "understanding", None) or {}
    level = understood.get("emotion")
    return level if isinstance(level, int) else None


def escalation_cues(result: Any) -> list[str]:
    """The escalation cues that fired on the message (their details, no repeats)."""
    return list(dict.fromkeys(f.detail or f.kind for f in result.flags if f.kind == "escalation"))


def top_source(result: Any) -> dict[str, Any] | None:
    """The best retrieval hit among the cited sources (else the best hit at all): ``id``,
    ``title``, ``score``, ``passage`` (the snippet retrieval used; empty for drafts stored
    without one), ``cited``. None when retrieval found nothing and nothing is cited."""
    cited = {s["id"]: s for s in result.sources}
    hits = [h for h in result.retrieval if isinstance(h, Mapping) and h.get("id")]
    hit = next((h for h in hits if h["id"] in cited), hits[0] if hits else None)
    if hit is None:
        if not result.sources:
            return None
        first = result.sources[0]
        return {"id": first["id"], "title": first["title"], "score": None, "passage": "",
                "cited": True}  # fmt: skip
    score = hit.get("score")
    source = cited.get(hit["id"])
    return {
        "id": str(hit["id"]),
        "title": str(source["title"] if source else hit.get("title") or hit["id"]),
        "score": float(score) if isinstance(score, int | float) else None,
        "passage": str(hit.get("snippet") or ""),
        "cited": source is not None,
    }


def masked(text: str, customer_name: str | None = None) -> str:
    """``text`` with personal data (and the customer's name) replaced by placeholders."""
    return Vault.for_texts([text], customer_name).mask(text)
