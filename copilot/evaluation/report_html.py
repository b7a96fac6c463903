"""The HTML eval report: tables and inline SVG charts, no scripts, no external files."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot.evaluation.report_tables import (
    CHART_METRICS,
    COLUMNS,
    LANG_COLOURS,
    aggregate_rows,
    case_notes,
    fmt,
    meta_rows,
    signed,
)

# ---- HTML ----------------------------------------------------------------------
_CSS = "".join(
    (
        'body{font-family:system-ui,-apple-system,"Noto Sans CJK JP","Noto Sans CJK SC",sans-serif;',
        "margin:24px;color:#222}",
        "table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}",
        "td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}",
        "th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}",
        ".fail{color:#b00020;font-weight:600}.ok{color:#1b7f3b}",
        ".charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #eee;padding:6px}",
        "details{max-width:640px}pre{white-space:pre-wrap}",
        ".legend span{display:inline-block;margin-right:12px}",
        ".swatch{display:inline-block;width:10px;height:10px;margin-right:4px}",
    )
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _h_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table from a plain-text header and rows of ready-made ``<td>``/``<th>`` cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header) if any(header) else ""
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _td(value: Any, decimals: int = 3, cls: str = "num") -> str:
    return f'<td class="{cls}">{_e(fmt(value, decimals))}</td>'


def _score_td(value: float) -> str:
    hue = int(120 * max(0.0, min(1.0, value)))
    return f'<td class="num" style="background:hsl({hue},70%,85%)">{value:.3f}</td>'


def _svg_open(width: float, height: float, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{_e(label)}">'
    )


def histogram_svg(
    cases: Sequence[dict[str, Any]], key: str, label: str, top: float, bins: int = 10
) -> str:
    """Grouped histogram of one metric, one bar colour per language."""
    width, height, pad = 330, 150, 24
    langs = sorted({c["language"] for c in cases})
    counts = {lang: [0] * bins for lang in langs}
    for c in cases:
        value = c["score"] if key == "score" else c["metrics"].get(key)
        if value is None:
            continue
        b = min(bins - 1, max(0, int(float(value) / top * bins)))
        counts[c["language"]][b] += 1
    peak = max([1, *(n for row in counts.values() for n in row)])
    slot = (width - 2 * pad) / bins
    bar = slot / max(1, len(langs)) - 1
    parts = [
        _svg_open(width, height + 30, label),
        f'<text x="{pad}" y="12" font-size="12">{_e(label)}</text>',
        f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#888"/>',
    ]
    for li, lang in enumerate(langs):
        for b, n in enumerate(counts[lang]):
            if n:
                h = (height - 24) * n / peak
                x = pad + b * slot + li * (bar + 1)
                parts.append(
                    f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{LANG_COLOURS.get(lang, "#999")}"><title>{_e(lang)}: {n}</title></rect>'
                )
    for b in range(0, bins + 1, 2):
        x = pad + b * slot
        parts.append(
            f'<text x="{x:.1f}" y="{height + 14}" font-size="10" text-anchor="middle">'
            f"{_e(fmt(top * b / bins, 1))}</text>"
        )
    parts.append(
        f'<text x="{width - pad}" y="{height + 28}" font-size="10" text-anchor="end">'
        f"cases per bin (max {peak})</text></svg>"
    )
    return "".join(parts)


def scatter_svg(rows: Sequence[dict[str, Any]]) -> str:
    """Baseline score (x) against current score (y); regressions in red."""
    size, pad = 260, 32
    span = size - 2 * pad
    parts = [
        _svg_open(size, size, "score vs baseline"),
        f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#888"/>',
        f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#bbb" stroke-dasharray="4"/>',
        f'<text x="{size / 2}" y="{size - 6}" font-size="11" text-anchor="middle">baseline score</text>',
        f'<text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10 {size / 2})" '
        'text-anchor="middle">score now</text>',
    ]
    for tick in (0.0, 0.5, 1.0):
        at = pad + span * tick
        parts.append(
            f'<text x="{at:.1f}" y="{size - pad + 12}" font-size="9" text-anchor="middle">{tick}</text>'
            f'<text x="{pad - 4}" y="{size - at + 3:.1f}" font-size="9" text-anchor="end">{tick}</text>'
        )
    for r in rows:
        if r["baseline_score"] is None:
            continue
        x = pad + span * float(r["baseline_score"])
        y = size - pad - span * float(r["score"])
        colour = "#b00020" if r["regression"] else ("#1b7f3b" if r["improvement"] else "#4e79a7")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" fill-opacity="0.7">'
            f"<title>{_e(r['id'])}: {fmt(r['baseline_score'])} -&gt; {fmt(r['score'])}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """The self-contained HTML report."""
    meta, cases = report["meta"], report["cases"]
    title = f"Eval report: {Path(str(meta['golden']['path'])).name}"
    out = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{_CSS}</style></head><body>',
        f"<h1>{_e(title)}</h1>",
        _h_table(
            ["", ""], [[f"<th>{_e(k)}</th>", f"<td>{_e(v)}</td>"] for k, v in meta_rows(meta)]
        ),
    ]
    if report.get("gates"):
        out.append(
            "<h2>Gates</h2>"
            + _h_table(
                ["gate", "value", "threshold", "result"],
                [
                    [
                        f"<td>{_e(g['gate'])}</td>",
                        _td(g["value"]),
                        _td(g["threshold"]),
                        '<td class="ok">pass</td>'
                        if g["ok"]
                        else f'<td class="fail">FAIL (short by {_e(fmt(g["shortfall"]))})</td>',
                    ]
                    for g in report["gates"]
                ],
            )
        )
    out.append(
        "<h2>Aggregates (means)</h2>"
        + _h_table(
            ["group", "n", *(h for _, h, _ in COLUMNS), "policy fails"],
            [
                [
                    f"<td>{_e(name)}</td>",
                    f'<td class="num">{s["n"]}</td>',
                    *(_td(s["mean"].get(k), d) for k, _, d in COLUMNS),
                    f'<td class="num">{s.get("policy_failures", 0)}</td>',
                ]
                for name, s in aggregate_rows(report)
            ],
        )
    )
    legend = "".join(
        f'<span><span class="swatch" style="background:{c}"></span>{lang}</span>'
        for lang, c in LANG_COLOURS.items()
    )
    charts = "".join(
        f'<div class="chart">{histogram_svg(cases, k, label, top)}</div>'
        for k, label, top in CHART_METRICS
    )
    out.append(
        f'<h2>Distributions per metric and language</h2><div class="legend">{legend}</div><div class="charts">{charts}</div>'
    )
    comp = report.get("comparison")
    if comp:
        out.append(_html_comparison(comp))
    out.append(
        "<h2>Cases (worst first)</h2>"
        + _h_table(
            [
                "id",
                "lang",
                "category",
                "score",
                "semantic",
                "chrF",
                "must_incl",
                "must_not",
                "citations",
                "verdict",
                "notes",
                "draft",
            ],
            [
                [
                    f"<td>{_e(c['id'])}</td>",
                    f"<td>{_e(c['language'])}</td>",
                    f"<td>{_e(c['category'])}</td>",
                    _score_td(float(c["score"])),
                    _td(c["metrics"].get("semantic")),
                    _td(c["metrics"].get("chrf"), 1),
                    _td(c["metrics"].get("must_include")),
                    _td(c["metrics"].get("must_not_include")),
                    _td(c["metrics"].get("citations")),
                    f"<td>{_e(c.get('verdict') or '-')}/{_e(c.get('expect_verdict'))}</td>",
                    f"<td>{_e(case_notes(c))}</td>",
                    f"<td><details><summary>show</summary><pre>{_e(c.get('draft', ''))}</pre></details></td>",
                ]
                for c in sorted(cases, key=lambda c: c["score"])
            ],
        )
    )
    out.append("</body></html>")
    return "\n".join(out)


def _html_comparison(comp: dict[str, Any]) -> str:
    parts = [
        f"<h2>Compared with baseline</h2><p>Baseline run {_e(comp['baseline'].get('run_key'))} "
        f"(commit {_e(comp['baseline'].get('git_commit'))}); a regression is a score drop over {_e(comp['threshold'])}. "
        f"Regressions: <b>{len(comp['regressions'])}</b>; improvements: {len(comp['improvements'])}; "
        f"added: {_e(', '.join(comp['added']) or 'none')}; removed: {_e(', '.join(comp['removed']) or 'none')}.</p>"
    ]
    agg = comp.get("aggregates")
    if agg:
        groups = [
            ("overall", agg["overall"]),
            *((f"lang {k}", v) for k, v in agg["by_language"].items()),
        ]
        parts.append(
            _h_table(
                ["group", "score", "delta", "semantic", "delta", "chrF", "delta"],
                [
                    [
                        f"<td>{_e(name)}</td>",
                        _td(d.get("score", {}).get("value")),
                        f'<td class="num">{_e(signed(d.get("score", {}).get("delta")))}</td>',
                        _td(d.get("semantic", {}).get("value")),
                        f'<td class="num">{_e(signed(d.get("semantic", {}).get("delta")))}</td>',
                        _td(d.get("chrf", {}).get("value"), 1),
                        f'<td class="num">{_e(signed(d.get("chrf", {}).get("delta"), 1))}</td>',
                    ]
                    for name, d in groups
                ],
            )
        )
    parts.append(f'<div class="charts"><div class="chart">{scatter_svg(comp["cases"])}</div></div>')
    regressed = [r for r in comp["cases"] if r["regression"]]
    if regressed:
        parts.append(
            "<h3>Regressions</h3>"
            + _h_table(
                ["id", "lang", "baseline", "now", "delta"],
                [
                    [
                        f"<td>{_e(r['id'])}</td>",
                        f"<td>{_e(r['language'])}</td>",
                        _td(r["baseline_score"]),
                        _td(r["score"]),
                        f'<td class="num fail">{_e(signed(r["delta"]))}</td>',
                    ]
                    for r in regressed
                ],
            )
        )
    return "".join(parts)
