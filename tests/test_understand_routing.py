"""Routing from learned understanding: the safety overrides beat retrieval, the confident
topic picks the article, and without weights the rules route as before."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from copilot.draft.factory import load_understanding
from copilot.draft.offline.compose import OfflineDraft, OfflineDrafter
from copilot.draft.offline.routing import (
    CONFIDENT,
    FALLBACK,
    SECOND,
    SECOND_ASKED,
    Route,
    asks_two_things,
    route_for,
    route_message,
)
from copilot.draft.offline.scenario import ANGRY
from copilot.kb.articles import Article, load_kb
from copilot.settings import Settings
from copilot.understand.model import Understanding

ROOT = Path(__file__).resolve().parent.parent
PHRASES = ROOT / "prompts" / "offline_phrases.yaml"


@dataclass
class H:
    article_id: str
    score: float = 0.8
    type: str = "faq"


@pytest.fixture(scope="module")
def drafter() -> OfflineDrafter:
    kb = {(a.id, a.language): a for a in load_kb(ROOT / "knowledge")}

    def lookup(aid: str, lang: str) -> Article | None:
        return kb.get((aid, lang))

    return OfflineDrafter.from_file(PHRASES, lookup)


def _u(primary: str, p: float = 0.9, *flags: str, emotion: int = 0) -> Understanding:
    return Understanding(((primary, p),), tuple((f, 0.9) for f in flags), emotion)


def test_route_for_each_situation() -> None:
    weak = Understanding((("faq/2fa-reset", 1.0),), (("account_compromised", 0.31),), 1)
    assert route_for(weak) == Route(None, "faq/2fa-reset")
    assert route_for(_u("faq/password-reset", 0.9, "account_compromised")) == Route(
        "account_compromised", "faq/security", 1, escalate=True, compromise="access"
    )
    assert route_for(_u("faq/withdrawal", 0.4, "asks_for_prediction_or_advice")).article == (
        "faq/market-info-disclaimer"
    )
    assert route_for(_u("greeting_or_vague")) == Route("vague")
    assert route_for(_u("playbook/liquidation", 0.5, "accusation")) == Route(
        "accusation", "playbook/liquidation", 2
    )
    assert route_for(_u("out_of_scope", 0.9, "refund_or_compensation_demand")).article is None
    assert route_for(_u("faq/fees", CONFIDENT)) == Route(None, "faq/fees")
    # under CONFIDENT, retrieval chooses; the topic is only what answers if it abstains
    assert route_for(_u("faq/fees", CONFIDENT - 0.01)) == Route(fallback="faq/fees")
    assert route_for(_u("faq/fees", FALLBACK)) == Route(fallback="faq/fees")
    assert route_for(_u("faq/fees", FALLBACK - 0.01)) == Route()
    assert route_for(_u("out_of_scope", 0.5)).fallback is None  # only an article


def test_a_second_topic_gets_its_section_from_its_threshold() -> None:
    def two(p: float) -> Understanding:
        return Understanding((("faq/deposit", 0.9), ("faq/fees", p)), (), 0)

    assert SECOND == 0.5
    assert route_for(two(SECOND)).second == "faq/fees"
    assert route_for(two(SECOND - 0.01)).second is None


def test_the_security_topic_alone_is_no_compromise() -> None:
    """faq/security as the primary topic with the flag under SURE: a question about an
    e-mail or a login alert, answered from the FAQ, never the freeze-your-account steps."""
    calm = Understanding((("faq/security", 0.97),), (("account_compromised", 0.44),), 1)
    assert route_for(calm) == Route(None, "faq/security")
    sure = Understanding((("faq/security", 0.97),), (("account_compromised", 0.5),), 1)
    assert route_for(sure).override == "account_compromised"
    # the compromise rules still route a message the model reads calmly
    told = "I typed my password and 2FA code into a fake site from a text message"
    route = route_message(calm, told)
    assert route is not None and route.override == "account_compromised"


def test_a_lost_authenticator_read_as_a_security_matter_gets_the_2fa_reset() -> None:
    def reading(flag: float) -> Understanding:
        topics = (("faq/security", 0.95), ("faq/2fa-reset", 0.9))
        return Understanding(topics, (("account_compromised", flag),), 1)

    lost = "My phone went in the lake with the authenticator app. How do I get back in?"
    assert route_message(reading(0.81), lost) == Route(None, "faq/2fa-reset")
    assert route_message(reading(0.95), lost).override == "account_compromised"
    # without the 2FA topic the security reading with a sure flag stays a compromise
    alone = Understanding((("faq/security", 0.95),), (("account_compromised", 0.81),), 1)
    assert route_for(alone).override == "account_compromised"


def test_a_message_that_asks_two_things_gets_its_second_section_from_a_lower_p() -> None:
    probs = {"faq/deposit": 0.9, "faq/fees": 0.35, "faq/kyc": 0.1, "greeting_or_vague": 0.2}
    reading = Understanding((("faq/deposit", 0.9),), (), 0, probs)
    asked = "My SOL deposit is missing. Also, what is the fee to withdraw USDT?"
    assert asks_two_things(asked) and route_message(reading, asked).second == "faq/fees"
    plain = "My SOL deposit is missing since this morning, the TxID is 5fX9"
    assert not asks_two_things(plain) and route_message(reading, plain).second is None
    assert route_for(reading, two=True).second == "faq/fees"
    under = Understanding(
        (("faq/deposit", 0.9),), (), 0, {**probs, "faq/fees": SECOND_ASKED - 0.01}
    )
    assert route_for(under, two=True).second is None
    for words in (
        "入金がまだです。あと、出金手数料はいくらですか",
        "充值没到账，另外提币手续费多少？",
    ):
        assert asks_two_things(words), words
    # the freeze-your-account steps never come from a weak reading
    weak = Understanding((("faq/kyc", 0.9),), (), 0, {"faq/kyc": 0.9, "faq/security": 0.45})
    assert route_message(weak, "KYC pending. Also, is this login alert real?").second is None
    # an inherited reading (a follow-up) keeps its detected topics only
    inherited = dataclasses.replace(reading, inherited=True)
    assert route_for(inherited, two=True).second is None


def test_a_sure_enough_topic_answers_where_retrieval_found_no_faq(
    drafter: OfflineDrafter,
) -> None:
    message = "app says Completed but my wallet still shows zero, where is it"
    route = route_for(_u("faq/withdrawal", 0.44))
    for hits, abstain in (([], True), ([H("faq/deposit", 0.1)], False)):
        draft = drafter.compose(
            message=message,
            language="en",
            name=None,
            hits=hits,  # type: ignore[arg-type]
            abstain=abstain,
            route=route,
        )
        assert draft.scenario == "faq" and [a.id for a in draft.articles] == ["faq/withdrawal"]
    # below FALLBACK: the questionnaire, as before
    weak = route_for(_u("faq/withdrawal", FALLBACK - 0.1))
    draft = drafter.compose(
        message=message, language="en", name=None, hits=[], abstain=True, route=weak
    )
    assert draft.scenario == "abstain"


def _compose(
    drafter: OfflineDrafter, message: str, lang: str, ids: list[str], route: Route, **kw: int
) -> OfflineDraft:
    return drafter.compose(
        message=message,
        language=lang,
        name=None,
        hits=[H(a, 0.8, a.split("/")[0]) for a in ids],  # type: ignore[misc]
        abstain=False,
        emotion=kw.get("emotion", 0),
        route=route,
    )


@pytest.mark.parametrize("lang", ["en", "ja", "zh"])
def test_a_compromised_account_gets_freeze_first_and_escalation(
    drafter: OfflineDrafter, lang: str
) -> None:
    route = route_for(_u("faq/password-reset", 0.9, "account_compromised"))
    d = _compose(
        drafter, "I typed my password and code on a fake site", lang, ["faq/password-reset"], route
    )
    assert d.cited == ["faq/security"] and d.scenario == "faq"
    text = d.text
    assert drafter.phrases.optional("security_escalation", lang) in text
    freeze = {"en": "Freeze", "ja": "凍結", "zh": "冻结"}[lang]
    assert freeze in text


@pytest.mark.parametrize("lang", ["en", "ja", "zh"])
def test_advice_gets_the_disclaimer_and_vague_gets_one_question(
    drafter: OfflineDrafter, lang: str
) -> None:
    d = _compose(
        drafter,
        "will BTC pump?",
        lang,
        ["faq/withdrawal"],
        route_for(_u("faq/withdrawal", 0.5, "asks_for_prediction_or_advice")),
    )
    assert d.cited == ["faq/market-info-disclaimer"]
    v = _compose(drafter, "help??", lang, ["faq/withdrawal"], route_for(_u("greeting_or_vague")))
    assert v.scenario == "vague" and v.cited == []
    assert v.text.endswith(drafter.phrases.optional("vague_question", lang))
    assert len(v.blocks) == 2


def test_an_accusation_never_gets_a_level_1_template(drafter: OfflineDrafter) -> None:
    plain = _compose(
        drafter, "you manipulated the price, refund me", "ja", ["faq/order-execution"], Route()
    )
    assert plain.scenario == "faq" and plain.level == 0
    routed = _compose(
        drafter,
        "you manipulated the price, refund me",
        "ja",
        ["faq/order-execution"],
        route_for(_u("faq/order-execution", 0.8, "accusation", "refund_or_compensation_demand")),
    )
    # upset about a concrete matter: that matter's answer at level 2, with the supervisor
    # offered, not the angry-customer playbook that says nothing about it
    assert routed.scenario == "faq" and routed.level == 2
    assert routed.cited == ["faq/order-execution"]
    assert drafter.phrases.get("handover", "ja") in routed.text
    level2 = drafter.phrases.data["empathy"]["ja"][2].values()
    assert any(v and v in routed.text for v in level2)  # the level-2 empathy, one variant
    vague = _compose(  # an accusation with no matter named keeps the playbook
        drafter,
        "you manipulated the price, refund me",
        "ja",
        ["faq/order-execution"],
        route_for(_u("greeting_or_vague", 0.8, "accusation", "refund_or_compensation_demand")),
    )
    assert vague.scenario == ANGRY and vague.level == 2
    liq = _compose(
        drafter,
        "you liquidated me on purpose",
        "en",
        ["faq/risk-tools"],
        route_for(_u("playbook/liquidation", 0.6, "accusation")),
    )
    assert liq.scenario == "playbook/liquidation" and liq.level >= 2


def test_a_confident_topic_picks_the_article(drafter: OfflineDrafter) -> None:
    d = _compose(
        drafter, "提幣三天還沒到", "zh", ["faq/deposit"], route_for(_u("faq/withdrawal", 0.95))
    )
    assert d.cited == ["faq/withdrawal"]
    unsure = _compose(
        drafter, "提幣三天還沒到", "zh", ["faq/deposit"], route_for(_u("faq/withdrawal", 0.3))
    )
    assert unsure.cited == ["faq/deposit"]


def test_without_weights_or_when_turned_off_the_rules_route(tmp_path: Path) -> None:
    settings = Settings.load(env={"COPILOT_MODELS_DIR": str(tmp_path)})
    assert load_understanding(settings) is None
    off = dataclasses.replace(
        Settings.load(env={"COPILOT_MODELS_DIR": str(ROOT / "models")}), understand_learned=False
    )
    assert load_understanding(off) is None


@pytest.mark.parametrize("lang", ["en", "ja", "zh"])
def test_an_escalation_about_a_matter_answers_the_matter_too(
    drafter: OfflineDrafter, lang: str
) -> None:
    message = "My withdrawal has been Processing since 6am. Fix it today or I post this on X."
    matter = route_for(_u("faq/withdrawal", 0.99))
    # with the matter the model read, its answer follows the playbook's reply; without one
    # the playbook's reply stands alone
    for route, cited in (
        (matter, ["playbook/escalation", "faq/withdrawal"]),
        (Route(), ["playbook/escalation"]),
    ):
        draft = drafter.compose(
            message=message,
            language=lang,
            name=None,
            hits=[H("playbook/escalation", 0.8, "playbook")],  # type: ignore[list-item]
            abstain=False,
            emotion=2,
            escalation=True,
            route=route,
        )
        assert draft.scenario == "playbook/escalation"
        assert [a.id for a in draft.articles] == cited


def test_an_accusation_keeps_its_second_topic() -> None:
    reading = Understanding(
        (("playbook/escalation", 0.98), ("faq/withdrawal", 0.82)),
        (("accusation", 0.97),),
        3,
    )
    route = route_for(reading)
    assert route.override == "accusation" and route.second == "faq/withdrawal"
