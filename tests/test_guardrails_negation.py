"""Negation: an optional word slot in a pattern never swallows the negation that cancels a hit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from copilot.guard.guardrail import PolicyGuardrail
from copilot.guard.matching import spells_negation
from copilot.guard.policy import parse_policy
from tests.conftest import rules_only

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def guardrail() -> PolicyGuardrail:
    from copilot.settings import get_settings

    return PolicyGuardrail.from_settings(rules_only(get_settings()))


# (rule, language, draft): the negated form passes, the positive form next to it still fires.
NEGATED = [
    (
        "investment_advice",
        "en",
        "You should never buy a coin because someone online says it will rise.",
    ),
    ("investment_advice", "en", "You should not buy anything based on tips from strangers."),
    ("investment_advice", "en", "You should NOT invest in highly speculative assets."),
    ("investment_advice", "en", "You might not want to buy on margin at all."),
    ("investment_advice", "en", "You should never invest money you can't afford to lose."),
    (
        "investment_advice",
        "ja",
        "投資判断につきましては、当社から特定の銘柄の購入をおすすめすることはできかねます。",
    ),
    (
        "investment_advice",
        "ja",
        "投資判断は、当社から特定の銘柄の買いをおすすめすることは、立場上できません。",
    ),
    (
        "investment_advice",
        "ja",
        "レバレッジは何倍がおすすめかというご質問には、お答えできかねます。",
    ),
    ("investment_advice", "ja", "どの銘柄の購入がおすすめかといったご案内は、当社ではできません。"),
    ("investment_advice", "zh", "我们不建议您根据他人的推荐买入。"),
    ("investment_advice", "zh", "建议您不要因为别人的推荐就买入。"),
    ("profit_promise", "en", "You will not necessarily get your money back by trading more."),
    ("profit_promise", "ja", "損失を取り戻せるとは限りません。"),
    ("profit_promise", "zh", "亏损不一定能赚回来。"),
    ("unsupported_promise", "en", "We will not refund the fee."),
    ("unsupported_promise", "en", "It will not be processed today."),
    ("prompt_injection_followed", "en", "I have not raised your limit."),
]
POSITIVE = [
    ("investment_advice", "en", "You should really buy more ETH now."),
    ("investment_advice", "en", "You should buy NVDA options before earnings."),
    ("investment_advice", "en", "I'd recommend no more than 5x leverage for this trade."),
    ("investment_advice", "en", "You should not sell now, it will recover."),
    ("investment_advice", "en", "You shouldn't sell at a loss."),
    ("investment_advice", "ja", "今が買い時であることは間違いありません。"),
    ("investment_advice", "zh", "建议您现在买入。"),
    ("investment_advice", "zh", "建议您不要卖出。"),
    ("investment_advice", "zh", "建议您不要错过这次抄底机会买入。"),
    ("profit_promise", "en", "Without a doubt, you'll make it back next time."),
    ("profit_promise", "ja", "次の取引で必ず取り返せます。"),
    ("profit_promise", "zh", "下一单就能赚回来。"),
    ("unsupported_promise", "en", "We'll process it no later than tomorrow."),
    # blame phrases carry their own negations; only a negation before the hit cancels one
    ("blame_customer", "en", "This happened because you didn't read the risk warning."),
    ("blame_customer", "zh", "这次转错是您自己没有核对清楚造成的。"),
    ("blame_customer", "ja", "損失が出たのは、お客様がマージンコールを確認されなかったためです。"),
]
BLAME_NEGATED = [
    ("en", "This is not your fault, and I'm here to help."),
    ("ja", "今回の件はお客様の責任ではございません。"),
    ("zh", "这不是您的错，我们一起看看强平记录。"),
]


@pytest.mark.parametrize(("rule", "lang", "draft"), NEGATED)
def test_negated_forms_pass(guardrail: PolicyGuardrail, rule: str, lang: str, draft: str) -> None:
    v = guardrail.check(draft, language=lang)
    assert v.verdict == "pass", [(x.rule, x.excerpt) for x in v.violations]


@pytest.mark.parametrize(("rule", "lang", "draft"), POSITIVE)
def test_positive_forms_stay_rejected(
    guardrail: PolicyGuardrail, rule: str, lang: str, draft: str
) -> None:
    v = guardrail.check(draft, language=lang)
    assert rule in v.rules, [(x.rule, x.excerpt) for x in v.violations]


@pytest.mark.parametrize(("lang", "draft"), BLAME_NEGATED)
def test_blame_negated_before_the_hit_passes(
    guardrail: PolicyGuardrail, lang: str, draft: str
) -> None:
    assert guardrail.check(draft, language=lang).verdict == "pass"


def test_every_language_has_negated_and_positive_cases() -> None:
    for rule in ("investment_advice", "profit_promise"):
        for lang in ("en", "ja", "zh"):
            assert any(r == rule and lg == lang for r, lg, _ in NEGATED), (rule, lang)
            assert any(r == rule and lg == lang for r, lg, _ in POSITIVE), (rule, lang)


def test_pattern_that_spells_a_negation_keeps_it() -> None:
    en = [re.compile(r"\b(?:not|never|no)\b|n't\b")]
    zh = [re.compile(r"不(?!妨)|没有?")]
    assert spells_negation(r"\byou\s+should(?:n't|\s+not)\s+have\b", en)
    assert spells_negation(r"\b(?:can't|cannot)\s+lose\b", en)
    assert not spells_negation(r"\byou\s+should\s+(?:\w+\s+)?(?:buy|sell)\b", en)
    assert not spells_negation(r"\bnow\s+is\s+a\s+good\s+time\b", en)  # \bno is not "now"
    assert spells_negation(r"如果您?[^。]{0,20}?(?:就不会|也就不会)", zh)
    assert not spells_negation(r"(?:也可以|不妨)考虑", zh)


def test_policy_negation_modes() -> None:
    text = """\
version: 1
languages: [en]
negation:
  en: {before: '\\bnever\\b'}
rules:
  - id: demo
    description: Demo.
    severity: block
    languages: [en]
    message: Bad.
    fix: Better.
    detection:
      patterns:
        en: ['\\byou\\s+should\\s+(?:\\w+\\s+)?buy\\b', {re: '\\bhold\\s+(?:\\w+\\s+)?on\\b', negation: before}]
"""
    policy = parse_policy(text, Path("p.yaml"), ())
    patterns = policy.rule("demo").detection.patterns["en"]
    assert [p.negation for p in patterns] == ["auto", "before"]
    g = PolicyGuardrail(policy)
    assert g.check("You should never buy on tips.", language="en").verdict == "pass"
    assert g.check("You should buy on tips.", language="en").verdict == "reject"
    # explicit `before`: only a cue before the hit counts
    assert g.check("Hold never on.", language="en").verdict == "reject"
    assert g.check("Never hold on.", language="en").verdict == "pass"
