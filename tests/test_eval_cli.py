"""``python -m copilot eval``: reports, gates and exit codes, baselines, resume, suites, judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.cli.main import main
from copilot.llm.fake import FakeBackend
from tests.evalkit import HashedEmbedder, case_line, hashed_embed, use_semantic_embedder

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


GOOD = (
    "Hello, most withdrawals are processed within 30 minutes; the TxID is under Assets > History > "
    "Withdrawals. [faq/withdrawal]"
)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rows = [
        case_line("c-en-1"),
        case_line("c-en-2", category="deposit"),
        case_line(
            "c-ja-1",
            "ja",
            golden_reply="出金は通常30分以内に処理されます。[faq/withdrawal]",
            must_include=["30分"],
        ),
    ]
    golden = write_jsonl(tmp_path / "golden_v1.jsonl", rows)
    good = write_jsonl(
        tmp_path / "good.jsonl",
        [
            {"id": "c-en-1", "draft": GOOD},
            {"id": "c-en-2", "draft": GOOD},
            {"id": "c-ja-1", "draft": "出金は多くの場合30分以内に完了します。[faq/withdrawal]"},
        ],
    )
    worse = write_jsonl(
        tmp_path / "worse.jsonl",
        [
            {"id": "c-en-1", "draft": "Thanks for your message, we will look into it."},
            {"id": "c-en-2", "draft": GOOD},
            {"id": "c-ja-1", "draft": "出金は多くの場合30分以内に完了します。[faq/withdrawal]"},
        ],
    )
    return {"golden": golden, "good": good, "worse": worse, "dir": tmp_path}


@pytest.fixture
def fast_embed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap the e5 model for hashed trigrams (the real model is covered by the first test)."""
    use_semantic_embedder(monkeypatch, HashedEmbedder())


def run_eval(*args: str | Path) -> int:
    return main(["eval", *(str(a) for a in args)])


