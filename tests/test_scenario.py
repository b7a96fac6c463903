"""Scenario choice of the offline drafter: a topical playbook needs evidence of its situation.

The cue lexicons (``scenario_cues`` in prompts/offline_phrases.yaml), the choice made
from them and the retrieval scores, the FAQ that fills a playbook's ``{facts}``, and
the scenario accuracy over the retrieval dev set (evals/retrieval/queries_v1.jsonl).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from copilot.draft.offline.compose import OfflineDrafter
from copilot.draft.offline.phrases import Phrases
from copilot.errors import CopilotError
from copilot.kb.articles import Article, load_kb

ROOT = Path(__file__).resolve().parent.parent
PHRASES = ROOT / "prompts" / "offline_phrases.yaml"
DEV = ROOT / "evals" / "retrieval" / "queries_v1.jsonl"
LIQ, FEE, TECH = "playbook/liquidation", "playbook/fee-dispute", "playbook/technical-fault"


@dataclass
class H:
    article_id: str
    score: float = 0.8
    type: str = "faq"


@pytest.fixture(scope="module")
def phrases() -> Phrases:
    return Phrases.load(PHRASES)


@pytest.fixture(scope="module")
def kb() -> dict[tuple[str, str], Article]:
    return {(a.id, a.language): a for a in load_kb(ROOT / "knowledge")}


@pytest.fixture(scope="module")
def drafter(kb: dict[tuple[str, str], Article]) -> OfflineDrafter:
    return OfflineDrafter.from_file(PHRASES, lambda aid, lang: kb.get((aid, lang)))


def compose(
    d: OfflineDrafter, message: str, lang: str, hits: list[tuple[str, float]], **kw: Any
) -> Any:
    return d.compose(
        message=message,
        language=lang,
        name=None,
        abstain=False,
        hits=[H(a, s, a.split("/")[0]) for a, s in hits],
        **kw,
    )


# ---- cue lexicons -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "message", "expected"),
    [
        ("en", "My BTC long got liquidated at 3am", {LIQ}),
        ("en", "the liq price was never touched", {LIQ}),
        ("en", "I was charged a fee I never agreed to, I want a refund", {FEE}),
        ("en", "you overcharged me on this trade", {FEE}),
        ("en", "the app keeps crashing when I open futures", {TECH}),
        ("en", "I get an error when I place an order", {TECH}),
        ("ja", "ロスカットされたけど納得できない", {LIQ}),
        ("ja", "BTCのロングが強制決済された", {LIQ}),
        ("ja", "liquidationされたんだけど", {LIQ}),  # English term inside Japanese
        ("ja", "身に覚えのない手数料が引かれてる、返金して", {FEE}),
        ("ja", "手数料が高すぎる", {FEE}),
        ("ja", "アプリがすぐ落ちる", {TECH}),
        ("ja", "注文画面でエラーが出ます", {TECH}),
        ("zh", "凭什么爆我仓", {LIQ}),
        ("zh", "我被liquidate了", {LIQ}),
        ("zh", "多扣了一笔手续费，要求退还", {FEE}),
        ("zh", "app一打开就闪退", {TECH}),
        ("zh", "下单一直报错", {TECH}),
        ("zh", "爆仓就算了，还收我一笔强平手续费？这个钱能退吗", {LIQ, FEE}),
    ],
)
def test_cues_recognise_the_situation(
    phrases: Phrases, lang: str, message: str, expected: set[str]
) -> None:
    assert phrases.evidence(message, lang) == expected


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("en", "What leverage should I use? Is 100x fine?"),  # a question about leverage
        ("en", "What is the taker fee on futures?"),  # a fee question is not a dispute
        ("en", "why got money deducted from my BTC short every 8 hours?"),  # nor is "why"
        ("en", "My withdrawal is still processing after 3 hours, where is my money?"),
        ("en", "I got an e-mail about a 500 USDT bonus, is this link real?"),
        ("ja", "先物の手数料はいくらですか？"),
        ("ja", "「期間限定ボーナス」というメールが来ました。本物ですか？"),
        ("ja", "出金がまだ届きません"),
        ("zh", "合约手续费多少？"),
        ("zh", "资金费率 为啥扣钱"),
        ("zh", "提现还没到账"),
    ],
)
def test_questions_without_the_situation_have_no_cues(
    phrases: Phrases, lang: str, message: str
) -> None:
    assert phrases.evidence(message, lang) == set()


def test_scenario_cues_are_validated(tmp_path: Path) -> None:
    text = PHRASES.read_text(encoding="utf-8")
    bad = tmp_path / "p.yaml"
    bad.write_text(
        text.replace("  playbook/technical-fault:\n", "  playbook/other:\n"), encoding="utf-8"
    )
    with pytest.raises(CopilotError, match="scenario_cues"):
        Phrases.load(bad)
    bad.write_text(text.replace("    zh: ['闪退", "    xx: ['闪退"), encoding="utf-8")
    with pytest.raises(CopilotError, match=r"scenario_cues\.playbook/technical-fault needs"):
        Phrases.load(bad)
    bad.write_text(text.replace("    ja: ['強制決済", "    ja: ['(強制決済"), encoding="utf-8")
    with pytest.raises(CopilotError, match="not a valid regular expression"):
        Phrases.load(bad)


# ---- composition ---------------------------------------------------------------------------------
def test_playbook_ranked_first_without_evidence_gives_way_to_the_faq(
    drafter: OfflineDrafter,
) -> None:
    """The reported failure: a question that merely resembles a liquidation complaint."""
    d = compose(
        drafter,
        "What leverage should I use for futures, is 100x fine?",
        "en",
        [(LIQ, 0.6), ("faq/risk-tools", 0.55), ("faq/market-info-disclaimer", 0.3)],
    )
    assert d.scenario == "faq" and d.cited == ["faq/risk-tools"]
    assert "liquidat" not in d.text.lower()
    ja = compose(
        drafter,
        "先物の手数料はいくらですか？",
        "ja",
        [(LIQ, 0.69), ("faq/fees", 0.67), (FEE, 0.66)],
    )
    assert ja.scenario == "faq" and ja.cited == ["faq/fees"]


def test_cues_choose_the_playbook_even_below_an_faq(drafter: OfflineDrafter) -> None:
    d = compose(
        drafter,
        "I got liquidated and never got a warning",
        "en",
        [("faq/risk-tools", 0.7), (LIQ, 0.5)],
    )
    assert d.scenario == LIQ


def test_upset_delay_is_not_a_fee_dispute(drafter: OfflineDrafter) -> None:
    d = compose(
        drafter,
        "3 HOURS and my USDT withdrawal is still processing. Where is my money?",
        "en",
        [("faq/withdrawal", 0.74), (FEE, 0.51), ("playbook/angry-customer", 0.36)],
        emotion=2,
    )
    assert d.scenario == "playbook/angry-customer"
    assert d.cited == ["playbook/angry-customer", "faq/withdrawal"]


def test_facts_come_from_an_faq_related_to_the_playbook(drafter: OfflineDrafter) -> None:
    """An app error gets order facts (shared tag), never the fee FAQ ranked above them."""
    hits = [(TECH, 0.91), (FEE, 0.84), ("faq/fees", 0.8), ("faq/order-execution", 0.75)]
    d = compose(drafter, "下单的时候一直提示系统错误，订单没挂上", "zh", hits, emotion=1)
    assert d.scenario == TECH and d.cited == [TECH, "faq/order-execution"]


def test_unrelated_facts_are_left_out(drafter: OfflineDrafter) -> None:
    hits = [(TECH, 0.84), ("playbook/angry-customer", 0.68), ("faq/market-info-disclaimer", 0.56)]
    d = compose(drafter, "昨晚APP一直卡顿，下不了单", "zh", hits)
    assert d.scenario == TECH and d.cited == [TECH]
    assert "以下几点" not in d.text and "- " not in d.text


# ---- the dev set ------------------------------------------------------------------------------
def _primary(d: Any) -> str:
    if d.scenario.startswith("playbook/"):
        return str(d.scenario)
    return d.articles[0].id if d.articles else "abstain"


SCENARIO_RIGHT = 101  # queries of the dev set whose scenario is right today


def test_scenario_accuracy_on_the_dev_set(kb_store: Path, drafter: OfflineDrafter) -> None:
    """The chosen playbook or FAQ is one of the query's relevant articles (101 of 132 queries)."""
    from copilot.retrieval.hybrid import HybridRetriever
    from copilot.settings import Settings
    from copilot.understand.signals import analyze_message

    settings = Settings.load(
        env={"COPILOT_DATA_DIR": str(kb_store), "COPILOT_KNOWLEDGE_DIR": str(ROOT / "knowledge")}
    )
    retriever = HybridRetriever.from_settings(settings)
    rows = [
        json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    right = 0
    for row in rows:
        flags = analyze_message(row["query"], row["language"])
        emotion = max((f.level or 0 for f in flags if f.kind == "emotion"), default=0)
        found = retriever.search(row["query"], k=settings.retrieval_k, language=row["language"])
        hits: list[Any] = [] if found.abstain else list(found.hits)
        d = drafter.compose(
            message=row["query"],
            language=row["language"],
            name=None,
            hits=hits,
            abstain=found.abstain,
            emotion=emotion,
            escalation=any(f.kind == "escalation" for f in flags),
        )
        right += _primary(d) in row["relevant_doc_ids"]
    # Pinned at today's count (101 of 132 = 0.765): raising it is welcome whenever the drafter
    # gets better; lowering it needs a reason in the commit message (it had drifted to 3 under;
    # 102 until stop 24, when the new faq/security login-alert section shifted the hybrid
    # scores of the angry zh lockout query ret-zh-007 from faq/login-locked to faq/privacy).
    assert len(rows) == 132
    assert right >= SCENARIO_RIGHT, f"{right} of {len(rows)} right, was {SCENARIO_RIGHT}"
