"""Every reply template and offline phrase can be sent as it is (docs/kb-format.md, "Reply templates").

Read over all KB reply templates (FAQ ``reply-template``, playbook ``level-1``..``level-3``),
the FAQ key facts a playbook template inserts at ``{facts}``, and every phrase of
prompts/offline_phrases.yaml, in en, ja and zh:

* nothing reports an agent's action as done ("I have checked", 「転送しました」, 「已转交」):
  the agent may not have done it yet; an action is said in the future, or the agent
  confirms it in a ``[confirm: ...]`` placeholder (the only place a done-claim may stand);
* no cheerful wish ("Have a great day!", 「良い一日を」, “祝您一切顺利！”) in a template or
  phrase: the one sign-off goes under losses, hacked accounts and complaints too;
* refund and compensation demands: no template promises one; the escalation templates
  say it cannot be promised and that a review decides;
* the level-2 and level-3 liquidation templates keep the mark-price explanation;
* ja and zh menu paths: the path in the reader's language, then the on-screen English
  labels in full-width brackets (no bare "Assets > History"), and the customers' terms
  (提币 for a crypto withdrawal, マイナンバーカード among Japanese KYC documents).

The detectors are checked on hand-written bad and good sentences first, so a pattern
that stops matching fails here rather than passing everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.draft.offline.phrases import Phrases
from copilot.kb.articles import Article, load_kb

ROOT = Path(__file__).resolve().parent.parent
LANGS = ("en", "ja", "zh")
TEMPLATE_ANCHORS = ("reply-template", "level-1", "level-2", "level-3")

# A placeholder the agent fills before sending; what it says may be a done-claim.
CONFIRM = re.compile(r"\[confirm:[^\[\]\n]+\]")

DONE_CLAIM = {
    "en": re.compile(
        r"\b(?:I|we)(?:'ve| have)(?: already| also| now| just)? "
        r"(?:checked|escalated|recorded|noted|written|passed|forwarded|handed|opened|"
        r"registered|filed|gone through|looked|reviewed|verified|refunded|reported|contacted|"
        r"submitted|logged|raised|sent|asked|confirmed|investigated|fixed|resolved|unlocked)\b"
        r"|\b(?:I|we)(?:'m| am| are)(?: now)? (?:passing|handing|forwarding|escalating|"
        r"opening|registering|recording|refunding)\b"
        r"|\b(?:has|have) (?:already )?been (?:escalated|forwarded|passed on|handed over|"
        r"refunded|recorded|registered|submitted|reviewed|resolved|fixed)\b",
        re.IGNORECASE,
    ),
    "ja": re.compile(
        r"(?:確認|記録|転送|引き継ぎ|引継ぎ|お引き継ぎ|エスカレーション|申請|返金|補償|登録|手配|"
        r"調査|報告|共有|送信|受付|対応|修正)(?:を)?(?:いたし|致し|し)(?:ました(?!ら)|ております)"
        r"|引き継ぎました|引き継いで(?:おります|います)|受け付けました|(?:まとめ|お調べし|調べ)ました(?!ら)"
        r"|(?:引き継ぎ|転送|確認|記録|申請|エスカレーション|対応)済み"
        r"|(?:確認|調査)したところ"
    ),
    "zh": re.compile(
        r"我们?(?:已经|已)|已(?:经)?为您"
        r"|已(?:经)?(?:转交|记录|提交|核实|核查|查看|升级|退款|退还|处理|上报|登记|受理|转给|安排|修复)"
        r"|(?:转交|记录|提交|核查|核实|查看|升级|上报|登记)了"
    ),
}

CHEERFUL = {
    "en": re.compile(
        r"\bhave a (?:great|nice|good|wonderful|lovely|fantastic) (?:day|one|weekend|evening)"
        r"|\bhappy trading\b|\benjoy\b|\bgood luck\b|\bcheers\b|\ball the best\b"
        r"|\bbest wishes\b|\bkeep smiling\b",
        re.IGNORECASE,
    ),
    "ja": re.compile(
        r"(?:良い|よい|素敵な|すてきな|楽しい)(?:一日|週末|お取引|トレード)|お楽しみ|ご健闘|ご幸運|幸運を"
    ),
    "zh": re.compile(
        r"祝您?.{0,10}(?:顺利|愉快|开心|好运|快乐|发财|成功|心想事成|万事如意|盈利|大赚)"
        r"|交易愉快|生活愉快|好运"
    ),
}

# A promise of money back: refund, compensation or a reversal stated as what will happen.
REFUND_PROMISE = {
    "en": re.compile(
        r"\b(?:we|I) (?:will|'ll|shall) (?:refund|compensate|reimburse|reverse|credit you)"
        r"|\byou will (?:be refunded|be compensated|get (?:your|the) (?:money|funds|fee) back|"
        r"receive (?:a|your) refund)|\bguarantee",
        re.IGNORECASE,
    ),
    "ja": re.compile(
        r"(?:返金|補償|返還|取り消し|取消)(?:を)?(?:いたします|させていただきます|します|いたしますので)"
        r"|必ず(?:返金|補償)|保証いたします"
    ),
    "zh": re.compile(
        r"(?:我们|我)(?:会|将)(?:为您|给您)?(?:退款|退还|补偿|赔偿|撤销)|保证(?:退款|补偿|赔偿)"
        r"|一定(?:会)?(?:退款|补偿|赔偿)"
    ),
}

# The liquidation explanation: the mark price, not the last traded price, triggers it.
MARK_PRICE = {
    "en": ("mark price", "last traded price"),
    "ja": ("マークプライス", "最終取引価格"),
    "zh": ("标记价格", "最新成交价"),
}

# A refund/compensation demand: the escalation template says it can't be promised.
NO_PROMISE = {
    "en": re.compile(r"can't promise (?:a refund|one)"),
    "ja": re.compile(r"返金や補償.{0,12}お約束することはできかねます"),
    "zh": re.compile(r"无法事先(?:作出承诺|承诺退款或补偿)"),
}

# On-screen English labels that must not stand bare in ja/zh text.
EN_LABELS = (
    "Assets",
    "Account",
    "Markets",
    "Positions",
    "Futures",
    "Options",
    "Orders",
    "Learn Center",
    "Rewards Center",
    "Demo Trading",
    "Forgot password",
    "Unlock account",
    "Completed",
    "Processing",
    "Reset 2FA",
    "Disable account",
    "Download my data",
    "Fee Details",
    "Liquidation History",
    "Order History",
    "Identity Verification",
    "API Management",
)
_BRACKETED = re.compile(r"（[^（）\n]*）")
_EN_PATH = re.compile(r"[A-Za-z][A-Za-z0-9 ]*\s*>\s*")
_EN_LABEL = re.compile(r"(?<![A-Za-z])(?:" + "|".join(map(re.escape, EN_LABELS)) + r")(?![A-Za-z])")
# 提现 may stand only for a bank withdrawal or beside 提币 where a rule covers both.
_TIXIAN_OK = re.compile(r"(?:银行（法币）|银行|法币)提现|提币[和与或、]提现|也常被称为提现")


# "until / once / after we have verified ...": a condition, not a claim.
_CONDITION = re.compile(r"\b(?:until|once|after|when|if|as soon as)\s+$", re.IGNORECASE)


def done_claims(text: str, lang: str) -> list[str]:
    """Fragments that report an agent action as done (``[confirm: ...]`` ignored)."""
    text = CONFIRM.sub("", text)
    return [
        m.group()
        for m in DONE_CLAIM[lang].finditer(text)
        if not _CONDITION.search(text[max(0, m.start() - 14) : m.start()])
    ]


def cheerful(text: str, lang: str) -> list[str]:
    return [m.group() for m in CHEERFUL[lang].finditer(text)]


def bare_menu_english(text: str) -> list[str]:
    """English menu paths or labels outside the full-width brackets that follow a local path."""
    problems = []
    for m in _BRACKETED.finditer(text):
        inner, before = m.group()[1:-1], text[: m.start()]
        if (
            ">" in inner
            and re.search(r"[A-Za-z]", inner)
            and re.search(r"(?:^|[A-Za-z\s])$", before)
        ):
            problems.append(f"bracketed path without a local path before it: {m.group()}")
    rest = _BRACKETED.sub("", text)
    problems += [f"bare path: {m.group()}" for m in _EN_PATH.finditer(rest)]
    problems += [f"bare label: {m.group()}" for m in _EN_LABEL.finditer(rest)]
    return problems


def crypto_tixian(text: str) -> list[str]:
    rest = _TIXIAN_OK.sub("", text)
    return [rest[max(0, i - 12) : i + 14] for i in (m.start() for m in re.finditer("提现", rest))]


# ---- the detectors themselves --------------------------------------------------------------

DONE_BAD = {
    "en": [
        "I have checked https://status.example.com, and these are the points.",
        "I've escalated your case to Tier 2.",
        "I have recorded everything you told us.",
        "I'm passing your case to our Tier 2 team now.",
        "We have forwarded your ticket to a specialist.",
        "Your case has been escalated to a supervisor.",
    ],
    "ja": [
        "本件は Tier 2 へ転送しました。",
        "お伺いした内容はすべて記録しております。",
        "https://status.example.com を確認いたしましたので、以下にお示しします。",
        "責任者へ引き継ぎ済みです。",
        "お問い合わせの内容を確認し、お客様に該当する点を以下にまとめました。",
        "本件はすでにエスカレーションいたしました。",
    ],
    "zh": [
        "我已将您的案件转交给 Tier 2 主管。",
        "您的问题已转交 Tier 2。",
        "我们已经记录了您提供的信息。",
        "已为您提交费用复核。",
        "我已经查看了状态页上的信息。",
    ],
}
DONE_OK = {
    "en": [
        "I will pass your case to our Tier 2 team, who will acknowledge it within 1 business day.",
        "If you prefer, I can register a formal complaint for you.",
        "[confirm: escalated to Tier 2] They will acknowledge it within 1 business day.",
        "If you have changed your password, withdrawals are paused for 24 hours.",
        "It stays locked until we have verified your identity.",
    ],
    "ja": [
        "Tier 2 へお引き継ぎいたします。",
        "詳細をお送りいただきましたら、確認のうえご回答いたします。",
        "[confirm: Tier 2 へ引き継ぎ済み] 1営業日以内に受付のご連絡を差し上げます。",
        "出金は当社から送信済みです。",
        "凍結を確認いたしましたら、このチャットでご連絡いたします。",
    ],
    "zh": [
        "我会为您转交 Tier 2 主管团队。",
        "收到这些信息后，我会核实并在这里回复您。",
        "[confirm: 已转交 Tier 2] 他们会在1个工作日内确认受理。",
        "提币已从平台转出。",
    ],
}


@pytest.mark.parametrize("lang", LANGS)
def test_the_done_claim_detector_catches_claims_and_passes_offers(lang: str) -> None:
    missed = [s for s in DONE_BAD[lang] if not done_claims(s, lang)]
    assert missed == [], f"{lang}: done-claims not caught: {missed}"
    wrong = {s: done_claims(s, lang) for s in DONE_OK[lang] if done_claims(s, lang)}
    assert wrong == {}, f"{lang}: honest sentences flagged: {wrong}"


@pytest.mark.parametrize(
    ("lang", "bad", "good"),
    [
        ("en", "Have a great day!", "Best regards,"),
        ("en", "Happy trading!", "If anything is unclear, just reply to this message."),
        ("ja", "良い一日をお過ごしください。", "引き続きよろしくお願いいたします。"),
        ("zh", "祝您一切顺利！", "如有其他问题，欢迎随时联系我们。"),
        ("zh", "祝您交易愉快！", "我会把您的案件转交给 Tier 2 主管。"),
    ],
)
def test_the_cheerful_closing_detector(lang: str, bad: str, good: str) -> None:
    assert cheerful(bad, lang)
    assert cheerful(good, lang) == []


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("請在 Assets > History > Withdrawals 中查看。", False),
        ("お客様は Markets でご覧いただけます。", False),
        ("「Forgot password」をご利用ください。", False),
        ("（Assets > Withdraw）から出金できます。", False),
        ("资产 > 提币（Assets > Withdraw）", True),
        ("資産 > 履歴 > 出金（Assets > History > Withdrawals）を開き", True),
        ("「パスワードをお忘れの方（Forgot password）」", True),
        ("Tier 2 の責任者へお引き継ぎいたします。BTC 0.0002 BTC、USDT-TRC20", True),
    ],
)
def test_the_menu_path_detector(text: str, ok: bool) -> None:
    assert (bare_menu_english(text) == []) is ok, bare_menu_english(text)


def test_the_term_detectors() -> None:
    assert crypto_tixian("请回复提现ID，我们会为您核查。")
    assert (
        crypto_tixian("银行（法币）提现需要1-3个工作日；修改密码后提币和提现将暂停24小时。") == []
    )
    assert REFUND_PROMISE["en"].search("We will refund the fee once the review is done.")
    assert REFUND_PROMISE["ja"].search("手数料は返金いたします。")
    assert REFUND_PROMISE["zh"].search("我们会为您退款。")
    assert not REFUND_PROMISE["en"].search(
        "A refund is possible only if the review confirms a system error."
    )


# ---- the shipped templates and phrases -----------------------------------------------------


def _kb() -> list[Article]:
    return load_kb(ROOT / "knowledge")


def templates(lang: str) -> Iterator[tuple[str, str]]:
    """(where, text) for every reply template and inserted key-fact list in ``lang``."""
    for art in _kb():
        if art.language != lang:
            continue
        for anchor in TEMPLATE_ANCHORS:
            sec = art.section(anchor)
            if sec is not None:
                yield f"{art.id} [{anchor}]", sec.text
        if art.type == "faq":
            yield f"{art.id} [key-facts]", "\n".join(art.bullets("key-facts"))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def phrases(lang: str) -> Iterator[tuple[str, str]]:
    """(where, text) for every phrase of the offline drafter sent to a customer."""
    loaded = Phrases.load(ROOT / "prompts" / "offline_phrases.yaml")
    for section in ("greeting", "sign_off", "empathy", "handover", "abstain", "facts_lead_in"):
        for i, text in enumerate(_strings(loaded.get(section, lang))):
            yield f"offline_phrases {section}.{lang}[{i}]", text
    # the understanding-driven phrases: safety-first replies (every situation), the facts
    # used inside an answer, the vague question, the second-topic connector
    for section in (
        "vague_question",
        "out_of_scope_reply",
        "security_escalation",
        "second_topic",
        "ask_missing",
        "compromised",
    ):
        for i, text in enumerate(_strings(loaded.data[section][lang])):
            yield f"offline_phrases {section}.{lang}[{i}]", text
    for slot, variants in loaded.data["facts_said"][lang].items():
        for i, variant in enumerate(variants):
            yield f"offline_phrases facts_said.{lang}.{slot}[{i}]", variant["text"]


def everything(lang: str) -> list[tuple[str, str]]:
    return [*templates(lang), *phrases(lang)]


def test_every_language_has_its_templates_and_phrases() -> None:
    for lang in LANGS:
        items = everything(lang)
        assert sum(1 for where, _ in items if "[level-3]" in where) == 5, lang
        assert sum(1 for where, _ in items if "[reply-template]" in where) == 15, lang
        assert any("sign_off" in where for where, _ in items), lang
        # the understanding-driven phrases are checked too: every compromise situation,
        # every facts_said variant, the out-of-scope decline
        # phishing, access, steps, official + lead and steps of 5 situations
        assert sum(1 for where, _ in items if "compromised" in where) == 4 + 5 * 2, lang
        assert sum(1 for where, _ in items if "facts_said" in where) >= 7, lang
        assert any("out_of_scope_reply" in where for where, _ in items), lang


@pytest.mark.parametrize("lang", LANGS)
def test_no_template_or_phrase_claims_an_action_as_done(lang: str) -> None:
    found = {where: done_claims(text, lang) for where, text in everything(lang)}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("lang", LANGS)
def test_no_cheerful_wish_in_any_template_or_phrase(lang: str) -> None:
    # The sign-off goes under every reply, a loss or a complaint included, and a playbook
    # template (liquidation, fee dispute, escalation, fault, angry customer) is one.
    found = {where: cheerful(text, lang) for where, text in everything(lang)}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("lang", LANGS)
def test_no_template_promises_a_refund_or_compensation(lang: str) -> None:
    found = {
        where: m.group()
        for where, text in everything(lang)
        if (m := REFUND_PROMISE[lang].search(text))
    }
    assert found == {}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("level", ["level-2", "level-3"])
def test_escalation_templates_name_the_review_instead_of_promising(lang: str, level: str) -> None:
    text = dict(templates(lang))[f"playbook/escalation [{level}]"]
    assert NO_PROMISE[lang].search(text), text


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("level", ["level-1", "level-2", "level-3"])
def test_liquidation_templates_keep_the_mark_price_explanation(lang: str, level: str) -> None:
    text = dict(templates(lang))[f"playbook/liquidation [{level}]"]
    mark, _ = MARK_PRICE[lang]
    assert mark in text, f"{lang} {level}: no mark-price explanation"


@pytest.mark.parametrize("lang", LANGS)
def test_the_level3_liquidation_template_says_it_is_not_the_last_traded_price(lang: str) -> None:
    text = dict(templates(lang))["playbook/liquidation [level-3]"]
    for needed in MARK_PRICE[lang]:
        assert needed in text, f"{lang}: level-3 liquidation template lacks {needed!r}"


@pytest.mark.parametrize("lang", ["ja", "zh"])
def test_menu_paths_are_localised_in_every_ja_and_zh_article(lang: str) -> None:
    problems = {
        f"{art.id} ({art.path.name})": found
        for art in _kb()
        if art.language == lang and (found := bare_menu_english(art.body))
    }
    problems.update(
        {where: found for where, text in phrases(lang) if (found := bare_menu_english(text))}
    )
    assert problems == {}


def test_chinese_says_tibi_for_a_crypto_withdrawal() -> None:
    found = {
        f"{art.id}": hits
        for art in _kb()
        if art.language == "zh" and (hits := crypto_tixian(art.title + "\n" + art.body))
    }
    found.update({where: hits for where, text in phrases("zh") if (hits := crypto_tixian(text))})
    assert found == {}


def test_japanese_kyc_document_lists_name_the_my_number_card() -> None:
    lists = [
        (art.id, sentence)
        for art in _kb()
        if art.language == "ja"
        for sentence in re.split(r"(?<=[。\n])", art.body)
        if "パスポート" in sentence and "運転免許証" in sentence
    ]
    assert lists, "no Japanese sentence lists the KYC documents"
    missing = [(aid, s) for aid, s in lists if "マイナンバーカード" not in s]
    assert missing == []


_BUTTONS = {
    "ja": ("「アカウントを無効化」", "「2FAをリセット」", "「データをダウンロード」"),
    "zh": ("“禁用账户”", "“重置2FA”", "“下载我的数据”"),
}


@pytest.mark.parametrize("lang", ["ja", "zh"])
def test_local_button_names_carry_the_on_screen_english(lang: str) -> None:
    """A ja/zh path to a button is followed by the English path on screen (platform facts:
    the app's labels are English), e.g. 「アカウントを無効化」（Account > Security > Disable
    account）: support leads marked safety replies without it as needing edits."""
    missing = {
        where: button
        for where, text in [*templates(lang), *phrases(lang)]
        for button in _BUTTONS[lang]
        for m in re.finditer(re.escape(button), text)
        if not re.match(r"[（(][A-Za-z]", text[m.end() :])
    }
    assert not missing, missing
