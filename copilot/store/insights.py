"""What the knowledge-base owner and the compliance lead learn from the store (the Insights page):
knowledge gaps, guardrail hits per rule over time, and overrides with their reasons.

Pure functions over :meth:`SqlStore.insight_rows`; customer messages are shown masked
(:func:`copilot.text.pii.mask`), never raw.

* A **knowledge gap** is a draft whose retrieval abstained, whose best retrieval score was
  under ``low_score``, or whose sent reply changed at least ``heavy_edit`` of the draft's
  characters (edit distance / draft length). Gaps are grouped by topic (the closest article
  retrieval found, else the first cited one, else ``(none)``) and reply language.
* **Guardrail hits** count each rule once per draft (the draft-time violations) and once per
  send (the rules of the sent text) per UTC day.
* **Overrides** are sends whose text the guardrail rejected, with the agent's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from copilot.text.pii import mask

LOW_SCORE = 0.5
HEAVY_EDIT = 0.3
NO_TOPIC = "(none)"


def topic_of(result: Mapping[str, Any]) -> str:
    """The closest article retrieval found (kept also when it abstained), else the first
    cited source, else ``(none)``."""
    retrieval = result.get("retrieval") or []
    if retrieval and isinstance(retrieval[0], Mapping) and retrieval[0].get("id"):
        return str(retrieval[0]["id"])
    sources = result.get("sources") or []
    return str(sources[0]) if sources else NO_TOPIC


def top_score(result: Mapping[str, Any]) -> float | None:
    """The best retrieval score stored with the draft (None for drafts made before 0.2)."""
    retrieval = result.get("retrieval") or []
    if retrieval and isinstance(retrieval[0], Mapping):
        score = retrieval[0].get("score")
        if isinstance(score, int | float):
            return float(score)
    return None


def edit_share(row: Mapping[str, Any]) -> float | None:
    """The largest share of the draft changed in any send of it (None when never sent)."""
    distances = [s["edit_distance"] for s in row.get("sent") or [] if s.get("edit_distance")]
    if not (row.get("sent") or []):
        return None
    if not distances:
        return 0.0
    return max(distances) / max(1, len(str(row.get("draft") or "").strip()))


def gap_reasons(
    row: Mapping[str, Any], *, low_score: float = LOW_SCORE, heavy_edit: float = HEAVY_EDIT
) -> list[str]:
    """Why a draft counts as a knowledge gap: ``abstained``, ``low_score``, ``heavily_edited``."""
    result = row.get("result") or {}
    reasons = []
    if row.get("abstained"):
        reasons.append("abstained")
    score = top_score(result)
    if not row.get("abstained") and score is not None and score < low_score:
        reasons.append("low_score")
    share = edit_share(row)
    if share is not None and share >= heavy_edit:
        reasons.append("heavily_edited")
    return reasons


def knowledge_gaps(
    rows: Sequence[Mapping[str, Any]],
    *,
    low_score: float = LOW_SCORE,
    heavy_edit: float = HEAVY_EDIT,
    examples: int = 3,
) -> list[dict[str, Any]]:
    """Gaps grouped by (topic, language), the largest group first: counts per reason, the
    mean best score and up to ``examples`` masked customer messages."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        reasons = gap_reasons(row, low_score=low_score, heavy_edit=heavy_edit)
        if not reasons:
            continue
        result = row.get("result") or {}
        key = (topic_of(result), str(row.get("language") or ""))
        group = groups.setdefault(
            key,
            {
                "topic": key[0],
                "language": key[1],
                "drafts": 0,
                "abstained": 0,
                "low_score": 0,
                "heavily_edited": 0,
                "_scores": [],
                "examples": [],
            },
        )
        group["drafts"] += 1
        for reason in reasons:
            group[reason] += 1
        score = top_score(result)
        if score is not None:
            group["_scores"].append(score)
        if len(group["examples"]) < examples:
            group["examples"].append(mask(str(row.get("customer_message") or "")).text[:160])
    out = []
    for group in groups.values():
        scores = group.pop("_scores")
        group["mean_score"] = round(sum(scores) / len(scores), 3) if scores else None
        out.append(group)
    return sorted(out, key=lambda g: (-g["drafts"], g["topic"], g["language"]))


def guardrail_hits(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows ``{day, rule, drafts, sent}``: per UTC day and rule, the drafts whose draft-time
    check flagged it and the sends whose text broke it; sorted by day then rule."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        day = str(row.get("created_at") or "")[:10]
        rules = {
            str(v.get("rule"))
            for v in (row.get("result") or {}).get("violations") or []
            if isinstance(v, Mapping) and v.get("rule")
        }
        for rule in rules:
            counts.setdefault((day, rule), {"drafts": 0, "sent": 0})["drafts"] += 1
        for sent in row.get("sent") or []:
            sent_day = str(sent.get("created_at") or day)[:10]
            for rule in dict.fromkeys(sent.get("rules") or []):
                counts.setdefault((sent_day, rule), {"drafts": 0, "sent": 0})["sent"] += 1
    return [{"day": day, "rule": rule, **n} for (day, rule), n in sorted(counts.items())]


def overrides(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sends of a rejected text, newest first: when, agent, language, rules, reason, draft."""
    out = []
    for row in rows:
        for sent in row.get("sent") or []:
            if sent.get("verdict") == "reject" or sent.get("override_reason"):
                out.append(
                    {
                        "created_at": sent.get("created_at"),
                        "agent": sent.get("agent") or "",
                        "language": row.get("language"),
                        "rules": list(sent.get("rules") or []),
                        "reason": sent.get("override_reason") or "",
                        "draft_id": row.get("id"),
                    }
                )
    return sorted(out, key=lambda o: str(o["created_at"] or ""), reverse=True)
