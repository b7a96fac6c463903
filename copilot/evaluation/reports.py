"""Eval reports: ``report.json``, ``report.md`` and a self-contained ``report.html`` (inline SVG).

The HTML has no scripts and loads nothing from the network: charts are inline
SVG, styles are inline CSS, so the file can be attached to a ticket or CI run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot.evaluation.report_html import render_html
from copilot.evaluation.report_tables import (
    COLUMNS,
    aggregate_rows,
    case_notes,
    fmt,
    meta_rows,
    signed,
)
from copilot.jsonl import atomic_write_text


def write_reports(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write the three report files into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.json", folder / "report.md", folder / "report.html"]
    texts = [
        json.dumps(report, ensure_ascii=False, indent=1),
        render_markdown(report),
        render_html(report),
    ]
    for path, text in zip(paths, texts, strict=True):
        atomic_write_text(path, text)
    return paths


# ---- Markdown ----------------------------------------------------------------
def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def clean(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (for PR comments and terminals)."""
    meta = report["meta"]
    lines = [f"# Eval report: {Path(str(meta['golden']['path'])).name}", ""]
    lines += [*_md_table(["", ""], meta_rows(meta)), ""]
    if report.get("gates"):
        lines += ["## Gates", ""]
        lines += [
            *_md_table(
                ["gate", "value", "threshold", "result"],
                [
                    [
                        g["gate"],
                        fmt(g["value"]),
                        fmt(g["threshold"]),
                        "pass" if g["ok"] else f"FAIL (short by {fmt(g['shortfall'])})",
                    ]
                    for g in report["gates"]
                ],
            ),
            "",
        ]
    lines += ["## Aggregates (means)", ""]
    lines += [
        *_md_table(
            ["group", "n", *(h for _, h, _ in COLUMNS), "policy fails"],
            [
                [
                    name,
                    str(s["n"]),
                    *(fmt(s["mean"].get(k), d) for k, _, d in COLUMNS),
                    str(s.get("policy_failures", 0)),
                ]
                for name, s in aggregate_rows(report)
            ],
        ),
        "",
    ]
    comparison = report.get("comparison")
    if comparison:
        lines += _md_comparison(comparison)
    lines += ["## Cases (worst first)", ""]
    lines += _md_table(
        [
            "id",
            "lang",
            "category",
            "score",
            "semantic",
            "chrF",
            "must_incl",
            "citations",
            "verdict",
            "notes",
        ],
        [
            [
                c["id"],
                c["language"],
                c["category"],
                fmt(c["score"]),
                fmt(c["metrics"].get("semantic")),
                fmt(c["metrics"].get("chrf"), 1),
                fmt(c["metrics"].get("must_include")),
                fmt(c["metrics"].get("citations")),
                f"{c.get('verdict') or '-'}/{c.get('expect_verdict')}",
                case_notes(c),
            ]
            for c in sorted(report["cases"], key=lambda c: c["score"])
        ],
    )
    return "\n".join(lines) + "\n"


def _md_comparison(comp: dict[str, Any]) -> list[str]:
    lines = [
        "## Compared with baseline",
        "",
        f"Baseline run {comp['baseline'].get('run_key')} (commit {comp['baseline'].get('git_commit')}); "
        f"regression = score drop over {comp['threshold']}.",
        "",
        f"- regressions: {len(comp['regressions'])}; improvements: {len(comp['improvements'])}",
        f"- added cases: {', '.join(comp['added']) or 'none'}",
        f"- removed cases: {', '.join(comp['removed']) or 'none'}",
        "",
    ]
    agg = comp.get("aggregates")
    if agg:
        groups = [
            ("overall", agg["overall"]),
            *((f"lang {k}", v) for k, v in agg["by_language"].items()),
        ]
        lines += [
            *_md_table(
                ["group", "score", "delta", "semantic", "delta", "chrF", "delta"],
                [
                    [
                        name,
                        fmt(d.get("score", {}).get("value")),
                        signed(d.get("score", {}).get("delta")),
                        fmt(d.get("semantic", {}).get("value")),
                        signed(d.get("semantic", {}).get("delta")),
                        fmt(d.get("chrf", {}).get("value"), 1),
                        signed(d.get("chrf", {}).get("delta"), 1),
                    ]
                    for name, d in groups
                ],
            ),
            "",
        ]
    regressed = [r for r in comp["cases"] if r["regression"]]
    if regressed:
        lines += ["### Regressions", ""]
        lines += [
            *_md_table(
                ["id", "lang", "baseline", "now", "delta"],
                [
                    [
                        r["id"],
                        str(r["language"]),
                        fmt(r["baseline_score"]),
                        fmt(r["score"]),
                        signed(r["delta"]),
                    ]
                    for r in regressed
                ],
            ),
            "",
        ]
    return lines
