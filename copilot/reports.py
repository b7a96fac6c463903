"""Eval reports: ``report.json``, ``report.md`` and a self-contained ``report.html`` (inline SVG).

The HTML has no scripts and loads nothing from the network: charts are inline
SVG, styles are inline CSS, so the file can be attached to a ticket or CI run.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
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
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths


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


def _aggregate_rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    agg = report["aggregates"]
    rows = [("overall", agg["overall"])]
    rows += [(f"lang {k}", v) for k, v in agg["by_language"].items()]
    rows += [(f"cat {k}", v) for k, v in agg["by_category"].items()]
    return rows


def _meta_rows(meta: dict[str, Any]) -> list[tuple[str, str]]:
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
    lines += [*_md_table(["", ""], _meta_rows(meta)), ""]
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
                for name, s in _aggregate_rows(report)
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
                _notes(c),
            ]
            for c in sorted(report["cases"], key=lambda c: c["score"])
        ],
    )
    return "\n".join(lines) + "\n"


def _notes(case: dict[str, Any]) -> str:
    notes = []
    if case.get("missing"):
        notes.append("missing: " + "; ".join(case["missing"]))
    if case.get("forbidden_hits"):
        notes.append("forbidden: " + "; ".join(case["forbidden_hits"]))
    if case.get("violations"):
        notes.append("violations: " + ", ".join(case["violations"]))
    return " / ".join(notes)


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
            ["", ""], [[f"<th>{_e(k)}</th>", f"<td>{_e(v)}</td>"] for k, v in _meta_rows(meta)]
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
                for name, s in _aggregate_rows(report)
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
                    f"<td>{_e(_notes(c))}</td>",
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
