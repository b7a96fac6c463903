"""The eval's guardrail verdicts: a drafts-file eval (drafts checked concurrently, one by one)
gives every draft the verdict of PolicyGuardrail.check_many on the same drafts and of one check
at a time, in three languages; the first checks of a fresh guardrail, run at once, all see the
whole KB (they used to race its loading: a check could see it empty, and judge figures
without the cited article)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from copilot.bench import eval as bench_eval
from copilot.evaluation import cases as ev
from copilot.evaluation import metrics as m
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
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench_eval, "GOLDEN", spread)
        mp.setattr(bench_eval, "VALIDITY", ROOT / bench_eval.VALIDITY)
        return bench_eval.make_inputs(folder, N)


def _settings(tmp_path: Path) -> Settings:
    return Settings.load(
        env={"COPILOT_DATA_DIR": str(tmp_path / "data"), "COPILOT_EMBEDDING_MODEL": "use-m3"}
    )


def _items(settings: Settings, inputs: tuple[Path, Path]) -> list[dict[str, Any]]:
    golden = ev.load_golden(inputs[0], max_reply_chars=settings.max_golden_chars)
    drafts = ev.load_drafts(inputs[1], golden, max_draft_chars=settings.max_eval_draft_chars)
    return [
        {
            "id": case.id,
            "draft": drafts[case.id].text,
            "customer_message": case.customer_message,
            "language": case.language,
            "sources": m.cited_sources(drafts[case.id].text, drafts[case.id].sources),
        }
        for case in golden.cases
    ]


def _rules(verdict: Any) -> list[str]:
    return [v.rule for v in verdict.violations]


def test_eval_verdicts_are_those_of_check_many_and_of_single_checks(
    tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    settings = _settings(tmp_path)
    options = EvalOptions(golden=inputs[0], drafts=inputs[1], report=tmp_path / "r", concurrency=2)
    cases = run_eval(options, settings).report["cases"]
    evaluated = {c["id"]: (c["verdict"], list(c["violations"])) for c in cases}
    items = _items(settings, inputs)
    batched = list(PolicyGuardrail.from_settings(settings).check_many(items))
    single_guard = PolicyGuardrail.from_settings(settings)
    single = [
        single_guard.check(
            it["draft"],
            customer_message=it["customer_message"],
            language=it["language"],
            sources=it["sources"],
        )
        for it in items
    ]
    assert [v.to_dict() for v in batched] == [v.to_dict() for v in single]
    assert {
        it["id"]: (v.verdict, _rules(v)) for it, v in zip(items, batched, strict=True)
    } == evaluated
    assert len(evaluated) == N
    assert {c["language"] for c in cases} == {"en", "ja", "zh"}
    assert {v for v, _ in evaluated.values()} == {"pass", "reject"}


def test_the_first_checks_of_a_fresh_guardrail_run_at_once_all_see_the_kb(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    draft = (
        "TRC-20 deposits are credited after 6 confirmations, which normally takes about an "
        "hour. [faq/deposit]"
    )
    expected = PolicyGuardrail.from_settings(settings).check(
        draft, language="en", sources=["faq/deposit"]
    )
    without_kb = PolicyGuardrail.from_settings(settings)
    without_kb.knowledge_dir = None
    empty = without_kb.check(draft, language="en", sources=["faq/deposit"])
    assert empty.to_dict() != expected.to_dict()  # what the KB says decides this draft
    guard = PolicyGuardrail.from_settings(settings)
    start = threading.Barrier(8)
    got: list[Any] = []

    def check() -> None:
        start.wait()
        got.append(guard.check(draft, language="en", sources=["faq/deposit"]).to_dict())

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [expected.to_dict()] * 8
