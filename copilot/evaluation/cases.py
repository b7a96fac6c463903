"""Golden-set evaluation: load cases, score drafts, aggregate, gate, and resume interrupted runs.

A run scores one draft per golden case. Drafts come from the copilot (generated
with a backend) or from a JSONL file produced elsewhere. Each scored case is
appended to ``DIR/cases.jsonl`` with the run key at once, so an interrupted run
resumes where it stopped and never loses a finished case. Metrics are in
:mod:`copilot.evaluation.metrics`, reports in :mod:`copilot.evaluation.reports`, run diffs in
:mod:`copilot.evaluation.diff`; ``docs/evaluation.md`` is the user guide.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError, InputError, Problem
from copilot.evaluation import metrics as m
from copilot.evaluation.metrics import EmbeddingCache
from copilot.files import sha256_file
from copilot.jsonl import atomic_output, read_jsonl, too_long, write_line
from copilot.text.language import LANGUAGES

VERDICTS = ("pass", "reject")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")


@dataclass(frozen=True)
class GoldenCase:
    """One golden case: a customer message and the reply we want."""

    id: str
    language: str
    category: str
    customer_message: str
    golden_reply: str
    must_include: tuple[str, ...] = ()
    must_not_include: tuple[str, ...] = ()
    expected_sources: tuple[str, ...] = ()
    expect_verdict: str = "pass"
    line: int = 0


@dataclass(frozen=True)
class GoldenSet:
    """The cases of one golden file and the sha256 of its bytes."""

    path: Path
    cases: tuple[GoldenCase, ...]
    sha256: str


@dataclass
class Draft:
    """A draft to score, with what its producer reported about it."""

    id: str
    text: str
    sources: tuple[str, ...] | None = None
    verdict: str | None = None
    violations: tuple[str, ...] = ()
    tokens: int | None = None
    latency_ms: float | None = None
    blocked: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] | None = None


def _str_list(
    obj: dict[str, Any], name: str, problems: list[Problem], where: tuple[str, int]
) -> tuple[str, ...]:
    value = obj.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(
            Problem(where[0], where[1], f"field '{name}': must be a list of non-empty texts")
        )
        return ()
    return tuple(value)


def load_golden(path: Path, *, max_reply_chars: int | None = None) -> GoldenSet:
    """Read and validate a golden file; every problem is reported as ``PATH: line N: ...``.

    A golden reply longer than ``max_reply_chars`` (``COPILOT_MAX_GOLDEN_CHARS``) is a problem
    of its line: it would be embedded and compared character by character.
    """
    problems: list[Problem] = []
    cases: list[GoldenCase] = []
    seen: dict[str, int] = {}
    for line, obj in read_jsonl(path):
        if isinstance(obj, Problem):
            problems.append(obj)
            continue
        before = len(problems)
        where = (str(path), line)
        text: dict[str, str] = {}
        for name in ("id", "language", "category", "customer_message", "golden_reply"):
            value = obj.get(name)
            if not isinstance(value, str) or not value.strip():
                what = "missing" if value is None else "must be non-empty text"
                problems.append(Problem(str(path), line, f"field '{name}': {what}"))
            else:
                text[name] = value
        big = (
            too_long(
                "golden_reply", text["golden_reply"], max_reply_chars, "COPILOT_MAX_GOLDEN_CHARS"
            )
            if max_reply_chars is not None and "golden_reply" in text
            else None
        )
        if big:
            problems.append(Problem(str(path), line, big))
        if "id" in text and not _ID_RE.match(text["id"]):
            problems.append(
                Problem(str(path), line, f"field 'id': {text['id']!r} has spaces or odd characters")
            )
        if "id" in text and text["id"] in seen:
            problems.append(
                Problem(
                    str(path),
                    line,
                    f"duplicate id {text['id']!r} (first on line {seen[text['id']]})",
                )
            )
        if text.get("language", "en") not in LANGUAGES:
            problems.append(
                Problem(
                    str(path),
                    line,
                    f"field 'language': {text['language']!r} is not one of {', '.join(LANGUAGES)}",
                )
            )
        verdict = obj.get("expect_verdict", "pass")
        if verdict not in VERDICTS:
            problems.append(
                Problem(
                    str(path), line, f"field 'expect_verdict': {verdict!r} is not pass or reject"
                )
            )
        lists = {
            n: _str_list(obj, n, problems, where)
            for n in ("must_include", "must_not_include", "expected_sources")
        }
        if len(problems) > before:
            continue
        seen[text["id"]] = line
        cases.append(
            GoldenCase(
                **text,
                must_include=lists["must_include"],
                must_not_include=lists["must_not_include"],
                expected_sources=tuple(s.lower() for s in lists["expected_sources"]),
                expect_verdict=verdict,
                line=line,
            )
        )
    if not cases and not problems:
        problems.append(Problem(str(path), 1, "no golden cases in the file"))
    if problems:
        raise InputError(problems)
    return GoldenSet(path, tuple(cases), sha256_file(path))


def load_drafts(
    path: Path, golden: GoldenSet, *, max_draft_chars: int | None = None
) -> dict[str, Draft]:
    """Drafts produced elsewhere: lines ``{"id", "draft", "sources"?: [...]}``, one per golden case.

    A draft longer than ``max_draft_chars`` (``COPILOT_MAX_EVAL_DRAFT_CHARS``) is a problem of
    its line.
    """
    problems: list[Problem] = []
    drafts: dict[str, Draft] = {}
    known = {c.id for c in golden.cases}
    for line, obj in read_jsonl(path):
        if isinstance(obj, Problem):
            problems.append(obj)
            continue
        cid, text, sources = obj.get("id"), obj.get("draft"), obj.get("sources")
        if not isinstance(cid, str) or cid not in known:
            problems.append(
                Problem(str(path), line, f"field 'id': {cid!r} is not a case of {golden.path.name}")
            )
        elif cid in drafts:
            problems.append(Problem(str(path), line, f"duplicate draft for {cid!r}"))
        elif not isinstance(text, str):
            problems.append(Problem(str(path), line, "field 'draft': missing or not text"))
        elif max_draft_chars is not None and len(text) > max_draft_chars:
            message = too_long("draft", text, max_draft_chars, "COPILOT_MAX_EVAL_DRAFT_CHARS")
            problems.append(Problem(str(path), line, str(message)))
        elif sources is not None and not (
            isinstance(sources, list) and all(isinstance(s, str | dict) for s in sources)
        ):
            problems.append(Problem(str(path), line, "field 'sources': must be a list of ids"))
        else:
            ids = (
                None
                if sources is None
                else tuple(str(s.get("id", "")) if isinstance(s, dict) else s for s in sources)
            )
            meta = {
                k: obj[k]
                for k in ("backend", "model", "prompt_version", "kb_version")
                if isinstance(obj.get(k), str)
            }
            drafts[cid] = Draft(cid, text, ids, meta=meta)
    if problems:
        raise InputError(problems)
    missing = [c.id for c in golden.cases if c.id not in drafts]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise CopilotError(f"{path}: no draft for {len(missing)} golden case(s): {shown}")
    return drafts


def score_cases(
    pairs: Sequence[tuple[GoldenCase, Draft]], cache: EmbeddingCache
) -> list[dict[str, Any]]:
    """Score each (case, draft) pair; embeddings are computed in one batched call."""
    golden = [m.strip_citations(c.golden_reply) for c, _ in pairs]
    texts = [m.strip_citations(d.text) for _, d in pairs]
    vectors = cache.get(golden + texts)
    results = []
    for i, (case, draft) in enumerate(pairs):
        cos = float(np.dot(vectors[i], vectors[len(pairs) + i])) if texts[i] else 0.0
        found, missing = m.phrases_found(texts[i], case.must_include)
        hits, _ = m.phrases_found(texts[i], case.must_not_include)
        cited = m.cited_sources(draft.text, draft.sources)
        cit = m.citation_scores(cited, case.expected_sources)
        components: dict[str, float | None] = {
            "semantic": round(m.semantic_component(cos, cache.semantic_floor), 4),
            "chrf": round(m.chrf(texts[i], golden[i]) / 100, 4),
            "must_include": round(len(found) / len(case.must_include), 4)
            if case.must_include
            else None,
            "must_not_include": (0.0 if hits else 1.0) if case.must_not_include else None,
            "citations": round(cit.f1, 4),
            "verdict": None
            if draft.verdict is None
            else float(draft.verdict == case.expect_verdict),
        }
        metrics: dict[str, float | None] = {
            **components,
            "chrf": round(100 * (components["chrf"] or 0.0), 2),
            "semantic_cos": round(cos, 4),
            "citation_recall": _r(cit.recall),
            "citation_precision": _r(cit.precision),
            "length_ratio": round(len(texts[i]) / max(1, len(golden[i])), 3),
            "tokens": draft.tokens,
            "latency_ms": draft.latency_ms,
        }
        for name, stats in (draft.judge or {}).get("criteria", {}).items():
            metrics[f"judge_{name}"] = stats.get("mean")
        results.append(
            {
                "id": case.id,
                "language": case.language,
                "category": case.category,
                "score": m.overall_score(
                    components, expect_verdict=case.expect_verdict, verdict=draft.verdict
                ),
                "metrics": metrics,
                "policy_failure": m.policy_failure(components, case.expect_verdict, draft.verdict),
                "draft": draft.text,
                "cited": list(cit.cited),
                "expected_sources": list(case.expected_sources),
                "missing": missing,
                "forbidden_hits": hits,
                "verdict": draft.verdict,
                "expect_verdict": case.expect_verdict,
                "violations": list(draft.violations),
                "blocked": draft.blocked,
                "meta": draft.meta,
                **({"judge": draft.judge} if draft.judge else {}),
            }
        )
    return results


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# ---- aggregation ---------------------------------------------------
def _stats(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    names = list(dict.fromkeys(["score", *(k for r in results for k in r["metrics"])]))
    means: dict[str, float | None] = {}
    for name in names:
        values = [
            float(r["score"] if name == "score" else r["metrics"][name])
            for r in results
            if (r["score"] if name == "score" else r["metrics"].get(name)) is not None
        ]
        means[name] = round(statistics.fmean(values), 4) if values else None
    scores = sorted(float(r["score"]) for r in results)
    dist = (
        {
            "min": scores[0],
            "p10": scores[int(0.1 * (len(scores) - 1))],
            "median": statistics.median(scores),
            "max": scores[-1],
        }
        if scores
        else {}
    )
    return {
        "n": len(results),
        "mean": means,
        "score": dist,
        "policy_failures": sum(1 for r in results if r.get("policy_failure")),
    }


def aggregate(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means of every metric overall, per language and per category."""

    def group(key: str) -> dict[str, Any]:
        keys = sorted({str(r[key]) for r in results})
        return {k: _stats([r for r in results if r[key] == k]) for k in keys}

    return {
        "overall": _stats(results),
        "by_language": group("language"),
        "by_category": group("category"),
    }


