"""``copilot eval``: score drafts against a golden set, write reports, diff with a baseline, gate CI.

Exit codes: 0 all gates hold, 1 a gate failed (or a draft could not be made),
2 bad input (the file and line are named), 130 interrupted (finished cases are
kept; rerun the same command to resume). See ``docs/evaluation.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "Score drafts against a golden set; write report.json/.md/.html; gate on metrics."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument(
        "--suite", type=Path, help="TOML suite file (e.g. evals/suites/ci.toml); flags override it"
    )
    parser.add_argument(
        "--golden", type=Path, help="golden set JSONL (e.g. evals/golden/golden_v1.jsonl)"
    )
    parser.add_argument(
        "--drafts",
        type=Path,
        help='score these drafts ({"id", "draft", "sources"?}) instead of generating',
    )
    parser.add_argument(
        "--backend",
        help="backend that generates drafts (offline, openai, fake; default COPILOT_LLM_BACKEND)",
    )
    parser.add_argument(
        "--report", type=Path, help="report folder; an interrupted run in it resumes"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="report folder (or report.json) of an earlier run to diff against",
    )
    parser.add_argument(
        "--fail-under",
        action="extend",
        nargs="+",
        default=[],
        metavar="METRIC[@LANG]=VALUE",
        help="gate on a mean, e.g. score=0.6 chrf=30 must_include@ja=0.8 (exit 1 when below)",
    )
    parser.add_argument(
        "--concurrency", type=int, help="parallel drafts/guardrail/judge calls (default 4)"
    )
    parser.add_argument(
        "--regression-threshold",
        type=float,
        help="score drop that counts as a regression (default 0.05)",
    )
    parser.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when any case regressed"
    )
    parser.add_argument(
        "--judge", action="store_true", help="add the LLM-judge rubric (needs an LLM backend)"
    )
    parser.add_argument(
        "--judge-runs",
        type=int,
        help="judge runs per draft; mean and spread are reported (default 3)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore finished cases in the report folder"
    )


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and write the reports; the exit code tells CI whether gates hold."""
    from copilot.evaluation.run import EvalInterrupted, EvalOptions, load_suite, run_eval
    from copilot.progress import progress_bar
    from copilot.settings import get_settings

    options = EvalOptions(
        golden=args.golden,
        report=args.report,
        drafts=args.drafts,
        backend=args.backend,
        baseline=args.baseline,
        fail_under=list(args.fail_under),
        concurrency=args.concurrency,
        regression_threshold=args.regression_threshold,
        fail_on_regression=args.fail_on_regression,
        judge=args.judge,
        judge_runs=args.judge_runs,
        fresh=args.fresh,
        suite=load_suite(args.suite) if args.suite else {},
    )
    settings = get_settings()
    try:
        with progress_bar(_case_count(options), "eval", min_total=20) as advance:
            outcome = run_eval(options, settings, advance=advance)
    except EvalInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    report = outcome.report
    _print_summary(report["aggregates"], report["gates"], report["comparison"], outcome.paths)
    return outcome.exit_code


def _case_count(options: Any) -> int:
    """Cases in the golden file (for the progress bar; 0 when it cannot be read yet)."""
    path = options.golden or options.suite.get("golden")
    try:
        with Path(path).open(encoding="utf-8") as fh:
            return sum(1 for line in fh if line.strip())
    except (OSError, TypeError, UnicodeDecodeError):
        return 0


def _print_summary(
    aggregates: dict[str, Any],
    gates: list[dict[str, Any]],
    comparison: dict[str, Any] | None,
    paths: list[Path],
) -> None:
    from copilot.evaluation.reports import fmt

    cols = ("score", "semantic", "chrf", "must_include", "must_not", "citations", "verdict")
    keys = ("score", "semantic", "chrf", "must_include", "must_not_include", "citations", "verdict")
    rows = [
        ("overall", aggregates["overall"]),
        *((f"lang {k}", v) for k, v in aggregates["by_language"].items()),
        *((f"cat {k}", v) for k, v in aggregates["by_category"].items()),
    ]
    width = max(len(name) for name, _ in rows) + 2
    print(
        f"{'group':<{width}}{'n':>4}" + "".join(f"{c:>13}" for c in cols) + f"{'policy fails':>14}"
    )
    for name, stats in rows:
        cells = "".join(f"{fmt(stats['mean'].get(k), 1 if k == 'chrf' else 3):>13}" for k in keys)
        print(f"{name:<{width}}{stats['n']:>4}{cells}{stats.get('policy_failures', 0):>14}")
    if comparison:
        print(
            f"vs baseline: {len(comparison['regressions'])} regression(s) over {comparison['threshold']}, "
            f"{len(comparison['improvements'])} improvement(s), {len(comparison['added'])} added, "
            f"{len(comparison['removed'])} removed"
        )
        for cid in comparison["regressions"][:20]:
            row = next(r for r in comparison["cases"] if r["id"] == cid)
            print(
                f"  regression {cid}: {fmt(row['baseline_score'])} -> {fmt(row['score'])} ({row['delta']:+.3f})"
            )
    for g in gates:
        if g["ok"]:
            print(f"gate {g['gate']} >= {g['threshold']}: ok ({fmt(g['value'])})")
        elif g["value"] is None:
            print(
                f"gate {g['gate']} >= {g['threshold']}: FAILED (no value: no cases or metric not measured)"
            )
        else:
            print(
                f"gate {g['gate']} >= {g['threshold']}: FAILED ({fmt(g['value'])}, short by {fmt(g['shortfall'])})"
            )
    print("reports: " + ", ".join(str(p) for p in paths))
