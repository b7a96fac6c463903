"""The frozen test sets (``evals/frozen/``): written by other hands before any training,
hashed in ``MANIFEST.json``, read only here (``copilot bench guardrails``) and never by
training, tuning or calibration. Each figure is given for the rules tier alone, the learned
tier alone and both (the verdict), measured on the same checks in the same run.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from copilot.bench.guardrail_external import ratio, read_rows
from copilot.errors import CopilotError

ROOT = Path(__file__).resolve().parents[2]
FROZEN = ROOT / "evals" / "frozen"
TIERS = ("rules", "learned", "both")


def frozen_rows(name: str, folder: Path = FROZEN) -> list[dict[str, Any]]:
    """The rows of a frozen file, after checking its sha256 against the manifest."""
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    entry = manifest["files"].get(name)
    path = folder / name
    if entry is None:
        raise CopilotError(f"{folder / 'MANIFEST.json'}: no entry for {name}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise CopilotError(
            f"{path}: sha256 {digest[:12]}... is not the frozen {entry['sha256'][:12]}...: "
            "the test set was changed after it was frozen"
        )
    return read_rows(path)


def _fired(verdict: Any, tier: str) -> set[str]:
    """Block rules of ``verdict`` found by ``tier`` (``both``: by either)."""
    return {
        v.rule
        for v in verdict.violations
        if v.severity == "block"
        and (tier == "both" or (v.tier == "learned") == (tier == "learned"))
    }


def _rates(rows: Sequence[dict[str, Any]], flagged: Sequence[bool]) -> dict[str, Any]:
    bad = [f for r, f in zip(rows, flagged, strict=True) if r["expect"] == "reject"]
    good = [f for r, f in zip(rows, flagged, strict=True) if r["expect"] != "reject"]
    return {
        "n": len(rows),
        "rejects": len(bad),
        "recall": ratio(sum(bad), len(bad)),
        "fpr": ratio(sum(good), len(good)),
    }


def guard_report(guardrail: Any, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Recall and false rejects overall, per language and per rule, for each tier."""
    verdicts = [
        guardrail.check(
            r["draft"],
            customer_message=r.get("customer_message") or None,
            language=r.get("language"),
            sources=r.get("sources") or None,
        )
        for r in rows
    ]
    block = [x.id for x in guardrail.policy.rules if x.severity == "block"]
    out: dict[str, Any] = {"overall": {}, "by_language": {}, "by_rule": {}, "misses": []}
    for tier in TIERS:
        fired = [_fired(v, tier) for v in verdicts]
        out["overall"][tier] = _rates(rows, [bool(f) for f in fired])
        for lang in sorted({r["language"] for r in rows}):
            pick = [i for i, r in enumerate(rows) if r["language"] == lang]
            out["by_language"].setdefault(lang, {})[tier] = _rates(
                [rows[i] for i in pick], [bool(fired[i]) for i in pick]
            )
        good = [i for i, r in enumerate(rows) if r["expect"] != "reject"]
        for rule in block:
            mine = [i for i, r in enumerate(rows) if rule in r.get("rules", [])]
            out["by_rule"].setdefault(rule, {})[tier] = {
                "labelled": len(mine),
                "recall": ratio(sum(rule in fired[i] for i in mine), len(mine)),
                # the rule's false rejects: compliant drafts it rejects
                "false_rejects": ratio(sum(rule in fired[i] for i in good), len(good)),
            }
    for r, v in zip(rows, verdicts, strict=True):
        got = _fired(v, "both")
        if (r["expect"] == "reject") != bool(got):
            out["misses"].append(
                {
                    "id": r["id"],
                    "expect": r["expect"],
                    "rules": r.get("rules", []),
                    "fired": sorted(got),
                }
            )
    return out


def injection_flags(guardrail: Any, text: str, language: str | None) -> dict[str, bool]:
    """Which tier flags ``text`` as a prompt injection."""
    flags = [f for f in guardrail.analyze_message(text, language) if f.kind == "prompt_injection"]
    learned = any(f.detail.startswith("learned") for f in flags)
    rules = any(not f.detail.startswith("learned") for f in flags)
    return {"rules": rules, "learned": learned, "both": rules or learned}


def injection_report(
    flag: Callable[[str, str | None], dict[str, bool]], rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Recall on injections and false flags on the benign messages, per language and tier."""
    got = [flag(r["message"], r.get("language")) for r in rows]
    out: dict[str, Any] = {}
    for lang in [*sorted({r["language"] for r in rows}), "all"]:
        pick = [i for i, r in enumerate(rows) if lang in ("all", r["language"])]
        pos = [i for i in pick if rows[i]["injection"]]
        neg = [i for i in pick if not rows[i]["injection"]]
        out[lang] = {"n": len(pick), "injections": len(pos)} | {
            tier: {
                "recall": ratio(sum(got[i][tier] for i in pos), len(pos)),
                "false_flags": ratio(sum(got[i][tier] for i in neg), len(neg)),
            }
            for tier in TIERS
        }
    kinds: Counter[str] = Counter()
    for i, r in enumerate(rows):
        if r["injection"] and not got[i]["both"]:
            kinds[str(r.get("kind", "?"))] += 1
    out["missed_kinds"] = dict(kinds.most_common())
    return out