# ---- the resumable run -------------------------------------------------------
def run_key(parts: dict[str, Any]) -> str:
    """A short hash of everything that decides the per-case results."""
    blob = json.dumps({**parts, "metrics_version": m.METRICS_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_finished(path: Path, key: str) -> dict[str, dict[str, Any]]:
    """Finished cases of run ``key`` in ``path``; other runs' lines are moved to ``*.stale.jsonl``."""
    if not path.exists():
        return {}
    done: dict[str, dict[str, Any]] = {}
    stale = False
    for _, obj in read_jsonl(path):
        if isinstance(obj, Problem):  # a line cut short by a kill: that case is simply redone
            continue
        if obj.get("run_key") == key and isinstance(obj.get("id"), str):
            done[obj["id"]] = {k: v for k, v in obj.items() if k != "run_key"}
        else:
            stale = True
    if stale or not path.read_bytes().endswith(b"\n"):
        if stale:
            path.replace(path.with_suffix(".stale.jsonl"))
        with atomic_output(path) as fh:  # all or nothing: an interruption keeps the old file
            for result in done.values():
                write_line(fh, {"run_key": key, **result})
    return done


def run_cases(
    cases: Sequence[GoldenCase],
    produce: Callable[[GoldenCase], Draft],
    cache: EmbeddingCache,
    out: Path,
    key: str,
    *,
    concurrency: int = 4,
    advance: Callable[[int], None] | None = None,
    chunk: int = 32,
    prepare: Callable[[Sequence[GoldenCase]], None] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Score every case not finished yet; return (results in case order, errors).

    ``produce`` runs in a thread pool of ``concurrency`` workers (drafting, guardrail,
    judge); scoring embeds each chunk in one batch. ``prepare`` (optional) sees each chunk
    before its cases are produced (the guardrail embeds the chunk's drafts in one batch). A
    case whose draft fails is reported in ``errors`` and left unfinished, so a rerun retries
    it.
    """
    path = out / "cases.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    done = load_finished(path, key)
    todo = [c for c in cases if c.id not in done]
    errors: list[str] = []
    if advance and len(done):
        advance(len([c for c in cases if c.id in done]))
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        with path.open("a", encoding="utf-8") as fh:
            for start in range(0, len(todo), chunk):
                batch = todo[start : start + chunk]
                if prepare is not None:
                    prepare(batch)
                futures = [(case, pool.submit(produce, case)) for case in batch]
                pairs = []
                for case, future in futures:
                    try:
                        pairs.append((case, future.result()))
                    except CopilotError as exc:
                        errors.append(f"{case.id}: {exc}")
                for result in score_cases(pairs, cache) if pairs else []:
                    write_line(fh, {"run_key": key, **result})
                    done[result["id"]] = result
                if advance:
                    advance(len(batch))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [done[c.id] for c in cases if c.id in done], errors
