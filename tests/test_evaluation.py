"""Evaluation library: loading with file:line errors, scoring, resume, aggregates, gates, diffs, reports, judge."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import BackendError, CopilotError, InputError
from copilot.evaluation import cases as ev
from copilot.evaluation.diff import check_gates, compare, load_baseline, parse_gate
from copilot.evaluation.judge import (
    Judge,
    JudgeFormatError,
    RubricError,
    load_rubric,
    parse_judgement,
)
from copilot.evaluation.metrics import EmbeddingCache
from copilot.evaluation.report_html import render_html
from copilot.evaluation.reports import render_markdown, write_reports
from copilot.llm.fake import FakeBackend
from tests.evalkit import case_line, hashed_embed

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path: Path, rows: Sequence[Any]) -> Path:
    path.write_text(
        "".join(
            (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def golden(tmp_path: Path) -> ev.GoldenSet:
    rows = [case_line(f"c-en-{i}") for i in range(3)]
    rows += [
        case_line(
            "c-ja-1",
            "ja",
            category="login",
            golden_reply="ログインは30分後に自動で解除されます。[faq/login-locked]",
            must_include=["30分"],
            expected_sources=["faq/login-locked"],
        )
    ]
    return ev.load_golden(write_jsonl(tmp_path / "golden_v1.jsonl", rows))


# ---- loading -----------------------------------------------------------------------
def test_load_golden_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "g.jsonl",
        [
            case_line("ok-1"),
            "{not json",
            {k: v for k, v in case_line("no-reply").items() if k != "golden_reply"},
            case_line("ok-1"),
            case_line("fr-1", "fr"),
            case_line("bad-list", must_include="30 minutes"),
            case_line("verdict", expect_verdict="maybe"),
        ],
    )
    with pytest.raises(InputError) as info:
        ev.load_golden(path)
    text = str(info.value)
    assert f"{path}: line 2: not valid JSON" in text
    assert f"{path}: line 3: field 'golden_reply': missing" in text
    assert f"{path}: line 4: duplicate id 'ok-1' (first on line 1)" in text
    assert f"{path}: line 5: field 'language'" in text
    assert f"{path}: line 6: field 'must_include': must be a list" in text
    assert f"{path}: line 7: field 'expect_verdict'" in text
    assert info.value.exit_code == 2


def test_load_golden_reads_the_shipped_set() -> None:
    path = ROOT / "evals" / "golden" / "golden_v1.jsonl"
    gs = ev.load_golden(path)
    assert {c.language for c in gs.cases} == {"en", "ja", "zh"}
    assert len(gs.sha256) == 64


def test_load_drafts_validates_ids_and_completeness(tmp_path: Path, golden: ev.GoldenSet) -> None:
    ids = [c.id for c in golden.cases]
    bad = write_jsonl(
        tmp_path / "d.jsonl", [{"id": "nope", "draft": "x"}, {"id": ids[0], "draft": 3}]
    )
    with pytest.raises(InputError) as info:
        ev.load_drafts(bad, golden)
    assert f"{bad}: line 1: field 'id': 'nope' is not a case" in str(info.value)
    assert f"{bad}: line 2: field 'draft'" in str(info.value)
    partial = write_jsonl(tmp_path / "p.jsonl", [{"id": ids[0], "draft": "x"}])
    with pytest.raises(CopilotError, match="no draft for 3 golden case"):
        ev.load_drafts(partial, golden)
    full = write_jsonl(
        tmp_path / "f.jsonl",
        [
            {"id": i, "draft": "x", "sources": [{"id": "faq/fees"}] if n == 0 else ["faq/kyc"]}
            for n, i in enumerate(ids)
        ],
    )
    drafts = ev.load_drafts(full, golden)
    assert drafts[ids[0]].sources == ("faq/fees",) and drafts[ids[1]].sources == ("faq/kyc",)


# ---- scoring ------------------------------------------------------------------------
def test_score_cases_ranks_a_good_draft_above_bad_ones(
    golden: ev.GoldenSet, tmp_path: Path
) -> None:
    case = golden.cases[0]
    cache = EmbeddingCache(None, hashed_embed)
    good = ev.Draft(
        case.id,
        "Hello! Withdrawals usually take up to 30 minutes; the TxID is under Assets > History > "
        "Withdrawals. [faq/withdrawal]",
        verdict="pass",
    )
    generic = ev.Draft(case.id, "Thanks for reaching out, we are looking into it.", verdict="pass")
    violating = ev.Draft(
        case.id,
        case.golden_reply + " Profits are guaranteed.",
        verdict="reject",
        violations=("profit_promise",),
    )
    results = ev.score_cases([(case, good), (case, generic), (case, violating)], cache)
    g, n, v = results
    assert g["metrics"]["must_include"] == 1.0 and g["missing"] == []
    assert g["metrics"]["citation_recall"] == 1.0 and g["cited"] == ["faq/withdrawal"]
    assert n["metrics"]["must_include"] == 0.0 and n["missing"] == [
        "30 minutes",
        "Assets > History",
    ]
    assert n["metrics"]["citations"] == 0.0
    assert v["forbidden_hits"] == ["guaranteed"] and v["policy_failure"] and v["score"] <= 0.5
    assert g["score"] > n["score"] and g["score"] > v["score"]
    assert set(g) >= {"id", "score", "metrics", "language", "category", "draft"}
    assert 0.0 <= n["score"] <= 1.0


def test_verdict_metric_is_skipped_without_a_guardrail(golden: ev.GoldenSet) -> None:
    case = golden.cases[0]
    [result] = ev.score_cases(
        [(case, ev.Draft(case.id, case.golden_reply))], EmbeddingCache(None, hashed_embed)
    )
    assert result["metrics"]["verdict"] is None
    assert result["score"] == pytest.approx(1.0)


# ---- resumable runs -----------------------------------------------------------------
def test_interrupted_run_keeps_finished_cases_and_resumes(
    golden: ev.GoldenSet, tmp_path: Path
) -> None:
    cache = EmbeddingCache(None, hashed_embed)
    calls: list[str] = []

    def produce(case: ev.GoldenCase) -> ev.Draft:
        calls.append(case.id)
        if case.id == golden.cases[2].id and len(calls) == 3:
            raise KeyboardInterrupt
        return ev.Draft(case.id, case.golden_reply, verdict="pass")

    with pytest.raises(KeyboardInterrupt):
        ev.run_cases(golden.cases, produce, cache, tmp_path, "key1", concurrency=1, chunk=1)
    saved = [json.loads(line) for line in (tmp_path / "cases.jsonl").read_text().splitlines()]
    assert [s["id"] for s in saved] == [golden.cases[0].id, golden.cases[1].id]
    with (tmp_path / "cases.jsonl").open("a") as fh:
        fh.write('{"run_key": "key1", "id": "c-')  # a line cut short by a kill
    calls.clear()
    results, errors = ev.run_cases(golden.cases, produce, cache, tmp_path, "key1", concurrency=2)
    assert errors == []
    assert calls == [c.id for c in golden.cases[2:]]
    assert [r["id"] for r in results] == [c.id for c in golden.cases]
    lines = (tmp_path / "cases.jsonl").read_text().splitlines()
    assert len(lines) == len(golden.cases) and all(
        json.loads(x)["run_key"] == "key1" for x in lines
    )


def test_a_different_run_key_starts_over_and_keeps_the_old_file(
    golden: ev.GoldenSet, tmp_path: Path
) -> None:
    cache = EmbeddingCache(None, hashed_embed)

    def produce(case: ev.GoldenCase) -> ev.Draft:
        return ev.Draft(case.id, case.golden_reply)

    ev.run_cases(golden.cases, produce, cache, tmp_path, "old")
    calls: list[str] = []

    def counting(case: ev.GoldenCase) -> ev.Draft:
        calls.append(case.id)
        return produce(case)

    ev.run_cases(golden.cases, counting, cache, tmp_path, "new")
    assert len(calls) == len(golden.cases)
    assert (tmp_path / "cases.stale.jsonl").exists()


def test_failed_drafts_are_reported_and_retried(golden: ev.GoldenSet, tmp_path: Path) -> None:
    cache = EmbeddingCache(None, hashed_embed)
    failing = golden.cases[1].id

    def produce(case: ev.GoldenCase) -> ev.Draft:
        if case.id == failing:
            raise BackendError("endpoint down")
        return ev.Draft(case.id, case.golden_reply)

    results, errors = ev.run_cases(golden.cases, produce, cache, tmp_path, "k")
    assert errors == [f"{failing}: endpoint down"]
    assert failing not in {r["id"] for r in results}
    results, errors = ev.run_cases(
        golden.cases, lambda c: ev.Draft(c.id, c.golden_reply), cache, tmp_path, "k"
    )
    assert errors == [] and len(results) == len(golden.cases)


def test_each_chunk_is_prepared_once_before_its_cases(golden: ev.GoldenSet, tmp_path: Path) -> None:
    """Each chunk is prepared once, before its own cases start; a failing preparation stops
    the run with its error."""
    cache = EmbeddingCache(None, hashed_embed)
    prepared: list[str] = []
    lock = threading.Lock()

    def prepare(batch: Sequence[ev.GoldenCase]) -> None:
        with lock:
            prepared.extend(c.id for c in batch)

    def produce(case: ev.GoldenCase) -> ev.Draft:
        with lock:
            assert case.id in prepared, f"{case.id} produced before its chunk was prepared"
        return ev.Draft(case.id, case.golden_reply)

    results, errors = ev.run_cases(
        golden.cases, produce, cache, tmp_path, "k", concurrency=2, chunk=2, prepare=prepare
    )
    assert errors == [] and len(results) == len(golden.cases)
    assert sorted(prepared) == sorted(c.id for c in golden.cases)  # each case once

    def broken(batch: Sequence[ev.GoldenCase]) -> None:
        raise BackendError("embedder gone")

    with pytest.raises(BackendError, match="embedder gone"):
        ev.run_cases(golden.cases, produce, cache, tmp_path / "b", "k", prepare=broken)


# ---- aggregates and gates -------------------------------------------------------------
def fake_result(
    cid: str, language: str, score: float, chrf: float | None = 40.0, category: str = "x"
) -> dict[str, Any]:
    return {
        "id": cid,
        "language": language,
        "category": category,
        "score": score,
        "metrics": {"chrf": chrf, "must_include": None},
        "policy_failure": score < 0.3,
    }


def test_aggregate_means_per_language_and_category() -> None:
    results = [
        fake_result("a", "en", 0.8),
        fake_result("b", "en", 0.6, None),
        fake_result("c", "ja", 0.2, 20.0, "y"),
    ]
    agg = ev.aggregate(results)
    assert agg["overall"]["n"] == 3
    assert agg["overall"]["mean"]["score"] == pytest.approx(0.5333, abs=1e-4)
    assert agg["overall"]["mean"]["chrf"] == pytest.approx(30.0)  # None is left out
    assert agg["overall"]["mean"]["must_include"] is None
    assert agg["by_language"]["en"]["mean"]["score"] == pytest.approx(0.7)
    assert agg["by_category"]["y"]["n"] == 1
    assert agg["overall"]["policy_failures"] == 1


def test_gates_parse_and_check() -> None:
    agg = ev.aggregate([fake_result("a", "en", 0.8), fake_result("c", "ja", 0.5)])
    gates = [parse_gate("score=0.6"), parse_gate("score@ja=0.6"), parse_gate("chrf = 30")]
    rows = check_gates(gates, agg)
    assert [(r["gate"], r["ok"]) for r in rows] == [
        ("score", True),
        ("score@ja", False),
        ("chrf", True),
    ]
    assert rows[1]["shortfall"] == pytest.approx(0.1)
    assert check_gates([parse_gate("score@zh=0.1")], agg)[0]["ok"] is False  # no zh cases
    with pytest.raises(CopilotError, match="unknown metric 'bleu'") as info:
        parse_gate("bleu=3")
    assert info.value.exit_code == 2
    with pytest.raises(CopilotError, match="unknown language 'fr'"):
        parse_gate("score@fr=0.5")
    with pytest.raises(CopilotError, match="not a number"):
        parse_gate("score=high")
    with pytest.raises(CopilotError, match="METRIC=VALUE"):
        parse_gate("score")
    assert parse_gate("judge_empathy=3", ["judge_empathy"]).metric == "judge_empathy"


# ---- diffs and reports ---------------------------------------------------------------------
def test_compare_flags_regressions_added_and_removed(tmp_path: Path) -> None:
    before = [
        fake_result("a", "en", 0.8),
        fake_result("b", "en", 0.6),
        fake_result("gone", "ja", 0.5),
    ]
    now = [fake_result("a", "en", 0.7), fake_result("b", "en", 0.63), fake_result("new", "ja", 0.9)]
    baseline = {"meta": {"run_key": "r0"}, "cases": before, "aggregates": ev.aggregate(before)}
    diff = compare(now, baseline, threshold=0.05, aggregates=ev.aggregate(now))
    assert diff["regressions"] == ["a"]
    assert diff["improvements"] == []
    assert diff["added"] == ["new"] and diff["removed"] == ["gone"]
    assert diff["cases"][0]["delta"] == pytest.approx(-0.1)
    assert diff["aggregates"]["by_language"]["en"]["score"]["delta"] == pytest.approx(-0.035)
    (tmp_path / "report.json").write_text(json.dumps(baseline))
    assert load_baseline(tmp_path)["meta"]["run_key"] == "r0"
    with pytest.raises(CopilotError, match=r"no report\.json"):
        load_baseline(tmp_path / "missing")


def sample_report(golden: ev.GoldenSet) -> dict[str, Any]:
    cache = EmbeddingCache(None, hashed_embed)
    pairs = [
        (c, ev.Draft(c.id, c.golden_reply if i % 2 else "Sorry <b>no</b>", verdict="pass"))
        for i, c in enumerate(golden.cases)
    ]
    results = ev.score_cases(pairs, cache)
    agg = ev.aggregate(results)
    baseline = {
        "meta": {"run_key": "base"},
        "cases": [{**r, "score": 1.0} for r in results],
        "aggregates": agg,
    }
    return {
        "meta": {
            "golden": {"path": str(golden.path), "sha256": golden.sha256, "cases": 4},
            "backend": "drafts-file",
            "run_key": "abc",
            "weights": {"semantic": 0.3},
            "prompt_versions": ["draft@1"],
        },
        "aggregates": agg,
        "gates": check_gates([parse_gate("score=0.99")], agg),
        "comparison": compare(results, baseline, aggregates=agg),
        "cases": results,
    }


def test_reports_render_all_sections_and_html_is_self_contained(
    golden: ev.GoldenSet, tmp_path: Path
) -> None:
    report = sample_report(golden)
    paths = write_reports(report, tmp_path / "out")
    assert [p.name for p in paths] == ["report.json", "report.md", "report.html"]
    assert json.loads(paths[0].read_text())["meta"]["run_key"] == "abc"
    md = render_markdown(report)
    for needle in (
        "## Gates",
        "FAIL (short by",
        "lang ja",
        "cat login",
        "## Compared with baseline",
        "### Regressions",
        "c-ja-1",
    ):
        assert needle in md
    page = render_html(report)
    assert page.count("<svg") >= 7  # six histograms and the baseline scatter
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert "Sorry &lt;b&gt;no&lt;/b&gt;" in page  # drafts are escaped
    assert "ログインは30分後" in page


# ---- LLM judge ------------------------------------------------------------------------
@pytest.fixture
def rubric() -> Any:
    return load_rubric(ROOT / "prompts" / "judge_rubric.yaml")


def good_json(**overrides: int) -> str:
    return json.dumps({"empathy": 4, "accuracy": 5, "completeness": 3, "policy": 5, **overrides})


def test_judge_retries_malformed_json_then_reports_mean_and_spread(rubric: Any) -> None:
    backend = FakeBackend().enqueue(
        "Sure! Here are the scores: {...}", good_json(), good_json(empathy=2), good_json()
    )
    judge = Judge(backend, rubric, runs=3)
    out = judge.judge(
        language="ja", customer_message="出金が遅い", golden_reply="参考", draft="下書き"
    )
    assert out["ok_runs"] == 3 and out["retries"] == 1
    assert out["criteria"]["empathy"]["scores"] == [4, 2, 4]
    assert out["criteria"]["empathy"]["mean"] == pytest.approx(3.333, abs=1e-3)
    assert out["criteria"]["empathy"]["stdev"] > 0 and out["criteria"]["accuracy"]["stdev"] == 0
    retry_prompt = backend.history[1][-1].content
    assert "could not be used" in retry_prompt and "not a JSON object" in retry_prompt
    first_prompt = backend.history[0][1].content
    assert "Japanese" in first_prompt and "敬語" in first_prompt and "下書き" in first_prompt


def test_judge_gives_up_after_max_retries(rubric: Any) -> None:
    backend = FakeBackend(default="not json")
    out = Judge(backend, rubric, runs=2, max_retries=1).judge(
        language="en", customer_message="m", golden_reply="g", draft="d"
    )
    assert out["ok_runs"] == 0 and out["criteria"] == {} and len(out["errors"]) == 2
    assert len(backend.history) == 4


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("```json\n" + good_json() + "\n```", "not a JSON object"),
        ("[1, 2]", "must be a JSON object"),
        (good_json(policy=6), "outside 1-5"),
        (
            json.dumps({"empathy": 4, "accuracy": 5, "completeness": 3}),
            "'policy' must be a whole number",
        ),
        (
            json.dumps({"empathy": 4.5, "accuracy": 5, "completeness": 3, "policy": 5}),
            "'empathy' must be",
        ),
        (
            json.dumps({"empathy": 4, "accuracy": 5, "completeness": 3, "policy": 5, "tone": 3}),
            "unexpected key",
        ),
    ],
)
def test_parse_judgement_is_strict(rubric: Any, answer: str, error: str) -> None:
    with pytest.raises(JudgeFormatError, match=error):
        parse_judgement(answer, rubric)


def test_rubric_validation_names_the_problem(tmp_path: Path) -> None:
    text = (ROOT / "prompts" / "judge_rubric.yaml").read_text(encoding="utf-8")
    assert load_rubric(ROOT / "prompts" / "judge_rubric.yaml").version >= 1
    cases = {
        "extra key": (text + "\nfoo: 1\n", "unknown key 'foo'"),
        "bad placeholder": (text.replace("{{draft}}", "{{drafts}}"), "placeholder 'drafts'"),
    }
    for name, (body, error) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(body, encoding="utf-8")
        with pytest.raises(RubricError, match=error):
            load_rubric(path)
    with pytest.raises(RubricError, match="not found"):
        load_rubric(tmp_path / "missing.yaml")
