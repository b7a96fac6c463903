"""Judge an eval run: against thresholds (CI gates) and against a baseline run (per-case diff).

Gates: ``METRIC[@LANG]=VALUE`` holds when the mean of METRIC (overall or in LANG) is at
least VALUE. Diff: per-case score deltas; a drop over the threshold is a regression.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.text.language import LANGUAGES

DEFAULT_THRESHOLD = 0.05
#: Metrics whose per-case deltas are reported next to the score delta.
DELTA_METRICS = ("semantic", "chrf", "must_include", "citations", "verdict")


def load_baseline(folder: Path) -> dict[str, Any]:
    """The ``report.json`` of an earlier run (folder or file); a clear error if it is unusable."""
    path = folder / "report.json" if folder.is_dir() else folder
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CopilotError(
            f"--baseline {folder}: no report.json there (run eval with --report first)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CopilotError(f"--baseline {path}: not a readable report: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise CopilotError(f"--baseline {path}: not an eval report (no 'cases' list)")
    return data


def _delta(new: Any, old: Any) -> float | None:
    if isinstance(new, int | float) and isinstance(old, int | float):
        return round(float(new) - float(old), 4)
    return None


def compare(
    cases: Sequence[dict[str, Any]],
    baseline: dict[str, Any],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    aggregates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Deltas of ``cases`` against ``baseline``; a score drop over ``threshold`` is a regression."""
    old = {c["id"]: c for c in baseline["cases"] if isinstance(c, dict) and "id" in c}
    new = {c["id"]: c for c in cases}
    rows = []
    for cid, case in new.items():
        if cid not in old:
            continue
        prev = old[cid]
        delta = _delta(case["score"], prev.get("score"))
        rows.append(
            {
                "id": cid,
                "language": case.get("language"),
                "category": case.get("category"),
                "score": case["score"],
                "baseline_score": prev.get("score"),
                "delta": delta,
                "regression": delta is not None and delta < -threshold,
                "improvement": delta is not None and delta > threshold,
                "metric_deltas": {
                    k: _delta(case["metrics"].get(k), prev.get("metrics", {}).get(k))
                    for k in DELTA_METRICS
                },
            }
        )
    rows.sort(key=lambda r: (r["delta"] is None, r["delta"] if r["delta"] is not None else 0.0))
    out: dict[str, Any] = {
        "baseline": {
            k: baseline.get("meta", {}).get(k)
            for k in ("run_key", "git_commit", "started_at", "backend", "model", "prompt_versions")
        },
        "threshold": threshold,
        "cases": rows,
        "regressions": [r["id"] for r in rows if r["regression"]],
        "improvements": [r["id"] for r in rows if r["improvement"]],
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
    }
    if aggregates is not None and isinstance(baseline.get("aggregates"), dict):
        out["aggregates"] = _aggregate_deltas(aggregates, baseline["aggregates"])
    return out


def _aggregate_deltas(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    def means(stats: dict[str, Any] | None) -> dict[str, Any]:
        return dict((stats or {}).get("mean", {}))

    def diff(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
        ma, mb = means(a), means(b)
        return {
            k: {"value": ma.get(k), "baseline": mb.get(k), "delta": _delta(ma.get(k), mb.get(k))}
            for k in dict.fromkeys([*ma, *mb])
        }

    langs = sorted(set(now.get("by_language", {})) | set(before.get("by_language", {})))
    return {
        "overall": diff(now.get("overall"), before.get("overall")),
        "by_language": {
            lang: diff(now["by_language"].get(lang), before.get("by_language", {}).get(lang))
            for lang in langs
        },
    }


# ---- gates ---------------------------------------------------------------------
GATEABLE = (
    "score",
    "semantic",
    "semantic_cos",
    "chrf",
    "must_include",
    "must_not_include",
    "citation_recall",
    "citation_precision",
    "citations",
    "verdict",
)


@dataclass(frozen=True)
class Gate:
    """``METRIC[@LANG]=VALUE``: the mean of METRIC (overall or in LANG) must be at least VALUE."""

    metric: str
    threshold: float
    language: str | None = None

    @property
    def label(self) -> str:
        """``score`` or ``score@ja``."""
        return self.metric + (f"@{self.language}" if self.language else "")


def parse_gate(text: str, extra_metrics: Iterable[str] = ()) -> Gate:
    """Parse ``score=0.6`` or ``chrf@ja=30``; unknown metric or language -> exit 2 naming it."""
    name, sep, value = text.partition("=")
    metric, _, language = name.strip().partition("@")
    known = [*GATEABLE, *extra_metrics]
    if not sep:
        raise CopilotError(f"--fail-under {text!r}: expected METRIC=VALUE, e.g. score=0.6")
    if metric not in known:
        raise CopilotError(f"--fail-under: unknown metric {metric!r}; known: {', '.join(known)}")
    if language and language not in LANGUAGES:
        raise CopilotError(
            f"--fail-under {text!r}: unknown language {language!r}; use {', '.join(LANGUAGES)}"
        )
    try:
        threshold = float(value)
    except ValueError:
        raise CopilotError(f"--fail-under {text!r}: {value!r} is not a number") from None
    return Gate(metric, threshold, language or None)


def check_gates(gates: Sequence[Gate], aggregates: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per gate: label, value, threshold, ok and shortfall."""
    rows = []
    for gate in gates:
        stats = (
            aggregates["by_language"].get(gate.language) if gate.language else aggregates["overall"]
        )
        value = None if stats is None else stats["mean"].get(gate.metric)
        ok = value is not None and value >= gate.threshold
        rows.append(
            {
                "gate": gate.label,
                "metric": gate.metric,
                "language": gate.language,
                "threshold": gate.threshold,
                "value": value,
                "ok": ok,
                "shortfall": None if value is None else round(max(0.0, gate.threshold - value), 4),
            }
        )
    return rows
