"""Drafts-file evals check drafts in groups (PolicyGuardrail.check_many, in a background thread):
every case's score, verdict and violations are those of one check per draft."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from copilot.bench import eval as bench_eval
from copilot.evaluation import run as run_module
from copilot.evaluation.run import EvalOptions, run_eval
from copilot.guard.guardrail import PolicyGuardrail
from copilot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
N = 48  # drafts: golden replies, good and bad ones, variants; en, ja and zh


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    lines = (ROOT / bench_eval.GOLDEN).read_text(encoding="utf-8").splitlines()
    spread = folder / "golden_spread.jsonl"  # every 4th case: all three languages
    spread.write_text("\n".join(lines[::4]) + "\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(bench_eval, "GOLDEN", spread)
        m.setattr(bench_eval, "VALIDITY", ROOT / bench_eval.VALIDITY)
        return bench_eval.make_inputs(folder, N)


def _run(tmp_path: Path, inputs: tuple[Path, Path], name: str) -> list[dict[str, Any]]:
    settings = Settings.load(
        env={"COPILOT_DATA_DIR": str(tmp_path / "data"), "COPILOT_EMBEDDING_MODEL": "use-m3"}
    )
    golden, drafts = inputs
    options = EvalOptions(golden=golden, drafts=drafts, report=tmp_path / name, concurrency=2)
    cases = run_eval(options, settings).report["cases"]
    return [{k: v for k, v in c.items() if k != "latency_ms"} for c in cases]


@pytest.fixture(scope="module")
def one_by_one(
    tmp_path_factory: pytest.TempPathFactory, inputs: tuple[Path, Path]
) -> list[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(run_module, "CHECK_GROUP", 0)
        m.setattr(PolicyGuardrail, "check_many", _never)
        return _run(tmp_path_factory.mktemp("one-by-one"), inputs, "one-by-one")


def _never(self: Any, items: Any) -> Any:
    raise AssertionError("check_many used with CHECK_GROUP = 0")


def test_the_reference_run_is_a_meaningful_one(one_by_one: list[dict[str, Any]]) -> None:
    assert len(one_by_one) == N
    assert {c["language"] for c in one_by_one} == {"en", "ja", "zh"}
    assert {c["verdict"] for c in one_by_one} == {"pass", "reject"}
    assert any(c["violations"] for c in one_by_one)


@pytest.mark.parametrize("group", [1000, 7])
def test_grouped_checks_give_every_case_the_one_by_one_result(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    one_by_one: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    group: int,
) -> None:
    calls: list[int] = []
    real = PolicyGuardrail.check_many

    def counted(self: PolicyGuardrail, items: Sequence[Mapping[str, Any]]) -> Iterator[Any]:
        calls.append(len(items))
        return real(self, items)

    def no_single_checks(self: PolicyGuardrail, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a draft was checked on its own")

    monkeypatch.setattr(run_module, "CHECK_GROUP", group)
    monkeypatch.setattr(PolicyGuardrail, "check_many", counted)
    # check_many calls check() itself, from the background thread; the drafts' own threads must not
    produce_checks = no_single_checks
    real_check = PolicyGuardrail.check

    def check(self: PolicyGuardrail, *args: Any, **kwargs: Any) -> Any:
        import threading

        if threading.current_thread().name != "eval-guardrail":
            return produce_checks(self, *args, **kwargs)
        return real_check(self, *args, **kwargs)

    monkeypatch.setattr(PolicyGuardrail, "check", check)
    batched = _run(tmp_path, inputs, f"grouped-{group}")
    assert calls == [min(group, N - i) for i in range(0, N, group)]
    assert batched == one_by_one


def test_a_failing_group_falls_back_to_one_check_per_draft(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    one_by_one: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = PolicyGuardrail.check_many

    def breaks_after_five(self: PolicyGuardrail, items: Sequence[Mapping[str, Any]]) -> Any:
        for i, verdict in enumerate(real(self, items)):
            if i == 5:
                raise RuntimeError("lost the model")
            yield verdict

    monkeypatch.setattr(PolicyGuardrail, "check_many", breaks_after_five)
    assert _run(tmp_path, inputs, "fallback") == one_by_one


def test_a_resumed_run_checks_only_the_unfinished_drafts(
    tmp_path: Path,
    inputs: tuple[Path, Path],
    one_by_one: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "resumed"
    first = _run(tmp_path, inputs, "resumed")
    lines = (out / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    (out / "cases.jsonl").write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    checked: list[str] = []
    real = PolicyGuardrail.check_many

    def recorded(self: PolicyGuardrail, items: Sequence[Mapping[str, Any]]) -> Iterator[Any]:
        checked.extend(str(it["draft"]) for it in items)
        return real(self, items)

    monkeypatch.setattr(PolicyGuardrail, "check_many", recorded)
    again = _run(tmp_path, inputs, "resumed")
    done = {json.loads(line)["id"] for line in lines[:20]}
    assert [c["draft"] for c in first if c["id"] not in done] == checked
    assert again == first == one_by_one
