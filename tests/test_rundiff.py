"""Gate and regression boundaries: a metric exactly at its gate passes, just below it fails.

``copilot.evaluation.diff`` gates with ``>=`` (overall and per language, for every gateable metric
and for extra metrics such as judge scores) and counts a score drop as a regression only
when it is larger than the threshold. These tests fail if either comparison changes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from copilot.cli.main import main
from copilot.evaluation.diff import GATEABLE, check_gates, compare, parse_gate
from tests.evalkit import HashedEmbedder, case_line, use_semantic_embedder

# a threshold and the same number as the CLI would parse it back from text
THRESHOLDS = {"chrf": "37.25"}  # chrF is on a 0-100 scale; the others are 0-1


def aggregates(metric: str, value: float, language: str = "ja") -> dict[str, Any]:
    stats = {"n": 3, "mean": {metric: value}}
    return {"overall": stats, "by_language": {language: stats}, "by_category": {}}


def below(value: float) -> float:
    return math.nextafter(value, -math.inf)


@pytest.mark.parametrize("metric", [*GATEABLE, "judge_empathy"])
@pytest.mark.parametrize("language", [None, "en", "ja", "zh"])
def test_a_metric_exactly_at_its_gate_passes_and_just_below_fails(
    metric: str, language: str | None
) -> None:
    text = THRESHOLDS.get(metric, "0.65")
    label = metric + (f"@{language}" if language else "")
    gate = parse_gate(f"{label}={text}", ["judge_empathy"])
    assert gate.threshold == float(text) and gate.language == language
    at = check_gates([gate], aggregates(metric, float(text), language or "en"))[0]
    assert at["ok"] is True and at["shortfall"] == 0.0 and at["gate"] == label
    under = check_gates([gate], aggregates(metric, below(float(text)), language or "en"))[0]
    assert under["ok"] is False and under["value"] < under["threshold"]
    over = check_gates([gate], aggregates(metric, float(text) + 0.01, language or "en"))[0]
    assert over["ok"] is True


def test_a_language_gate_reads_only_its_language() -> None:
    agg = {
        "overall": {"mean": {"score": 0.9}},
        "by_language": {"en": {"mean": {"score": 0.9}}, "ja": {"mean": {"score": 0.59}}},
    }
    rows = check_gates([parse_gate("score=0.6"), parse_gate("score@ja=0.6")], agg)
    assert [r["ok"] for r in rows] == [True, False]
    assert rows[1]["shortfall"] == pytest.approx(0.01)
    missing = check_gates([parse_gate("score@zh=0")], agg)[0]
    assert missing["ok"] is False and missing["value"] is None and missing["shortfall"] is None


def test_a_gate_on_an_unmeasured_metric_fails_even_at_zero() -> None:
    rows = check_gates([parse_gate("chrf=0")], aggregates("chrf", None))  # type: ignore[arg-type]
    assert rows[0]["ok"] is False


def _case(cid: str, score: float) -> dict[str, Any]:
    return {"id": cid, "language": "en", "category": "x", "score": score, "metrics": {}}


@pytest.mark.parametrize(
    ("old", "new", "regression", "improvement"),
    [
        (0.80, 0.75, False, False),  # a drop of exactly the threshold is not a regression
        (0.80, 0.7499, True, False),  # just over it is
        (0.80, 0.85, False, False),  # a rise of exactly the threshold is not an improvement
        (0.80, 0.8501, False, True),
    ],
)
def test_regression_and_improvement_boundaries(
    old: float, new: float, regression: bool, improvement: bool
) -> None:
    diff = compare([_case("a", new)], {"cases": [_case("a", old)]}, threshold=0.05)
    row = diff["cases"][0]
    assert (row["regression"], row["improvement"]) == (regression, improvement)
    assert diff["regressions"] == (["a"] if regression else [])
    assert diff["improvements"] == (["a"] if improvement else [])


def run_eval(*args: str | Path) -> int:
    return main(["eval", *(str(a) for a in args)])


def test_cli_fail_under_passes_at_the_exact_value_and_fails_just_above(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_semantic_embedder(monkeypatch, HashedEmbedder())
    golden = tmp_path / "golden_v1.jsonl"
    ja_reply = "出金は通常30分以内に処理されます。[faq/withdrawal]"
    rows = [case_line("c-en-1"), case_line("c-ja-1", "ja", golden_reply=ja_reply)]
    golden.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    drafts = tmp_path / "drafts.jsonl"
    drafts.write_text(
        json.dumps({"id": "c-en-1", "draft": "Thanks, we will look into it."})
        + "\n"
        + json.dumps(
            {"id": "c-ja-1", "draft": "出金は多くの場合30分以内に完了します。"}, ensure_ascii=False
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    common = ["--golden", golden, "--drafts", drafts, "--report", out]
    assert run_eval(*common) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    score = report["aggregates"]["overall"]["mean"]["score"]
    ja = report["aggregates"]["by_language"]["ja"]["mean"]["score"]
    assert 0 < score < 1 and 0 < ja < 1
    capsys.readouterr()
    # the same folder: the cases are not scored again, so the means are exactly the same
    assert run_eval(*common, "--fail-under", f"score={score!r}", f"score@ja={ja!r}") == 0
    printed = capsys.readouterr().out
    assert f"gate score >= {score!r}: ok" in printed
    above = math.nextafter(score, math.inf)
    assert run_eval(*common, "--fail-under", f"score={above!r}") == 1
    assert f"gate score >= {above!r}: FAILED" in capsys.readouterr().out
    above_ja = math.nextafter(ja, math.inf)
    assert run_eval(*common, "--fail-under", f"score@ja={above_ja!r}") == 1
