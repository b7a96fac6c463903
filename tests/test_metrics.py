"""Metrics without an LLM: normalisation, phrase checks, chrF, citations, the score and its cap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from copilot.evaluation import metrics as m


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("出金は３０分以内に処理されます。", "30分"),  # full-width digits
        ("Go to ASSETS > History > Withdrawals.", "Assets > History"),  # case
        ("Assets  >  History", "Assets > History"),  # spacing
        ("資産＞履歴から確認できます", "資産>履歴"),  # full-width symbol
        ("审核需要1～3个工作日。", "1-3个工作日"),  # range marks
        ("「パスワードを忘れた」を押してください", "パスワードを忘れた"),  # CJK quotes
        ("手续费为0.10%，", "0.10%"),
        ("Wait 30 minutes.", "15 minutes | 30 minutes"),  # alternatives
    ],
)
def test_phrase_matching_is_normalised(text: str, phrase: str) -> None:
    found, missing = m.phrases_found(text, [phrase])
    assert found == [phrase] and missing == []


def test_phrase_matching_reports_missing_in_order() -> None:
    found, missing = m.phrases_found("マーク価格で判定されます", ["マーク価格", "保険基金", "80%"])
    assert found == ["マーク価格"]
    assert missing == ["保険基金", "80%"]


def test_different_numbers_do_not_match() -> None:
    assert m.phrases_found("margin usage reaches 50%", ["80%"])[0] == []
    assert m.phrases_found("0.1%", ["0.10%"])[0] == []


def test_strip_citations_tidies_spacing() -> None:
    text = (
        "Withdrawals take 30 minutes [faq/withdrawal]. See Fees [faq/fees, playbook/fee-dispute]."
    )
    assert m.strip_citations(text) == "Withdrawals take 30 minutes. See Fees."
    assert (
        m.strip_citations("出金は30分以内です。[faq/withdrawal]\n以上です。")
        == "出金は30分以内です。\n以上です。"
    )


def test_chrf_works_on_cjk_characters() -> None:
    ref = "出金は通常30分以内に処理されます。"
    assert m.chrf(ref, ref) == pytest.approx(100.0)
    close = m.chrf("出金は通常30分以内に処理されます", ref)
    far = m.chrf("ボーナスは14日で失効します。", ref)
    assert close > 80 > 20 > far
    assert m.chrf("", ref) == 0.0


def test_semantic_component_maps_floor_to_zero() -> None:
    assert m.semantic_component(1.0) == 1.0
    assert m.semantic_component(m.SEMANTIC_FLOOR) == 0.0
    assert m.semantic_component(0.1) == 0.0
    assert 0 < m.semantic_component((1 + m.SEMANTIC_FLOOR) / 2) < 1


def test_citation_scores() -> None:
    s = m.citation_scores(["faq/fees", "faq/withdrawal"], ["faq/withdrawal"])
    assert (s.recall, s.precision) == (1.0, 0.5)
    assert s.f1 == pytest.approx(2 / 3)
    none_cited = m.citation_scores([], ["faq/withdrawal"])
    assert (none_cited.recall, none_cited.precision, none_cited.f1) == (0.0, None, 0.0)
    nothing_expected = m.citation_scores([], [])
    assert (nothing_expected.recall, nothing_expected.f1) == (None, 1.0)
    assert m.citation_scores(["faq/fees"], []).f1 == 0.0
    assert m.citation_scores(["FAQ/Fees"], ["faq/fees"]).recall == 1.0


def test_cited_sources_prefers_inline_markers() -> None:
    assert m.cited_sources("See [faq/fees].", ["faq/kyc"]) == ["faq/fees"]
    assert m.cited_sources("No markers.", ["faq/kyc"]) == ["faq/kyc"]
    assert m.cited_sources("No markers.", None) == []


def test_combine_renormalises_missing_components() -> None:
    full = {k: 1.0 for k in m.WEIGHTS}
    assert m.combine(full) == pytest.approx(1.0)
    assert sum(m.WEIGHTS.values()) == pytest.approx(1.0)
    partial = {"semantic": 1.0, "chrf": 0.0, "must_include": None, "verdict": None}
    expected = m.WEIGHTS["semantic"] / (m.WEIGHTS["semantic"] + m.WEIGHTS["chrf"])
    assert m.combine(partial) == pytest.approx(expected)
    assert m.combine({}) == 0.0


def test_policy_failure_caps_the_score() -> None:
    good = {k: 1.0 for k in m.WEIGHTS}
    assert m.overall_score(good, verdict="pass") == 1.0
    forbidden = {**good, "must_not_include": 0.0}
    assert m.overall_score(forbidden, verdict="pass") == m.POLICY_FAILURE_CAP
    rejected = {**good, "verdict": 0.0}
    assert m.overall_score(rejected, verdict="reject") == m.POLICY_FAILURE_CAP
    # A case that expects a rejection is not a policy failure when the guardrail rejects.
    assert m.overall_score(good, expect_verdict="reject", verdict="reject") == 1.0


def test_embedding_cache_computes_each_text_once(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    cache = m.EmbeddingCache(tmp_path / "c.sqlite", embed, batch=2)
    first = cache.get(["a", "bb", "a", "ccc"])
    assert first.shape == (4, 2) and first[0, 0] == 1 and first[3, 0] == 3
    assert sorted(t for c in calls for t in c) == ["a", "bb", "ccc"]
    assert max(len(c) for c in calls) <= 2
    reopened = m.EmbeddingCache(tmp_path / "c.sqlite", embed)
    calls.clear()
    again = reopened.get(["ccc", "a"])
    assert calls == [] and again[0, 0] == 3
    assert cache.get([]).shape[0] == 0