def test_scores_a_drafts_file_and_writes_three_reports(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = files["dir"] / "run"
    code = run_eval(
        "--golden",
        files["golden"],
        "--drafts",
        files["good"],
        "--report",
        out,
        "--fail-under",
        "score=0.3",
        "must_include@ja=0.5",
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    meta = report["meta"]
    assert meta["golden"]["sha256"] and meta["golden"]["cases"] == 3
    assert meta["git_commit"] and meta["run_key"] and meta["kb_version"]
    assert meta["backend"] == "drafts-file" and meta["weights"]["semantic"] == 0.3
    assert meta["workers"] == 1  # checking a file is CPU work: no thread pool contention
    assert "prompt_versions" in meta and meta["started_at"] <= meta["finished_at"]
    assert [c["id"] for c in report["cases"]] == ["c-en-1", "c-en-2", "c-ja-1"]
    case = report["cases"][2]
    assert 0 < case["score"] <= 1 and case["metrics"]["must_include"] == 1.0
    assert (
        case["metrics"]["semantic_cos"] > 0.8
    )  # real e5 embeddings of two close Japanese sentences
    assert set(report["aggregates"]["by_language"]) == {"en", "ja"}
    assert set(report["aggregates"]["by_category"]) == {"withdrawal", "deposit"}
    assert [g["ok"] for g in report["gates"]] == [True, True]
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# Eval report")
    assert "<svg" in (out / "report.html").read_text(encoding="utf-8")
    assert "lang ja" in printed and "gate must_include@ja >= 0.5: ok" in printed


def test_a_failing_gate_exits_1_and_says_by_how_much(
    files: dict[str, Path], fast_embed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(
        "--golden",
        files["golden"],
        "--drafts",
        files["worse"],
        "--report",
        files["dir"] / "r",
        "--fail-under",
        "score=0.99",
        "chrf@en=0",
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "gate score >= 0.99: FAILED" in out and "short by" in out
    assert "gate chrf@en >= 0.0: ok" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fail-under", "bleu=3"], "unknown metric 'bleu'"),
        (["--fail-under", "score@de=0.5"], "unknown language 'de'"),
        (["--drafts", "MISSING"], "MISSING: cannot read file"),
    ],
)
def test_bad_options_exit_2(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = run_eval("--golden", files["golden"], "--report", files["dir"] / "r", *extra)
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_bad_golden_line_exits_2_naming_file_and_line(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_jsonl(files["dir"] / "bad.jsonl", [case_line("a"), {"id": "b", "language": "en"}])
    code = run_eval("--golden", bad, "--drafts", files["good"], "--report", files["dir"] / "r")
    assert code == 2
    assert f"{bad}: line 2: field 'category': missing" in capsys.readouterr().err


def test_baseline_diff_flags_regressions_in_all_outputs(
    files: dict[str, Path], fast_embed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    base, now = files["dir"] / "base", files["dir"] / "now"
    assert run_eval("--golden", files["golden"], "--drafts", files["good"], "--report", base) == 0
    capsys.readouterr()
    code = run_eval(
        "--golden", files["golden"], "--drafts", files["worse"], "--report", now, "--baseline", base
    )
    printed = capsys.readouterr().out
    assert code == 0  # regressions are flagged; they fail the run only with --fail-on-regression
    comp = json.loads((now / "report.json").read_text(encoding="utf-8"))["comparison"]
    assert comp["regressions"] == ["c-en-1"] and comp["added"] == [] and comp["removed"] == []
    assert "regression c-en-1" in printed
    assert "### Regressions" in (now / "report.md").read_text(encoding="utf-8")
    assert "Compared with baseline" in (now / "report.html").read_text(encoding="utf-8")
    again = run_eval(
        "--golden",
        files["golden"],
        "--drafts",
        files["worse"],
        "--report",
        files["dir"] / "n2",
        "--baseline",
        base,
        "--fail-on-regression",
    )
    assert again == 1


def test_rerun_in_the_same_folder_does_not_rescore(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded: list[str] = []

    def counting(texts: list[str], **_: Any) -> np.ndarray:
        embedded.extend(texts)
        return hashed_embed(texts)

    use_semantic_embedder(monkeypatch, HashedEmbedder(counting))
    out = files["dir"] / "r"
    args = ("--golden", files["golden"], "--drafts", files["good"], "--report", out)
    assert run_eval(*args) == 0
    first = (out / "cases.jsonl").read_text(encoding="utf-8")
    (out / "report.json").unlink()
    monkeypatch.setattr("copilot.evaluation.cases.score_cases", _fail_if_called)
    assert run_eval(*args) == 0
    assert (out / "cases.jsonl").read_text(encoding="utf-8") == first
    assert (out / "report.json").exists()


def test_ctrl_c_exits_130_and_the_rerun_completes(
    files: dict[str, Path],
    fast_embed: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import copilot.evaluation.cases

    real = copilot.evaluation.cases.score_cases

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    out = files["dir"] / "r"
    args = ("--golden", files["golden"], "--drafts", files["good"], "--report", out)
    monkeypatch.setattr(copilot.evaluation.cases, "score_cases", interrupted)
    assert run_eval(*args) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert not (out / "report.json").exists()
    monkeypatch.setattr(copilot.evaluation.cases, "score_cases", real)
    assert run_eval(*args) == 0
    assert len((out / "cases.jsonl").read_text(encoding="utf-8").splitlines()) == 3


def _fail_if_called(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a finished case was scored again")


def test_suite_file_supplies_golden_backend_and_gates(
    files: dict[str, Path], fast_embed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = files["dir"] / "suite.toml"
    suite.write_text(
        'name = "t"\ngolden = "golden_v1.jsonl"\ndrafts = "good.jsonl"\nreport = "suite-out"\n'
        '[fail_under]\nscore = 0.2\n"score@ja" = 0.99\n',
        encoding="utf-8",
    )
    code = run_eval("--suite", suite)
    out = capsys.readouterr().out
    assert code == 1 and "gate score@ja >= 0.99: FAILED" in out and "gate score >= 0.2: ok" in out
    assert (files["dir"] / "suite-out" / "report.json").exists()
    # A command-line gate with the same label overrides the suite's.
    assert run_eval("--suite", suite, "--fail-under", "score@ja=0.1") == 0
    suite.write_text('golden = "golden_v1.jsonl"\nbogus = 1\n', encoding="utf-8")
    assert run_eval("--suite", suite, "--report", files["dir"] / "x") == 2
    assert "unknown key 'bogus'" in capsys.readouterr().err


def test_shipped_ci_suite_is_valid() -> None:
    import tomllib

    data = tomllib.loads((ROOT / "evals" / "suites" / "ci.toml").read_text(encoding="utf-8"))
    assert data["backend"] == "offline"
    assert (ROOT / "evals" / "suites" / data["golden"]).resolve().name.startswith("golden_v")
    from copilot.evaluation.diff import parse_gate

    assert [parse_gate(f"{k}={v}") for k, v in data["fail_under"].items()]


def test_judge_needs_an_llm_backend(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(
        "--golden",
        files["golden"],
        "--drafts",
        files["good"],
        "--report",
        files["dir"] / "r",
        "--judge",
        "--backend",
        "offline",
    )
    assert code == 2 and "--judge needs an LLM backend" in capsys.readouterr().err


def test_judge_scores_are_reported_and_gateable(
    files: dict[str, Path],
    fast_embed: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answers = iter(
        [
            "oops",
            *[
                json.dumps({"empathy": e, "accuracy": 5, "completeness": 4, "policy": 5})
                for e in [3, 5] * 20
            ],
        ]
    )
    fake = FakeBackend(default=lambda messages: next(answers))
    monkeypatch.setattr("copilot.llm.registry.build_backend", lambda settings, name=None: fake)
    out = files["dir"] / "j"
    code = run_eval(
        "--golden",
        files["golden"],
        "--drafts",
        files["good"],
        "--report",
        out,
        "--judge",
        "--backend",
        "fake",
        "--judge-runs",
        "2",
        "--concurrency",
        "1",
        "--fail-under",
        "judge_accuracy=4.5",
    )
    assert code == 0, capsys.readouterr()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    first = report["cases"][0]
    assert first["judge"]["runs"] == 2 and first["judge"]["retries"] == 1
    assert (
        first["metrics"]["judge_empathy"] == 4.0
        and first["judge"]["criteria"]["empathy"]["stdev"] == 1.0
    )
    assert report["meta"]["judge"]["rubric"].startswith("judge_rubric@")
    assert "judge_rubric@1" in report["meta"]["prompt_versions"]
    assert report["aggregates"]["overall"]["mean"]["judge_accuracy"] == 5.0


@pytest.mark.usefixtures("use_kb_store")
def test_generates_drafts_with_the_offline_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = ROOT / "evals" / "golden" / "golden_v1.jsonl"
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    picked = [
        next(ln for ln in lines if f'"language": "{lang}"' in ln) for lang in ("en", "ja", "zh")
    ]
    golden = tmp_path / "golden_v1.jsonl"
    golden.write_text("\n".join(picked) + "\n", encoding="utf-8")
    code = run_eval(
        "--golden",
        golden,
        "--backend",
        "offline",
        "--report",
        tmp_path / "gen",
        "--concurrency",
        "2",
    )
    printed = capsys.readouterr()
    assert code == 0, printed
    report = json.loads((tmp_path / "gen" / "report.json").read_text(encoding="utf-8"))
    assert report["meta"]["backend"] == "offline" and report["meta"]["prompt_versions"]
    assert report["meta"]["workers"] == 2  # drafting may wait on a server: the pool is used
    assert {c["language"] for c in report["cases"]} == {"en", "ja", "zh"}
    for case in report["cases"]:
        # the offline drafter answers these three from the KB, within the policy
        assert case["draft"].strip() and case["verdict"] == "pass", case
        assert case["metrics"]["latency_ms"] is not None and case["metrics"]["tokens"]


# ---- nothing destroyed, sizes limited -----------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "flag", "name", "how"),
    [
        ("same", "--golden", "report.json", "the same file as the --golden file"),
        ("hard", "--golden", "report.md", "a hard link to the --golden file"),
        ("soft", "--drafts", "cases.jsonl", "a symbolic link to the --drafts file"),
        ("same", "--drafts", "report.html", "the same file as the --drafts file"),
    ],
)
def test_a_report_folder_holding_an_input_is_refused(
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    kind: str,
    flag: str,
    name: str,
    how: str,
) -> None:
    import os

    report = files["dir"] / "report-dir"
    report.mkdir()
    inputs = {"--golden": files["golden"], "--drafts": files["good"]}
    inside = report / name
    if kind == "same":
        inputs[flag] = inputs[flag].replace(inside)
    elif kind == "hard":
        os.link(inputs[flag], inside)
    else:
        inside.symlink_to(inputs[flag])
    before = inputs[flag].read_bytes()
    code = run_eval(
        "--golden", inputs["--golden"], "--drafts", inputs["--drafts"], "--report", report
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"--report {inside} is {how}" in err and "nothing was written" in err
    assert inputs[flag].read_bytes() == before


def test_a_baseline_in_the_report_folder_is_refused(
    files: dict[str, Path], fast_embed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = files["dir"] / "r"
    assert run_eval("--golden", files["golden"], "--drafts", files["good"], "--report", out) == 0
    before = (out / "report.json").read_bytes()
    capsys.readouterr()
    code = run_eval(
        "--golden", files["golden"], "--drafts", files["worse"], "--report", out, "--baseline", out
    )
    assert code == 2
    assert "the --baseline file" in capsys.readouterr().err
    assert (out / "report.json").read_bytes() == before


def test_golden_replies_and_drafts_over_the_limit_are_line_errors(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_MAX_GOLDEN_CHARS", "300")
    monkeypatch.setenv("COPILOT_MAX_EVAL_DRAFT_CHARS", "400")
    get_settings.cache_clear()
    golden = write_jsonl(
        files["dir"] / "g.jsonl", [case_line("a"), case_line("b", golden_reply="long " * 100)]
    )
    code = run_eval("--golden", golden, "--drafts", files["good"], "--report", files["dir"] / "r")
    assert code == 2
    err = capsys.readouterr().err
    assert (
        f"{golden}: line 2: field 'golden_reply': 500 characters is over the limit of 300 "
        "(COPILOT_MAX_GOLDEN_CHARS)" in err
    )
    drafts = write_jsonl(
        files["dir"] / "d.jsonl",
        [
            {"id": "c-en-1", "draft": GOOD},
            {"id": "c-en-2", "draft": "x" * 5000},
            {"id": "c-ja-1", "draft": GOOD},
        ],
    )
    code = run_eval("--golden", files["golden"], "--drafts", drafts, "--report", files["dir"] / "r")
    assert code == 2
    assert (
        f"{drafts}: line 2: field 'draft': 5000 characters is over the limit of 400 "
        "(COPILOT_MAX_EVAL_DRAFT_CHARS)" in capsys.readouterr().err
    )


def test_a_learned_tier_rejection_scores_below_a_compliant_paraphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: a near-copy of the golden reply with one violating sentence that only the
    learned tier catches (blame by implication) is rejected by the eval's guardrail and
    scores below a compliant paraphrase of the same golden reply."""
    golden_reply = "ロスカットは証拠金維持率が一定の水準を下回ったときに自動で実行されます。[playbook/liquidation]"
    golden = write_jsonl(
        tmp_path / "golden_v1.jsonl",
        [
            case_line(
                "c-ja-liq",
                "ja",
                category="liquidation",
                golden_reply=golden_reply,
                must_include=["証拠金維持率"],
                customer_message="昨夜ロスカットされました。なぜですか？",
                expected_sources=["playbook/liquidation"],
            )
        ],
    )
    paraphrase = (
        "証拠金維持率が所定の水準を下回ると、ロスカットが自動的に行われます。[playbook/liquidation]"
    )
    near_copy = golden_reply + "通知をご確認いただけなかったことが、今回の清算の一因です。"
    scores = {}
    for name, text in (("paraphrase", paraphrase), ("near_copy", near_copy)):
        drafts = write_jsonl(tmp_path / f"{name}.jsonl", [{"id": "c-ja-liq", "draft": text}])
        out = tmp_path / f"run-{name}"
        code = run_eval("--golden", golden, "--drafts", drafts, "--report", out)
        assert code == 0, capsys.readouterr().out
        [case] = json.loads((out / "report.json").read_text(encoding="utf-8"))["cases"]
        scores[name] = case
    assert scores["paraphrase"]["verdict"] == "pass"
    assert scores["near_copy"]["verdict"] == "reject"
    assert scores["near_copy"]["policy_failure"] is True
    assert scores["near_copy"]["score"] < scores["paraphrase"]["score"]
