"""Shared by the Markdown and HTML eval reports: number formats, columns and the rows of each table."""

from __future__ import annotations

import json
from typing import Any

LANG_COLOURS = {"en": "#4e79a7", "ja": "#f28e2b", "zh": "#59a14f"}


#: Columns of the aggregate tables: (metric key, header, decimals).
COLUMNS = (
    ("score", "score", 3),
    ("semantic", "semantic", 3),
    ("chrf", "chrF", 1),
    ("must_include", "must_include", 3),
    ("must_not_include", "must_not", 3),
    ("citations", "citations", 3),
    ("verdict", "verdict", 3),
    ("length_ratio", "len ratio", 2),
)


#: Metrics drawn as per-language histograms: (key, label, maximum of the axis).
CHART_METRICS = (
    ("score", "score", 1.0),
    ("semantic", "semantic similarity (rescaled)", 1.0),
    ("chrf", "chrF", 100.0),
    ("must_include", "must_include coverage", 1.0),
    ("citations", "citation F1", 1.0),
    ("verdict", "verdict agreement", 1.0),
)


def fmt(value: Any, decimals: int = 3) -> str:
    """A number with ``decimals`` places, ``-`` for missing values."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:.{decimals}f}"
    return str(value)


def signed(value: Any, decimals: int = 3) -> str:
    """A delta with its sign."""
    return "-" if value is None else f"{value:+.{decimals}f}"


def aggregate_rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    agg = report["aggregates"]
    rows = [("overall", agg["overall"])]
    rows += [(f"lang {k}", v) for k, v in agg["by_language"].items()]
    rows += [(f"cat {k}", v) for k, v in agg["by_category"].items()]
    return rows


def meta_rows(meta: dict[str, Any]) -> list[tuple[str, str]]:
    golden = meta.get("golden", {})
    drafts = meta.get("drafts") or {}
    return [
        (
            "golden set",
            f"{golden.get('path')} ({golden.get('cases')} cases, sha256 {str(golden.get('sha256'))[:12]})",
        ),
        (
            "drafts",
            f"{drafts.get('path')} (sha256 {str(drafts.get('sha256'))[:12]})"
            if drafts
            else "generated",
        ),
        ("backend / model", f"{meta.get('backend')} / {meta.get('model') or '-'}"),
        ("prompt versions", ", ".join(meta.get("prompt_versions") or []) or "-"),
        ("KB version", str(meta.get("kb_version") or "-")),
        ("git commit", str(meta.get("git_commit"))),
        ("run key", str(meta.get("run_key"))),
        ("started / finished", f"{meta.get('started_at')} / {meta.get('finished_at')}"),
        (
            "metrics version",
            f"{meta.get('metrics_version')} (weights {json.dumps(report_weights(meta))})",
        ),
    ]


def report_weights(meta: dict[str, Any]) -> dict[str, float]:
    """The score weights recorded in the run metadata."""
    return dict(meta.get("weights") or {})


def case_notes(case: dict[str, Any]) -> str:
    notes = []
    if case.get("missing"):
        notes.append("missing: " + "; ".join(case["missing"]))
    if case.get("forbidden_hits"):
        notes.append("forbidden: " + "; ".join(case["forbidden_hits"]))
    if case.get("violations"):
        notes.append("violations: " + ", ".join(case["violations"]))
    return " / ".join(notes)
