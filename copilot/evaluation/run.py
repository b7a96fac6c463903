"""One evaluation run, callable from code: drafts made (or read), scored, gated, reported.

``run_eval(EvalOptions(golden=..., report=...), settings)`` is what ``copilot eval``
and ``copilot bench eval`` call. Options can come from a TOML suite
(:func:`load_suite`, e.g. ``evals/suites/ci.toml``). Finished cases are appended to
``REPORT/cases.jsonl`` as they are scored, so an interrupted run (:class:`EvalInterrupted`)
resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
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
from copilot.files import ConfigError, folder_hash, read_versioned, sha256_file
from copilot.settings import Settings

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
PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class EvalOptions:
    """What to evaluate and how; ``None`` fields fall back to the suite, then the defaults."""

    golden: Path | None = None
    report: Path | None = None
    drafts: Path | None = None
    backend: str | None = None
    baseline: Path | None = None
    fail_under: Sequence[str] = ()
    concurrency: int | None = None
    regression_threshold: float | None = None
    fail_on_regression: bool = False
    judge: bool = False
    judge_runs: int | None = None
    fresh: bool = False
    suite: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalOutcome:
    """The report written, where, and whether the run passes its gates."""

    report: dict[str, Any]
    paths: list[Path]
    failed_gates: list[dict[str, Any]]
    regressed: bool

    @property
    def exit_code(self) -> int:
        """0 when every gate holds (and, if asked, nothing regressed), else 1."""
        return 1 if self.failed_gates or self.regressed else 0


class EvalInterrupted(CopilotError):
    """Ctrl-C during a run: the finished cases are kept and a rerun resumes."""

    def __init__(self, saved: int, path: Path) -> None:
        super().__init__(
            f"interrupted: {saved} finished case(s) are kept in {path}; "
            "rerun the same command to resume",
            exit_code=130,
        )


def load_suite(path: Path) -> dict[str, Any]:
    """A TOML suite file: paths resolved against its folder, gates as ``METRIC=VALUE`` strings."""
    try:
        data = dict(read_versioned(path, "suite", require_version=False).data)
    except ConfigError as exc:
        raise CopilotError(str(exc)) from None
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


def _kb_version(settings: Settings) -> str:
    from copilot.kb.articles import kb_version, load_kb

    try:
        return kb_version((a.key, a.content_hash) for a in load_kb(settings.knowledge_dir))
    except CopilotError:
        return "unknown"


def _rules(violations: Any) -> tuple[str, ...]:
    out = []
    for v in violations or ():
        rule = v.get("rule") if isinstance(v, dict) else getattr(v, "rule", None)
        out.append(str(rule or v))
    return tuple(out)


def _resolved(options: EvalOptions) -> EvalOptions:
    suite = options.suite
    golden = options.golden or suite.get("golden")
    report = options.report or suite.get("report")
    if golden is None or report is None:
        raise CopilotError(
            "eval needs --golden FILE and --report DIR (or a --suite that names them)"
        )
    threshold = options.regression_threshold
    return replace(
        options,
        golden=Path(golden),
        report=Path(report),
        drafts=Path(options.drafts or suite["drafts"])
        if options.drafts or suite.get("drafts")
        else None,
        baseline=Path(options.baseline or suite["baseline"])
        if options.baseline or suite.get("baseline")
        else None,
        backend=options.backend or suite.get("backend"),
        concurrency=int(options.concurrency or suite.get("concurrency", 4)),
        regression_threshold=float(
            threshold
            if threshold is not None
            else suite.get("regression_threshold", DEFAULT_THRESHOLD)
        ),
        judge=bool(options.judge or suite.get("judge", False)),
        judge_runs=int(options.judge_runs or suite.get("judge_runs", 3)),
        fail_under=[*suite.get("fail_under", []), *options.fail_under],
    )


REPORT_FILES = ("report.json", "report.md", "report.html", "cases.jsonl", "cases.stale.jsonl")


def refuse_overwriting_inputs(opts: EvalOptions) -> None:
    """A report folder whose files are the golden set, the drafts or the baseline report (the
    same file, a hard link or a symlink) is refused before anything is read or written."""
    from copilot.jsonl import refuse_overwriting_inputs as refuse

    assert opts.report is not None
    inputs: dict[str, Path | None] = {"--golden": opts.golden, "--drafts": opts.drafts}
    if opts.baseline is not None:
        inputs["--baseline"] = (
            opts.baseline / "report.json" if opts.baseline.is_dir() else opts.baseline
        )
    for name in REPORT_FILES:
        refuse(opts.report / name, inputs, output_flag="--report")


def _workers(opts: EvalOptions, *, from_file: bool, judged: bool) -> int:
    """Threads for producing drafts. The pool is for calls that wait on a server (drafting,
    a judge, the guardrail's judge tier); checking a drafts file is pure CPU under Python's
    GIL, where a second thread only adds contention (``bench eval``: about 1 s per 1,000
    drafts), so it runs on one."""
    if from_file and not judged:
        return 1
    return int(opts.concurrency or 4)


def run_eval(
    options: EvalOptions,
    settings: Settings,
    *,
    advance: Callable[[int], None] | None = None,
) -> EvalOutcome:
    """Make or read one draft per golden case, score it, write the reports, check the gates."""
    from copilot.embed.registry import get_embedder
    from copilot.tokens import count_tokens

    opts = _resolved(options)
    refuse_overwriting_inputs(opts)
    embedder = get_embedder(settings=settings)
    assert opts.golden is not None and opts.report is not None
    backend_name = opts.backend or settings.llm_backend

    judge = None
    if opts.judge:
        from copilot.evaluation.judge import Judge, load_rubric
        from copilot.llm.registry import build_backend

        judge_backend = build_backend(settings, backend_name)
        if judge_backend.name == "offline":
            raise CopilotError(
                "--judge needs an LLM backend: pass --backend openai (or set COPILOT_LLM_BACKEND)"
            )
        judge = Judge(
            judge_backend,
            load_rubric(settings.prompts_dir / "judge_rubric.yaml"),
            runs=int(opts.judge_runs or 3),
        )
    extra = [f"judge_{c}" for c in judge.rubric.criteria] if judge else []
    gates_by_label = {g.label: g for g in (parse_gate(t, extra) for t in opts.fail_under)}
    gates = list(gates_by_label.values())
    golden = ev.load_golden(opts.golden, max_reply_chars=settings.max_golden_chars)
    drafts = (
        ev.load_drafts(opts.drafts, golden, max_draft_chars=settings.max_eval_draft_chars)
        if opts.drafts
        else None
    )
    baseline = load_baseline(opts.baseline) if opts.baseline else None

    from copilot.guard.guardrail import PolicyGuardrail

    guardrail = PolicyGuardrail.from_settings(settings)
    check = guardrail.check
    prepare: Callable[[Sequence[ev.GoldenCase]], None] | None = None
    started = dt.datetime.now(dt.UTC)
    meta: dict[str, Any] = {
        "golden": {"path": str(opts.golden), "sha256": golden.sha256, "cases": len(golden.cases)},
        "drafts": {"path": str(opts.drafts), "sha256": sha256_file(opts.drafts)}
        if opts.drafts
        else None,
        "git_commit": git_commit(),
        "kb_version": _kb_version(settings),
        "prompt_files": folder_hash(settings.prompts_dir, settings.policy_file),
        "code": folder_hash(PACKAGE_DIR, pattern="*.py"),
        "metrics_version": m.METRICS_VERSION,
        "weights": dict(m.WEIGHTS),
        "semantic_floor": m.semantic_floor(embedder.name),
        "policy_failure_cap": m.POLICY_FAILURE_CAP,
        "embedding_model": embedder.name,
        "embedding_model_id": embedder.model_id,
        "embedding_engine": embedder.engine,
        "guardrail": True,
        "judge": {"rubric": judge.rubric.label, "runs": judge.runs} if judge else None,
        "suite": opts.suite.get("name"),
        "concurrency": opts.concurrency,
    }

    def finish(case: ev.GoldenCase, draft: ev.Draft) -> ev.Draft:
        if draft.verdict is None:
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

    produce: Callable[[ev.GoldenCase], ev.Draft]
    if drafts is not None:
        meta.update(backend="drafts-file", model=None)
        given_drafts = drafts

        def produce_from_file(case: ev.GoldenCase) -> ev.Draft:
            given = given_drafts[case.id]
            draft = ev.Draft(
                case.id,
                given.text,
                given.sources,
                tokens=count_tokens(given.text),
                meta=dict(given.meta),
            )
            return finish(case, draft)

        produce = produce_from_file

        def prime_chunk(batch: Sequence[ev.GoldenCase]) -> None:
            # the guardrail's learned tiers embed a chunk's drafts in one batch: checking
            # them one by one in the pool then embeds nothing (same verdicts); what the
            # previous chunks embedded stays known (bounded), so repeats are not embedded
            guardrail.settle_cache()
            guardrail.prime(
                [
                    {"draft": given_drafts[c.id].text, "customer_message": c.customer_message}
                    for c in batch
                    if c.id in given_drafts and given_drafts[c.id].verdict is None
                ]
            )

        prepare = prime_chunk
    else:
        from copilot.draft.factory import build_copilot
        from copilot.draft.types import DraftRequest

        copilot = build_copilot(settings, backend_name)
        meta.update(backend=copilot.backend.name, model=copilot.backend.model)

        def produce_with_copilot(case: ev.GoldenCase) -> ev.Draft:
            res = copilot.draft(DraftRequest(case.customer_message, language=case.language))
            if len(res.draft) > settings.max_eval_draft_chars:
                raise CopilotError(
                    f"{opts.golden}: line {case.line}: the {res.backend} draft is "
                    f"{len(res.draft)} characters, over the limit of "
                    f"{settings.max_eval_draft_chars} (COPILOT_MAX_EVAL_DRAFT_CHARS)"
                )
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

        produce = produce_with_copilot

    parts = ("kb_version", "prompt_files", "code", "judge", "backend", "model")
    key = ev.run_key(
        {
            "golden": golden.sha256,  # contents, not paths: a moved file still resumes
            "drafts": (meta["drafts"] or {}).get("sha256"),
            **{k: meta[k] for k in parts},
        }
    )
    meta["run_key"] = key
    out = opts.report
    if opts.fresh and (out / "cases.jsonl").exists():
        (out / "cases.jsonl").replace(out / "cases.stale.jsonl")
    cache = ev.EmbeddingCache(
        settings.data_dir / "eval-cache" / f"embeddings-{embedder.name}-{embedder.engine}.sqlite",
        partial(embedder.passages, use_cache=False),  # this cache replaces the global one
        dim=embedder.dim,
        semantic_floor=m.semantic_floor(embedder.name),
    )
    meta["workers"] = _workers(
        opts, from_file=drafts is not None, judged=judge is not None or guardrail.judge is not None
    )
    try:
        results, errors = ev.run_cases(
            golden.cases,
            produce,
            cache,
            out,
            key,
            concurrency=meta["workers"],
            advance=advance,
            prepare=prepare,
        )
    except KeyboardInterrupt:
        saved = len(ev.load_finished(out / "cases.jsonl", key))
        raise EvalInterrupted(saved, out / "cases.jsonl") from None
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
        compare(
            results,
            baseline,
            threshold=float(
                opts.regression_threshold
                if opts.regression_threshold is not None
                else DEFAULT_THRESHOLD
            ),
            aggregates=aggregates,
        )
        if baseline
        else None
    )
    report = {
        "meta": meta,
        "aggregates": aggregates,
        "gates": gate_rows,
        "comparison": comparison,
        "cases": results,
    }
    paths = write_reports(report, out)
    failed = [g for g in gate_rows if not g["ok"]]
    regressed = bool(comparison and comparison["regressions"]) and opts.fail_on_regression
    return EvalOutcome(report, paths, failed, regressed)
