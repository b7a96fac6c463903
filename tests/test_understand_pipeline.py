"""The drafting pipeline with message understanding: Traditional Chinese in and out, the
detected topics in the result, thread inheritance."""

from __future__ import annotations

from typing import Any

import pytest

from copilot.draft.pipeline import Copilot
from copilot.draft.types import DraftRequest
from copilot.text.chinese import is_traditional

TRADITIONAL = "我的提幣已經三天了還沒到帳，提幣ID W2409110023，網路是TRC20，請問怎麼處理？"
SIMPLIFIED = "我的提币已经三天了还没到账，提币ID W2409110023，网络是TRC20，请问怎么处理？"


@pytest.fixture(scope="module")
def rules_copilot(offline_copilot: Any) -> Copilot:
    return Copilot(
        retriever=offline_copilot.retriever,
        backend=offline_copilot.backend,
        guardrail=offline_copilot.guardrail,
        prompts=offline_copilot.prompts,
        drafter=offline_copilot.drafter,
        settings=offline_copilot.settings,
    )


@pytest.mark.parametrize("which", ["shipped", "rules"])
def test_traditional_chinese_round_trip(
    offline_copilot: Copilot, rules_copilot: Copilot, which: str
) -> None:
    copilot = offline_copilot if which == "shipped" else rules_copilot
    res = copilot.draft(DraftRequest(TRADITIONAL, language="zh"))
    assert res.variant == "zh-Hant" and is_traditional(res.draft), res.draft
    assert "faq/withdrawal" in [s["id"] for s in res.sources]
    assert "[faq/withdrawal]" in res.draft and not res.blocked
    same = copilot.draft(DraftRequest(SIMPLIFIED, language="zh"))
    assert same.variant is None and not is_traditional(same.draft)
    # the same primary article (the model may see a second topic in one script only)
    assert [s["id"] for s in same.sources][:1] == [s["id"] for s in res.sources][:1]


def test_without_the_model_the_result_carries_no_understanding(rules_copilot: Copilot) -> None:
    res = rules_copilot.draft(DraftRequest("How do I reset my password?", language="en"))
    assert res.understanding is None and res.to_dict()["understanding"] is None
    assert "understanding" not in res.latency_ms


def test_the_shipped_model_routes_and_shows_its_reading(offline_copilot: Copilot) -> None:
    """With models/understand.npz the draft carries the topics and their confidence, and a
    phishing victim who also asks about a password reset gets freeze-first, not reset steps."""
    assert offline_copilot.understanding is not None
    res = offline_copilot.draft(
        DraftRequest(
            "I clicked a link in an email and typed my password and my 2FA code on the site. "
            "Now I can't log in. How do I reset my password?",
            language="en",
        )
    )
    assert res.understanding is not None
    assert any(f["flag"] == "account_compromised" for f in res.understanding["flags"])
    assert [s["id"] for s in res.sources] == ["faq/security"]
    assert "Freeze" in res.draft and "understanding" in res.latency_ms
    top = res.understanding["topics"][0]
    assert 0.0 < top["p"] <= 1.0 and res.to_dict()["understanding"] == res.understanding
