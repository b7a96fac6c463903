"""Offline drafts read like one competent agent wrote them, in en, ja and zh.

Reading checks (independent of the drafter's own cue patterns) run over every
golden and sample message drafted by the real offline pipeline, and over every
FAQ / playbook / abstention combination at every emotion level:

* the opening paragraph apologises and thanks at most once;
* exactly one sign-off, at the end;
* citation marks only at the end of a sentence, list item or paragraph (never
  inside a sentence or before a colon), no space before them after CJK punctuation;
* a list lead-in is always followed by its list;
* no Markdown, placeholders, repeated sentences or other-language fragments;
* at most one hand-over offer.

Unit tests pin each fix with a small input: templates that end with their own
closing line, Markdown in KB text, doubled honorifics, "also" pointing back at a
list that was left out, facts of an FAQ unrelated to the playbook, bad phrase files.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from copilot.draft.offline.compose import OfflineDraft, OfflineDrafter, plain_text
from copilot.draft.offline.phrases import Phrases, greeting
from copilot.draft.offline.scenario import ANGRY
from copilot.errors import CopilotError
from copilot.kb.articles import Article, load_kb, split_sections

ROOT = Path(__file__).resolve().parent.parent
PHRASES = ROOT / "prompts" / "offline_phrases.yaml"
LANGS = ("en", "ja", "zh")
SIGN_OFF = {
    "en": "Best regards,",
    "ja": "引き続きよろしくお願いいたします。",
    "zh": "如有其他问题，欢迎随时联系我们。",
}

# The test's own reading of the text (deliberately not the drafter's cue patterns).
APOLOGY = {
    "en": r"\bsorry\b|\bapologi",
    "ja": r"申し訳|お詫び|おわび|すみません",
    "zh": r"抱歉|歉意|对不起|致歉",
}
THANKS = {"en": r"\bthank", "ja": r"ありがとう", "zh": r"感谢|谢谢"}
CLOSING = {
    "en": r"^(?:best |kind |warm )?regards,?$|^sincerely,?$",
    "ja": r"よろしくお願い(?:いた|申し上げ)?(?:します|ます)。?$",
    "zh": r"^祝您|^此致|^敬礼|^如有其他问题，欢迎随时联系我们",
}
HANDOVER = {
    "en": r"\bTier 2\b|\bsupervisor\b|\bspecialist\b|\bright colleague\b",
    "ja": r"引き継",
    "zh": r"转交",
}
LEAD_IN = re.compile(r"[:：]\s*$|以下|如下|次の(?:とおり|点|手順|方法|いずれか)")
LIST_ITEM = re.compile(r"^(?:- |\d+\. )")
CITATION = re.compile(r"\[[a-z]+/[a-z0-9-]+\]")
SENTENCE = {
    "en": re.compile(r"(?<=[.!?])\s+"),
    "ja": re.compile(r"(?<=[。！？])"),
    "zh": re.compile(r"(?<=[。！？])"),
}
CJK_PUNCT = "。！？）」』”"


def sentences(paragraph: str, lang: str) -> list[str]:
    out: list[str] = []
    for line in paragraph.splitlines():
        out += [s.strip() for s in SENTENCE[lang].split(CITATION.sub("", line)) if s.strip()]
    return out


def reading_problems(text: str, lang: str, *, drafted_opening: bool = True) -> list[str]:
    """Everything a QA lead would flag in ``text``; empty when it reads well."""
    problems: list[str] = []
    paragraphs = text.split("\n\n")
    if len(paragraphs) < 3:
        return ["fewer than three paragraphs (greeting, body, sign-off)"]
    # one sign-off, at the end
    if paragraphs[-1] != SIGN_OFF[lang]:
        problems.append(f"last paragraph is not the sign-off: {paragraphs[-1][:40]!r}")
    if text.count(SIGN_OFF[lang]) != 1:
        problems.append("sign-off appears more than once")
    for p in paragraphs[1:-1]:
        for s in sentences(p, lang):
            if re.search(CLOSING[lang], s, re.IGNORECASE):
                problems.append(f"second closing line in the body: {s!r}")
    # the opening (the body's first two paragraphs, the second unless it is a list)
    # thanks and apologises at most once
    if drafted_opening:
        opening = sentences(paragraphs[1], lang)
        if len(paragraphs) > 3 and not LIST_ITEM.match(paragraphs[2]):
            opening += sentences(paragraphs[2], lang)
        for name, cue in (("apology", APOLOGY[lang]), ("thanks", THANKS[lang])):
            hits = [s for s in opening if re.search(cue, s, re.IGNORECASE)]
            if len(hits) > 1:
                problems.append(f"{len(hits)} {name} sentences in the opening: {hits}")
    # citations only at the end of a sentence, list item or paragraph
    for m in CITATION.finditer(text):
        before, after = text[: m.start()], text[m.end() :]
        if before.endswith(" "):
            prev = before.rstrip()[-1:]
            if prev in CJK_PUNCT or not re.match(r"[.!?:)\"”]", prev):
                problems.append(f"mark not after a sentence end: {before[-25:]!r}{m.group()}")
        elif before[-1:] not in CJK_PUNCT:
            problems.append(f"mark glued to text: {before[-25:]!r}{m.group()}")
        if after[:1] not in ("", "\n", " ") or after[:2].strip(" ") in (":", "：", ",", "，"):
            problems.append(f"mark inside a sentence: {m.group()}{after[:25]!r}")
    # a lead-in is followed by its list
    for i, p in enumerate(paragraphs[1:-1], start=1):
        last_line = p.splitlines()[-1]
        if LIST_ITEM.match(last_line):
            continue
        last = (sentences(last_line, lang) or [""])[-1]
        if LEAD_IN.search(last) and not LIST_ITEM.match(paragraphs[i + 1]):
            problems.append(f"list lead-in without its list: {last!r}")
    # no search-result look, no leftovers, no repeats, one language
    if re.search(r"\*\*|__|`|^#+ |\]\(", text, re.MULTILINE):
        problems.append("Markdown syntax in the draft")
    if re.search(r"[{}]", text):
        problems.append("unfilled placeholder")
    seen: set[str] = set()
    for s in (s for p in paragraphs for s in sentences(p, lang) if len(s) >= 12):
        if s in seen:
            problems.append(f"sentence repeated: {s!r}")
        seen.add(s)
    if lang == "en" and re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text):
        problems.append("CJK text in an English draft")
    if lang != "en" and (fragment := re.search(r"[A-Za-z]+(?:[ ,']+[A-Za-z]+){4,}", text)):
        problems.append(f"English fragment in a {lang} draft: {fragment.group()!r}")
    offers = [s for p in paragraphs for s in sentences(p, lang) if re.search(HANDOVER[lang], s)]
    if len(offers) > 1 and "[playbook/" not in text:
        problems.append(f"more than one hand-over offer: {offers}")
    return problems


# ---- fixtures -------------------------------------------------------------------------------
@dataclass
class H:
    article_id: str
    score: float = 0.8
    type: str = "faq"


@pytest.fixture(scope="module")
def kb() -> dict[tuple[str, str], Article]:
    return {(a.id, a.language): a for a in load_kb(ROOT / "knowledge")}


def make_drafter(
    kb: dict[tuple[str, str], Article],
    hide: tuple[str, ...] = (),
    replace: dict[str, Article] | None = None,
) -> OfflineDrafter:
    def lookup(aid: str, lang: str) -> Article | None:
        if aid in hide:
            return None
        if replace and aid in replace and replace[aid].language == lang:
            return replace[aid]
        return kb.get((aid, lang))

    return OfflineDrafter.from_file(PHRASES, lookup)


@pytest.fixture(scope="module")
def drafter(kb: dict[tuple[str, str], Article]) -> OfflineDrafter:
    return make_drafter(kb)


def compose(d: OfflineDrafter, lang: str, ids: list[str], **kw: Any) -> OfflineDraft:
    hits = [H(a, kw.pop("score", 0.8), a.split("/")[0]) for a in ids]
    return d.compose(
        message=kw.pop("message", "help"),
        language=lang,
        name=kw.pop("name", None),
        hits=hits,
        abstain=kw.pop("abstain", False),
        **kw,
    )


def rewrite_template(article: Article, anchor: str, edit: Callable[[str], str]) -> Article:
    """``article`` with the text of section ``anchor`` passed through ``edit``."""
    section = article.section(anchor)
    assert section is not None
    body = article.body.replace(section.text, edit(section.text), 1)
    return dataclasses.replace(article, body=body, sections=tuple(split_sections(body)))


# ---- every combination, every language -------------------------------------------------------
def test_every_composition_reads_well(kb: dict[tuple[str, str], Article]) -> None:
    d_all = make_drafter(kb)
    d_no_angry = make_drafter(kb, hide=(ANGRY,))  # FAQ / abstention paths at level 3
    faqs = sorted({a for a, _ in kb if a.startswith("faq/")})
    playbooks = sorted({a for a, _ in kb if a.startswith("playbook/")})
    failures: list[tuple[Any, ...]] = []
    for lang in LANGS:
        for level in (0, 1, 2, 3):
            for faq in faqs:
                d = compose(d_no_angry, lang, [faq], emotion=level)
                failures += [(lang, faq, level, p) for p in reading_problems(d.text, lang)]
            d = compose(d_no_angry, lang, [], abstain=True, emotion=level)
            failures += [(lang, "abstain", level, p) for p in reading_problems(d.text, lang)]
            for pb in playbooks:
                for extra in ([], ["faq/fees"], ["faq/withdrawal"], ["faq/kyc"]):
                    d = compose(
                        d_all,
                        lang,
                        [pb, *extra],
                        emotion=level,
                        escalation=pb.endswith("escalation"),
                        message="fee withdrawal app error",
                    )
                    failures += [
                        (lang, pb, level, extra, p)
                        for p in reading_problems(d.text, lang, drafted_opening=False)
                    ]
    assert failures == []


def _messages(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "evals" / "samples" / "messages_v1.jsonl",
        ROOT / "evals" / "golden" / "golden_v1.jsonl",
    ],
    ids=["samples", "golden"],
)
def test_every_eval_message_draft_reads_well(offline_copilot: Any, path: Path) -> None:
    from copilot.draft.types import DraftRequest

    failures = []
    for row in _messages(path):
        res = offline_copilot.draft(
            DraftRequest(
                row["customer_message"],
                language=row.get("language"),
                customer_name=row.get("customer_name"),
            )
        )
        drafted = res.scenario in ("faq", "abstain")
        failures += [
            (row["id"], res.scenario, p)
            for p in reading_problems(res.draft, res.language, drafted_opening=drafted)
        ]
    assert failures == []


# ---- empathetic opening ---------------------------------------------------------------------
@pytest.mark.parametrize("lang", LANGS)
def test_opening_never_adds_a_second_apology(drafter: OfflineDrafter, lang: str) -> None:
    """The reported case: a template that thanks and apologises, an angry customer."""
    for faq in ("faq/withdrawal", "faq/deposit", "faq/login-locked"):
        calm = compose(drafter, lang, [faq]).text.split("\n\n")[1]
        assert re.search(APOLOGY[lang], calm)  # these templates apologise themselves
        for level in (1, 2):
            opening = compose(drafter, lang, [faq], emotion=level).text.split("\n\n")[1]
            assert opening.startswith(calm)
            assert sum(bool(re.search(APOLOGY[lang], s)) for s in sentences(opening, lang)) == 1


def test_reported_japanese_case_is_merged(drafter: OfflineDrafter) -> None:
    d = compose(drafter, "ja", ["faq/withdrawal"], emotion=2, name="山田")
    assert "ご不快な思いをおかけしており、誠に申し訳ございません。" not in d.text
    assert d.text.startswith(
        "山田様\n\nお問い合わせいただきありがとうございます。出金がまだ着金しておらず、"
        "ご心配をおかけして申し訳ございません。解決に向けて"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_opening_stays_in_the_first_paragraph_and_before_the_lead_in(
    drafter: OfflineDrafter, lang: str
) -> None:
    for faq in ("faq/privacy", "faq/fees", "faq/password-reset"):
        calm = compose(drafter, lang, [faq]).text.split("\n\n")
        upset = compose(drafter, lang, [faq], emotion=2).text.split("\n\n")
        assert len(upset) == len(calm) and upset[2:] == calm[2:]
        assert LEAD_IN.search(upset[1]) and LIST_ITEM.match(
            upset[2]
        )  # lead-in still right before its list
        assert upset[1].count("[") == 0  # no citation mark in the middle of the FAQ's run


@pytest.mark.parametrize("lang", LANGS)
def test_apology_alone_goes_after_the_thanks(drafter: OfflineDrafter, lang: str) -> None:
    """A template that already says "I understand" only gets the apology, right after its thanks."""
    phrase = Phrases.load(PHRASES).get("empathy", lang)[2]["after_understanding"]
    opening = compose(drafter, lang, ["faq/2fa-reset"], emotion=2).text.split("\n\n")[1]
    first, second = sentences(opening, lang)[:2]
    assert re.search(THANKS[lang], first, re.IGNORECASE) and second == phrase


# ---- hand-over, sign-off --------------------------------------------------------------------
@pytest.mark.parametrize("lang", LANGS)
def test_hand_over_is_offered_once(kb: dict[tuple[str, str], Article], lang: str) -> None:
    d = compose(make_drafter(kb, hide=(ANGRY,)), lang, [], abstain=True, emotion=3)
    handover = Phrases.load(PHRASES).get("handover", lang)
    assert d.scenario == "abstain" and d.text.count(handover) == 1
    offers = [
        s for p in d.text.split("\n\n") for s in sentences(p, lang) if re.search(HANDOVER[lang], s)
    ]
    assert (
        offers == sentences(handover, lang)[:1]
    )  # the vaguer "a specialist/colleague" offer is gone
    assert d.text.split("\n\n")[-2] == handover


@pytest.mark.parametrize(
    ("lang", "closing"),
    [
        ("en", "Best regards,"),
        ("en", "Kind regards"),
        ("ja", "今後ともよろしくお願い申し上げます。"),
        ("ja", "引き続きよろしくお願いいたします。"),
        ("zh", "祝您生活愉快！"),
        ("zh", "祝您一切顺利！"),
        ("zh", "如有其他问题，欢迎随时联系我们。"),
    ],
)
def test_a_template_closing_line_is_not_doubled(
    kb: dict[tuple[str, str], Article], lang: str, closing: str
) -> None:
    for sep in ("\n\n", "\n", " " if lang == "en" else ""):

        def add_closing(t: str, sep: str = sep) -> str:
            return t.rstrip() + sep + closing + "\n"

        art = rewrite_template(kb[("faq/bonus", lang)], "reply-template", add_closing)
        d = compose(make_drafter(kb, replace={"faq/bonus": art}), lang, ["faq/bonus"])
        assert d.text.endswith("[faq/bonus]\n\n" + SIGN_OFF[lang]), d.text[-80:]
        assert d.text.count(closing) == (1 if closing == SIGN_OFF[lang] else 0)
        assert reading_problems(d.text, lang) == []


# ---- citations ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "I'm happy to walk you through it. [playbook/fee-dispute] These are the fee rules that apply:",
        ),
        (
            "ja",
            "内訳を順を追ってご説明いたします。[playbook/fee-dispute] 該当する手数料のルールは以下のとおりです。",
        ),
        ("zh", "我很乐意为您逐项说明。[playbook/fee-dispute] 适用的收费规则如下："),
    ],
)
def test_citation_follows_the_sentence_before_a_list_lead_in(
    drafter: OfflineDrafter, lang: str, expected: str
) -> None:
    d = compose(
        drafter, lang, ["playbook/fee-dispute", "faq/fees"], emotion=1, message="taker fee futures"
    )
    assert expected + "\n\n- " in d.text
    facts_end = d.text.split("\n\n")[2].splitlines()[-1]
    assert facts_end.endswith(("。[faq/fees]", ". [faq/fees]"))


@pytest.mark.parametrize("lang", ["ja", "zh"])
def test_no_space_before_a_citation_after_cjk_punctuation(
    drafter: OfflineDrafter, lang: str
) -> None:
    d = compose(drafter, lang, ["faq/withdrawal"])
    assert "。[faq/withdrawal]" in d.text and " [faq/withdrawal]" not in d.text
    assert "). [faq/withdrawal]" not in compose(drafter, "en", ["faq/withdrawal"]).text


# ---- lists ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "joined"),
    [
        ("en", "\n\nYou can check https://status.example.com"),
        ("ja", "https://status.example.com でご確認いただけ"),
        ("zh", "\n\n您可以在 https://status.example.com 查看"),
    ],
)
def test_no_dangling_also_when_the_facts_list_is_left_out(
    drafter: OfflineDrafter, lang: str, joined: str
) -> None:
    fault = {"en": "the app crashed", "ja": "アプリが落ちた", "zh": "app闪退了"}[lang]
    d = compose(drafter, lang, ["playbook/technical-fault"], emotion=1, message=fault)
    assert joined in d.text and "- " not in d.text
    assert reading_problems(d.text, lang, drafted_opening=False) == []


@pytest.mark.parametrize(
    ("lang", "own_lead_in"),
    [
        ("en", "These are the fee rules that apply:"),
        ("ja", "該当する手数料のルールは以下のとおりです。"),
        ("zh", "适用的收费规则如下："),
    ],
)
def test_unrelated_faq_facts_get_a_neutral_lead_in(
    drafter: OfflineDrafter, lang: str, own_lead_in: str
) -> None:
    """ "These are the fee rules that apply:" must not announce identity-verification facts."""
    neutral = Phrases.load(PHRASES).get("facts_lead_in", lang)
    related = compose(drafter, lang, ["playbook/fee-dispute", "faq/fees"], emotion=1, message="fee")
    assert own_lead_in + "\n\n- " in related.text  # a fee FAQ keeps the playbook's lead-in
    d = compose(drafter, lang, ["playbook/fee-dispute", "faq/kyc"], emotion=1, message="kyc limit")
    assert d.cited == ["playbook/fee-dispute", "faq/kyc"]  # the top FAQ's facts are still given
    assert own_lead_in not in d.text and "[playbook/fee-dispute] " + neutral + "\n\n- " in d.text
    assert reading_problems(d.text, lang, drafted_opening=False) == []
    angry = compose(drafter, lang, [ANGRY, "faq/kyc"], emotion=2, message="kyc")
    assert angry.cited == [ANGRY, "faq/kyc"] and neutral not in angry.text  # general playbook


@pytest.mark.parametrize("lang", LANGS)
def test_faq_without_a_template_announces_its_facts(
    kb: dict[tuple[str, str], Article], lang: str
) -> None:
    art = rewrite_template(kb[("faq/bonus", lang)], "reply-template", lambda t: "\n")
    d = compose(make_drafter(kb, replace={"faq/bonus": art}), lang, ["faq/bonus"], emotion=1)
    paragraphs = d.text.split("\n\n")
    assert paragraphs[1].endswith(Phrases.load(PHRASES).get("facts_lead_in", lang))
    assert LIST_ITEM.match(paragraphs[2]) and paragraphs[2].endswith("[faq/bonus]")
    assert reading_problems(d.text, lang) == []


# ---- Markdown, honorifics -------------------------------------------------------------------
def test_markdown_from_the_kb_becomes_plain_text() -> None:
    md = (
        "## Heading\n**Bold** and __strong__, *italic*, `Assets > Withdraw`, "
        "[status page](https://status.example.com), [https://example.com](https://example.com)\n"
        "* one\n+ two\n---\n> quoted"
    )
    assert plain_text(md) == (
        "Heading\nBold and strong, italic, Assets > Withdraw, "
        "status page (https://status.example.com), https://example.com\n"
        "- one\n- two\n\nquoted"
    )
    assert (
        plain_text("5 * 3 = 15, snake_case_name, 0.10% fee")
        == "5 * 3 = 15, snake_case_name, 0.10% fee"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_markdown_in_a_template_is_not_sent(kb: dict[tuple[str, str], Article], lang: str) -> None:
    art = rewrite_template(
        kb[("faq/bonus", lang)],
        "reply-template",
        lambda t: t.replace("Rewards Center", "**Rewards Center**", 1),
    )
    d = compose(make_drafter(kb, replace={"faq/bonus": art}), lang, ["faq/bonus"])
    assert "**" not in d.text and "Rewards Center" in d.text


@pytest.mark.parametrize(
    ("lang", "name", "expected"),
    [
        ("ja", "山田さま", "山田様"),
        ("ja", "山田 様", "山田様"),
        ("ja", "Mr. Smith", "Smith様"),
        ("ja", "Ms Tanaka さん", "Tanaka様"),
        ("ja", "様", "様様"),  # a lone honorific is left alone
        ("zh", "Mr. Smith", "Mr. Smith您好，"),
        ("en", "Mr. Smith", "Hi Mr. Smith,"),
    ],
)
def test_no_doubled_honorific(lang: str, name: str, expected: str) -> None:
    assert greeting(Phrases.load(PHRASES), lang, name) == expected


# ---- phrases file ---------------------------------------------------------------------------
def test_phrases_file_requires_every_empathy_variant_and_valid_cues(tmp_path: Path) -> None:
    text = PHRASES.read_text(encoding="utf-8")
    bad = tmp_path / "p.yaml"
    bad.write_text(text.replace('      after_both: ""\n', "", 1), encoding="utf-8")
    with pytest.raises(CopilotError, match=r"empathy\.en\.1 needs the texts"):
        Phrases.load(bad)
    bad.write_text(
        text.replace("    apology: '申し訳", "    apology: '(申し訳", 1), encoding="utf-8"
    )
    with pytest.raises(CopilotError, match=r"cues\.ja\.apology is not a valid regular expression"):
        Phrases.load(bad)
    bad.write_text(text.replace("facts_lead_in:", "facts_lead_in_:", 1), encoding="utf-8")
    with pytest.raises(CopilotError, match="missing section 'facts_lead_in'"):
        Phrases.load(bad)
