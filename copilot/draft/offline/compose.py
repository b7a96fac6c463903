"""The embedded default drafter: no LLM, replies composed from KB reply templates.

Given the retrieval hits and the input signals (emotion level, escalation cue),
it picks a scenario:

* an escalation cue -> ``playbook/escalation``;
* a topical playbook (liquidation, fee dispute, technical fault) only with
  evidence of its situation: its cues in the message (``scenario_cues`` in the
  phrases file) and the playbook among the hits, or the playbook ranked first
  with a margin of PLAYBOOK_MARGIN over the best FAQ (for an upset customer, no
  FAQ scoring higher) -> that playbook;
* an angry customer (level 2 with the angry-customer playbook retrieved, or
  level 3) -> ``playbook/angry-customer``, unless understanding names the FAQ the
  customer is upset about (``Route.article``): then that FAQ's answer, with the
  level's empathy and, at level 3 or for an accusation or demand, the hand-over
  offer (the playbook alone says nothing about the matter);
* otherwise the best FAQ's reply template, with a short empathetic opening
  when the customer is upset;
* nothing retrieved -> an honest reply asking for details.

Playbook templates are chosen by emotion level (0/1 -> level-1, 2 -> level-2,
3 -> level-3); ``{facts}`` becomes the key facts, most related to the message,
of the best FAQ related to the scenario (sharing a tag with a topical playbook,
or scoring at least as high); without one the list is left out. The greeting,
openings, sign-off, abstention text and scenario cues come from
``prompts/offline_phrases.yaml``.

So that a draft reads like one agent wrote it:

* the empathetic opening is merged into the template's opening paragraph,
  after its own thanks / apology / acknowledgement, and leaves out what that
  paragraph already says (no second apology, no second "I understand");
* a list lead-in ("Here is how ...:", 以下, 如下) is always followed by its
  list; with no list to show, the lead-in and any "also" pointing back at the
  list are removed; facts of an FAQ that shares no tag with a topical playbook
  get a neutral lead-in instead of the playbook's ("the fee rules that apply");
* citations ``[id]`` end each run of blocks from one article, after the last
  sentence before a list lead-in rather than inside it; no space before the
  mark after CJK punctuation;
* one hand-over offer, one sign-off (a template's own closing line is
  dropped); Markdown emphasis, headings and links in KB text become plain text.

Facts the customer gave (:mod:`copilot.draft.offline.given`): one sentence acknowledges
them after the opening paragraph, and a template sentence asking for them is left out (or
narrowed to what is missing). A confident second topic (``Route.second``) gets a section of
its own after the first (``second_topic`` opens it; its template's opening thanks is left
out), with its own citation. A compromised account (``Route.compromise``) gets the
safety-first reply of the phrases file (``compromised``), cited to ``faq/security``. A
message outside what support handles (``Route.override == "out_of_scope"``) gets the short
decline of the phrases file (``out_of_scope_reply``), scenario ``out_of_scope``; a
particular situation (``Route.situation``: wallet, sent, api, remote, sim) has its own opening
and steps there (``situations``). Given facts that matter are used inside the answer
(``facts_said``: a withdrawal waiting past the review time, a disputed fee or liquidation
answered under an escalation) instead of being listed back to the customer.

The output is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from copilot.draft.offline.given import (
    OVERDUE_SLOT,
    PENDING_SLOT,
    FactPhrases,
    FactSentence,
    acknowledgement,
    load_fact_phrases,
    said_sentences,
    without_given,
)
from copilot.draft.offline.phrases import Phrases, greeting
from copilot.draft.offline.questions import asked_question
from copilot.draft.offline.routing import Route
from copilot.draft.offline.scenario import (
    ANGRY,
    ESCALATION,
    MAX_FACTS,
    MIN_FAQ_SCORE,
    TOPICAL_PLAYBOOKS,
    Lookup,
    choose_scenario,
    pick_facts,
    rank_articles,
)
from copilot.kb.articles import Article, Section
from copilot.retrieval.types import Hit
from copilot.text.language import LANGUAGES
from copilot.understand.compromise import funds_gone
from copilot.understand.facts import Facts
from copilot.understand.signals import FURTHER, escalation_kinds

# FAQs whose reply template is for an emergency, and their sections for a calm question
# (a message the routing did not read as a compromise): "is this e-mail real?"
CALM_SECTIONS = {
    "faq/security": ("q-phishing-email", "q-anti-phishing", "q-fake-support", "q-login-alert")
}

# playbooks about the customer's upset or escalation, not a matter: an overdue matter is
# named inside them (``OfflineDrafter._with_overdue_matter``)
UPSET_PLAYBOOKS = (ESCALATION, ANGRY)


@dataclass(frozen=True)
class Block:
    """One paragraph of a draft and the article it came from (None for our own phrases)."""

    text: str
    source: str | None = None
    kind: str = "body"  # greeting | body | sign_off


@dataclass(frozen=True)
class OfflineDraft:
    """A composed draft, the articles it drew on and how it was chosen."""

    blocks: tuple[Block, ...]
    scenario: str  # "faq", "abstain" or a playbook id
    level: int
    articles: tuple[Article, ...] = field(default=())

    @property
    def text(self) -> str:
        """The draft as the agent sees it: ``[id]`` ends each run of blocks from one article."""
        shown = [b for b in self.blocks if b.text.strip()]
        out = []
        for i, b in enumerate(shown):
            after = shown[i + 1].source if i + 1 < len(shown) else None
            out.append(_cite(b.text, b.source) if b.source and after != b.source else b.text)
        return "\n\n".join(out)

    @property
    def cited(self) -> list[str]:
        """Article ids cited, in order of first use."""
        return list(dict.fromkeys(b.source for b in self.blocks if b.source))

    def converted(self, convert: Callable[[str], str]) -> OfflineDraft:
        """The same draft with every block's text passed through ``convert`` (e.g. into
        Traditional Chinese)."""
        blocks = tuple(Block(convert(b.text), b.source, b.kind) for b in self.blocks)
        return OfflineDraft(blocks, self.scenario, self.level, self.articles)

    def without(self, excerpts: Iterable[str]) -> OfflineDraft:
        """A revision with every body block containing one of ``excerpts`` removed."""
        needles = [e.strip() for e in excerpts if e and e.strip()]
        kept = tuple(
            b for b in self.blocks if b.kind != "body" or not any(n in b.text for n in needles)
        )
        return OfflineDraft(kept, self.scenario, self.level, self.articles)


def _attach(text: str, mark: str) -> str:
    """``text`` followed by ``mark``: no space after CJK punctuation or characters."""
    text = text.rstrip()
    return f"{text}{mark}" if _CJK_END.search(text) else f"{text} {mark}"


def _cite(paragraph: str, source: str) -> str:
    """``paragraph`` with ``[source]`` after its last sentence or list item.

    When the paragraph ends with a sentence announcing a list ("Here is how ...:",
    以下, 如下), the mark follows the sentence before it, so it never sits inside
    the lead-in or between the lead-in and its list.
    """
    mark = f"[{source}]"
    head, sep, last = paragraph.rstrip().rpartition("\n")
    if not _LIST_ITEM.match(last):
        parts = _sentences(last)
        if len(parts) > 1 and _ANNOUNCES_LIST.search(parts[-1]):
            return f"{head}{sep}{_attach(''.join(parts[:-1]), mark)} {parts[-1].strip()}"
    return f"{head}{sep}{_attach(last, mark)}"


_COURTESY = ("thanks", "apology", "understanding")
# whole replies of our own (no KB template): nothing is added to them
OWN_REPLIES = ("vague", "out_of_scope")
# what a pasted "admin note" claims to grant: the injected-note sentence answers only these (a
# forwarded review or a staff memo can trip the injection flag and grants nothing)
_APPROVAL_CLAIM = re.compile(
    r"approv|authori[sz]|waive|waiver|refund|credit|unlock|lift|raise|vip|grant|exempt"
    r"|承認|許可|免除|返金|解除|付与|引き上げ|認め|補償"
    r"|批准|核准|授权|授權|免除|退还|退還|退款|退回|解除|提高|豁免|同意",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
_ANNOUNCES_LIST = re.compile(r"[:：]\s*$|以下|如下|次の(?:とおり|点|手順|方法|いずれか)|下記|下列")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_CJK_END = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]$")


def _sentences(line: str) -> list[str]:
    """``line`` cut after each sentence end; the pieces joined give ``line`` back."""
    cuts = [m.end() for m in _SENTENCE_END.finditer(line) if 0 < m.end() < len(line)]
    bounds = [0, *cuts, len(line)]
    return [line[a:b] for a, b in pairwise(bounds) if line[a:b]]


def _drop_lead_in(paragraph: str) -> str:
    """The paragraph without its last sentence when that announces a list ("...:", 以下, 如下)."""
    text = paragraph.rstrip()
    cuts = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() < len(text)]
    last = text[cuts[-1] :] if cuts else text
    if not _ANNOUNCES_LIST.search(last):
        return text
    return text[: cuts[-1]].rstrip() if cuts else ""


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _md_link(m: re.Match[str]) -> str:
    label, url = m.group(1).strip(), m.group(2)
    return url if label in (url, url.split("://", 1)[-1]) else f"{label} ({url})"


_MARKDOWN: tuple[tuple[re.Pattern[str], Any], ...] = (
    (re.compile(r"!?\[([^\]\n]+)\]\(([^)\s]+)\)"), _md_link),  # [text](url)
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M), ""),  # headings
    (re.compile(r"^[ \t]{0,3}>[ \t]?", re.M), ""),  # block quotes
    (re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.M), ""),  # horizontal rules
    (re.compile(r"^([ \t]*)[*+•][ \t]+", re.M), r"\1- "),  # one bullet style
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # **bold**
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *italic*
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # `code`
)


def plain_text(text: str) -> str:
    """KB Markdown as an agent would type it in a reply: no emphasis, headings or link syntax."""
    for pattern, repl in _MARKDOWN:
        text = pattern.sub(repl, text)
    return text


def _template_body(text: str) -> str:
    """A reply template without its ``{name}`` greeting line, as plain text."""
    lines = text.strip().splitlines()
    if lines and lines[0].strip() == "{name}":
        lines = lines[1:]
    return plain_text("\n".join(lines).replace("{name}", "").strip())


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {plain_text(f).strip()}" for f in items)


#: A question section whose character n-grams are at least this much in the FAQ's reply
#: template is answered by the template (the template was written for that question); from
#: SECTION_RELATED up, the template is about the same matter and its steps follow the answer;
#: below, it answers another question and is left out.
SECTION_COVERED = 0.55
SECTION_RELATED = 0.3
#: A template paragraph this much said by the answer already is left out after it.
SECTION_REPEATS = 0.35


def _grams(text: str, cjk: bool) -> set[str]:
    flat = re.sub(r"\s+", " ", text.lower())
    n = 4 if cjk else 8
    return {flat[i : i + n] for i in range(max(0, len(flat) - n + 1))}


def template_share(section: str, template: str, cjk: bool) -> float:
    """How much of a question ``section`` the reply ``template`` already says (0-1)."""
    own = _grams(section, cjk)
    return len(own & _grams(template, cjk)) / len(own) if own else 1.0


def _join_lead_ins(paragraphs: list[str]) -> list[str]:
    """A paragraph announcing a list ("Common reasons:", 次のとおりです) joined to its list."""
    out: list[str] = []
    for p in paragraphs:
        if out and _LIST_ITEM.match(p) and _ANNOUNCES_LIST.search(out[-1].rstrip()):
            out[-1] = f"{out[-1].rstrip()}\n{p}"
        else:
            out.append(p)
    return out


class OfflineDrafter:
    """Composes drafts from KB templates; ``lookup(article_id, language)`` fetches articles."""

    def __init__(self, phrases: Phrases, lookup: Lookup) -> None:
        self.phrases = phrases
        self.lookup = lookup
        self.fact_phrases: dict[str, FactPhrases | None] = {
            lang: load_fact_phrases(phrases.data, phrases.path, lang) for lang in LANGUAGES
        }

    @classmethod
    def from_file(cls, path: Path, lookup: Lookup) -> OfflineDrafter:
        """Build with the phrases in ``path``."""
        return cls(Phrases.load(path), lookup)

    def compose(
        self,
        *,
        message: str,
        language: str,
        name: str | None,
        hits: Sequence[Hit],
        abstain: bool,
        emotion: int = 0,
        escalation: bool = False,
        route: Route | None = None,
        facts: Facts | None = None,
        open_case: str | None = None,
        injected: bool = False,
    ) -> OfflineDraft:
        """The draft for one customer message; ``route`` (from learned understanding, see
        :mod:`copilot.draft.offline.routing`) overrides retrieval's choice; ``facts`` (what
        the customer gave) are acknowledged and never asked for again; ``open_case``: the
        thread's text when the message chases a case support already answered
        (:func:`copilot.understand.followup.chases_open_case`): its progress is answered,
        not the first answer again; ``injected``: the message was flagged as a prompt
        injection; when it claims an approval (a refund, a waiver, a limit), the draft first
        says that text in a message approves nothing."""
        lang = language if language in LANGUAGES else "en"
        draft = self._compose(
            message=message,
            lang=lang,
            name=name,
            hits=hits,
            abstain=abstain,
            emotion=emotion,
            escalation=escalation,
            route=route or Route(),
        )
        if route is not None and draft.scenario not in OWN_REPLIES:
            extra = route.second
            if draft.scenario in UPSET_PLAYBOOKS and (route.article or "").startswith("faq/"):
                # an escalation or an upset customer about a concrete matter the model read
                # (the withdrawal, the KYC): the playbook's reply, then the matter's answer
                extra = route.article
            if extra:
                draft = self._with_second(draft, extra, lang, hits)
        if draft.scenario in UPSET_PLAYBOOKS and facts:
            best = self._best_faq(hits, lang)
            # the matter: the learned primary topic, else its second topic, else retrieval's
            topics = [] if route is None else [route.article, route.second]
            matter = next(
                (t for t in topics if t and t.startswith("faq/")),
                best.id if best is not None else None,
            )
            if matter is not None:
                draft = self._with_overdue_matter(draft, facts, lang, message, matter)
        if draft.scenario not in OWN_REPLIES:
            cues = self.phrases.evidence(message, lang)
            if route is not None and route.article in TOPICAL_PLAYBOOKS:
                cues.add(route.article)
            if route is not None and route.section:
                cues.add(route.section)  # the question the routing named (q-phishing-email)
            draft = self._with_facts(draft, facts or Facts(), lang, cues, message, open_case)
        claimed = injected and _APPROVAL_CLAIM.search(message) is not None
        note = self.phrases.optional("injected_note", lang) if claimed else ""
        if note and draft.blocks and draft.blocks[0].kind == "greeting":
            # before the answer: a pasted "admin note" approves nothing (whatever it asks)
            draft = replace(draft, blocks=(draft.blocks[0], Block(note), *draft.blocks[1:]))
        return draft

    def _compose(
        self,
        *,
        message: str,
        lang: str,
        name: str | None,
        hits: Sequence[Hit],
        abstain: bool,
        emotion: int,
        escalation: bool,
        route: Route,
    ) -> OfflineDraft:
        if (
            route.article is None
            and route.fallback is not None
            and (abstain or self._best_faq(hits, lang) is None)
        ):  # retrieval found no sure FAQ: the model's reasonably sure topic answers
            route = replace(route, article=route.fallback)
        level = max(0, min(3, max(emotion, route.min_level)))
        head = Block(greeting(self.phrases, lang, name), kind="greeting")
        tail = Block(str(self.phrases.get("sign_off", lang)), kind="sign_off")
        if route.override == "vague":
            question = self.phrases.optional("vague_question", lang)
            if question:
                return OfflineDraft((head, Block(question)), "vague", level)
        if route.override == "out_of_scope":
            decline = self.phrases.optional("out_of_scope_reply", lang)
            if decline:
                return OfflineDraft((head, Block(decline), tail), "out_of_scope", level)
        if route.override in ("account_compromised", "advice") and route.article:
            art = self.lookup(route.article, lang)
            if art is not None:
                safety = self._compromised_blocks(art, route, lang)
                if safety and route.situation not in ("wallet", "sent") and funds_gone(message):
                    safety = self._with_funds_gone(safety, art, lang)
                body = safety or self._faq_blocks(art, lang, level)
                note = self.phrases.optional("security_escalation", lang)
                if route.escalate and note:
                    body = [*body, Block(note)]
                return OfflineDraft((head, *self._closing(body, lang), tail), "faq", level, (art,))
        ids = rank_articles(hits, message, self.lookup, lang)
        faq = self._best_faq(hits, lang)
        offer_handover = False
        scores: dict[str, float] = {}
        for h in hits:
            scores.setdefault(h.article_id, float(h.score))
        scenario = choose_scenario(
            [] if abstain else ids,
            level,
            escalation,
            evidence=self.phrases.evidence(message, lang),
            scores=scores,
        )
        if scenario is None and route.override == "accusation":
            scenario = route.article if route.article in TOPICAL_PLAYBOOKS else ANGRY
        elif scenario is None and route.article and route.override is None:
            if route.article in TOPICAL_PLAYBOOKS:
                scenario = route.article
            elif route.article.startswith("faq/"):
                faq = self.lookup(route.article, lang) or faq
        if (
            scenario == ANGRY
            and route.override in (None, "accusation")
            and route.article is not None
            and route.article.startswith("faq/")
        ):  # upset about a concrete matter: its answer, with the level's empathy and hand-over
            upset = self.lookup(route.article, lang)
            if upset is not None:
                scenario, faq = None, upset
                # an accusation or a demand is offered the supervisor whatever the level
                offer_handover = route.override == "accusation"
        if scenario is not None:
            playbook = self.lookup(scenario, lang)
            if playbook is not None:
                facts_faq = self._facts_faq(playbook, hits, scores, lang)
                shown = max(1, level)
                if scenario == ESCALATION and escalation_kinds(message) & FURTHER:
                    # a formal complaint, a lawyer or a regulator: the level that registers
                    # the complaint and names the regulator as the customer's right
                    shown = max(2, shown)
                body = self._playbook_blocks(playbook, shown, facts_faq, message, lang)
                used = (
                    (playbook, facts_faq)
                    if facts_faq is not None and any(b.source == facts_faq.id for b in body)
                    else (playbook,)
                )
                return OfflineDraft((head, *self._closing(body, lang), tail), scenario, level, used)
        if (abstain and not route.article) or faq is None:
            body = self._abstain_blocks(lang, level)
            return OfflineDraft((head, *self._closing(body, lang), tail), "abstain", level)
        asked = route.section if route.section and faq.section(route.section) else None
        body = self._faq_blocks(faq, lang, level, hits, asked or asked_question(faq.id, message))
        if offer_handover:
            body = self._with_handover(body, lang, 3)
        return OfflineDraft((head, *self._closing(body, lang), tail), "faq", level, (faq,))

    # ---- understanding: safety first, a second topic, the customer's facts ----------
    def _compromised_blocks(self, security: Article, route: Route, lang: str) -> list[Block]:
        """The safety-first reply (``compromised`` in the phrases file), or [] without one."""
        table = self.phrases.data.get("compromised")
        parts = table.get(lang) if isinstance(table, dict) else None
        if route.override != "account_compromised" or not isinstance(parts, dict):
            return []
        lead = str(parts.get(route.compromise or "access") or parts.get("access") or "")
        steps = str(parts.get("steps") or "")
        own = parts.get("situations", {}).get(route.situation or "")
        if isinstance(own, dict):  # a particular situation: its own opening and first steps
            lead = str(own.get("lead") or lead)
            steps = str(own.get("steps") or steps)
        texts = [lead, steps, str(parts.get("official") or "")]
        return [Block(t.strip(), security.id) for t in texts if t.strip()]

    def _with_funds_gone(self, safety: list[Block], security: Article, lang: str) -> list[Block]:
        """The safety-first reply with what the KB says about funds already gone
        (``faq/security#q-funds-stolen``: no reversal on chain, a police report, no promise
        of recovery), before the official-sites line."""
        lead = self.phrases.optional("funds_gone_lead", lang)
        items = security.bullets("q-funds-stolen")
        if not lead or not items:
            return safety
        block = Block(f"{lead}\n{_bullets(items)}", security.id)
        official = str(
            (self.phrases.data.get("compromised") or {}).get(lang, {}).get("official") or ""
        )
        at = (
            len(safety) - 1
            if official.strip() and safety[-1].text == official.strip()
            else len(safety)
        )
        return [*safety[:at], block, *safety[at:]]

    def _with_second(
        self, draft: OfflineDraft, article_id: str, lang: str, hits: Sequence[Hit] = ()
    ) -> OfflineDraft:
        """``draft`` with a section answering a second topic, before the sign-off."""
        if article_id in draft.cited or draft.scenario == "abstain":
            return draft
        art = self.lookup(article_id, lang)
        connector = self.phrases.optional("second_topic", lang)
        if art is None or not connector:
            return draft
        body = self._faq_blocks(art, lang, 0, hits)
        if not body:
            return draft
        first = body[0]
        trimmed = self._without_courtesy(first.text, lang)
        body[0:1] = [Block(trimmed, first.source, first.kind)] if trimmed else []
        said = {
            x.strip() for b in draft.blocks for ln in b.text.split("\n") for x in _sentences(ln)
        }
        body = [
            Block(text, b.source, b.kind)
            for b in body
            if (text := self._without_repeats(b.text, said))
        ]
        if not body:
            return draft
        section = [Block(connector), *self._closing(body, lang)]
        blocks = list(draft.blocks)
        at = max((i for i, b in enumerate(blocks) if b.kind != "sign_off"), default=0) + 1
        blocks[at:at] = section
        return OfflineDraft(tuple(blocks), draft.scenario, draft.level, (*draft.articles, art))

    @staticmethod
    def _without_repeats(text: str, said: set[str]) -> str:
        """``text`` without the sentences (12+ characters) the draft already says."""
        lines = []
        for line in text.split("\n"):
            bullet = _LIST_ITEM.match(line)
            head = line[: bullet.end()] if bullet else ""
            kept = [
                x
                for x in _sentences(line[len(head) :])
                if len(x.strip()) < 12 or x.strip() not in said
            ]
            body = "".join(kept).strip()
            if body:
                lines.append(head + body)
        return "\n".join(lines).strip()

    def _with_facts(
        self,
        draft: OfflineDraft,
        facts: Facts,
        lang: str,
        cues: set[str] | None = None,
        message: str = "",
        open_case: str | None = None,
    ) -> OfflineDraft:
        """``draft`` asking for none of ``facts``, with the ``facts_said`` sentences that fit
        (a given fact used inside the answer, the customer's claim answered) and, when the
        phrases file has one, the acknowledgement after its opening paragraph."""
        fp = self.fact_phrases.get(lang)
        if fp is None:
            return draft
        cjk = lang in ("ja", "zh")
        blocks: list[Block] = []
        asked: set[str] = set()
        for b in draft.blocks:
            if b.kind != "body" or not (facts or message):
                blocks.append(b)
                continue
            text = without_given(b.text, facts, fp, cjk, message, asked)
            if text.strip():
                blocks.append(Block(text, b.source, b.kind))
        saids = said_sentences(
            fp, facts, draft.scenario, draft.cited, cues or set(), message, open_case
        )
        late = next((s for s in saids if s.slot.startswith(OVERDUE_SLOT)), None)
        # a follow-up on an open case within the service time: its progress, no hand-over
        pending = next((s for s in saids if s.slot.startswith(PENDING_SLOT)), None)
        for answer, handover in ((late, True), (pending, False)):
            if (
                answer is not None
                and (draft.scenario == "faq" or draft.scenario in TOPICAL_PLAYBOOKS)
                and draft.articles
                and draft.articles[0].id in answer.when
            ):
                return self._overdue(draft, answer, facts, lang, handover=handover)
        articles = list(draft.articles)
        start: list[Block] = []
        end: list[Block] = []
        already = "\n".join(b.text for b in blocks)
        for said in saids:
            if said.slot.startswith((OVERDUE_SLOT, PENDING_SLOT)):
                continue
            if (
                late is not None
                and draft.scenario in UPSET_PLAYBOOKS
                and (said.over_hours is not None or said.under_hours is not None)
            ):
                continue  # the overdue sentence (named in a playbook reply) covers the wait
            if said.render(facts) in already:
                continue  # the template says it already
            source = None
            if said.cite:
                art = self.lookup(said.cite, lang)
                if art is None:
                    continue
                source = art.id
                if all(a.id != art.id for a in articles):
                    articles.append(art)
            (start if said.at == "start" else end).append(Block(said.render(facts), source))
        if end:
            at = max((i for i, b in enumerate(blocks) if b.kind != "sign_off"), default=0) + 1
            blocks[at:at] = end
        ack = " ".join(b.text for b in start) if start else acknowledgement(facts, fp)
        if not ack:
            return OfflineDraft(tuple(blocks), draft.scenario, draft.level, tuple(articles))
        lead_blocks = start or [Block(ack)]
        first = next((i for i, b in enumerate(blocks) if b.kind == "body"), None)
        if first is None:
            blocks.extend(lead_blocks)
        else:
            opening = blocks[first]
            lead = _drop_lead_in(opening.text)
            if _LIST_ITEM.match(opening.text) or not lead:
                blocks[first:first] = lead_blocks  # nothing before the list: the ack leads
            elif lead != opening.text.rstrip():  # the opening announces a list: ack before that
                announce = opening.text.rstrip()[len(lead) :].strip()
                space = "" if lang in ("ja", "zh") else " "
                *init, last = lead_blocks
                blocks[first : first + 1] = [
                    Block(lead, opening.source, opening.kind),
                    *init,
                    Block(last.text + space + announce, last.source),  # lead-in before its list
                ]
            else:
                blocks[first + 1 : first + 1] = lead_blocks
        return OfflineDraft(tuple(blocks), draft.scenario, draft.level, tuple(articles))

    def _with_overdue_matter(
        self, draft: OfflineDraft, facts: Facts, lang: str, message: str, matter: str
    ) -> OfflineDraft:
        """An escalation or angry-customer reply about a matter whose wait is past the KB's
        service time (an ``overdue...`` slot fits ``matter``): the overdue sentence goes after
        the playbook's opening paragraph, so the reply names the matter (the playbook
        already hands the case over)."""
        fp = self.fact_phrases.get(lang)
        art = self.lookup(matter, lang)
        if fp is None or art is None:
            return draft
        late = next(
            (
                s
                for s in said_sentences(fp, facts, "faq", [matter], set(), message)
                if s.slot.startswith(OVERDUE_SLOT) and matter in s.when
            ),
            None,
        )
        if late is None:
            return draft
        blocks = list(draft.blocks)
        # the same matter answered again as a "second topic" (the routine status check):
        # the overdue sentence replaces that section, connector included
        own = [i for i, b in enumerate(blocks) if b.kind == "body" and b.source == matter]
        if own and own[0] > 0 and self._is_connector(blocks[own[0] - 1], lang):
            blocks = [b for i, b in enumerate(blocks) if i not in own and i != own[0] - 1]
        first = next((i for i, b in enumerate(blocks) if b.kind == "body"), len(blocks) - 1)
        blocks.insert(first + 1, Block(late.render(facts), art.id))
        articles = (*draft.articles, art) if art not in draft.articles else draft.articles
        return OfflineDraft(tuple(blocks), draft.scenario, draft.level, articles)

    def _is_connector(self, block: Block, lang: str) -> bool:
        """Whether ``block`` is the phrase that opens a second topic's section."""
        connector = (self.phrases.optional("second_topic", lang) or "").strip()
        return bool(connector) and block.text.strip() == connector

    def _overdue(
        self,
        draft: OfflineDraft,
        late: FactSentence,
        facts: Facts,
        lang: str,
        *,
        handover: bool = True,
    ) -> OfflineDraft:
        """The reply when the customer has waited longer than the KB's service time for the
        matter (an ``overdue...`` slot of ``facts_said`` fits): the routine answer (check
        the status, the usual times) is replaced by saying so and handing the case to Tier 2
        (``overdue_handover``, grounded in the escalation playbook). Without ``handover``:
        a follow-up on an open case still within the service time (a ``pending...`` slot),
        whose sentence says what happens next."""
        articles = list(draft.articles)
        source = None
        if late.cite:
            art = self.lookup(late.cite, lang)
            if art is not None:
                source = art.id
                if all(a.id != art.id for a in articles):
                    articles.append(art)
        body = [Block(late.render(facts), source)]
        hand_over = self.phrases.optional("overdue_handover", lang) if handover else None
        escalation = self.lookup("playbook/escalation", lang)
        if hand_over and escalation is not None:
            body.append(Block(hand_over, escalation.id))
            if all(a.id != escalation.id for a in articles):
                articles.append(escalation)
        blocks = list(draft.blocks)
        head = [b for b in blocks if b.kind == "greeting"]
        tail = [b for b in blocks if b.kind == "sign_off"]
        primary = draft.articles[0].id
        # a second topic's section (its connector, then its article's blocks) stays
        second = next(
            (
                i
                for i, b in enumerate(blocks)
                if b.kind == "body" and b.source not in (None, primary)
            ),
            None,
        )
        if draft.scenario in TOPICAL_PLAYBOOKS:
            # a playbook's own body (its facts list from an FAQ included) is the routine
            # answer: only a second topic's section, after its connector, stays
            second = next(
                (i + 1 for i, b in enumerate(blocks) if self._is_connector(b, lang)), None
            )
        rest = (
            [] if second is None else [b for b in blocks[max(0, second - 1) :] if b.kind == "body"]
        )
        return OfflineDraft(
            (*head, *body, *rest, *tail), draft.scenario, draft.level, tuple(articles)
        )

    def _best_faq(self, hits: Sequence[Hit], lang: str) -> Article | None:
        """The best FAQ scoring at least MIN_FAQ_SCORE, in ``lang``."""
        for h in hits:
            if h.article_id.startswith("faq/") and float(h.score) >= MIN_FAQ_SCORE:
                art = self.lookup(h.article_id, lang)
                if art is not None:
                    return art
        return None

    def _facts_faq(
        self, playbook: Article, hits: Sequence[Hit], scores: Mapping[str, float], lang: str
    ) -> Article | None:
        """The FAQ whose key facts fill a playbook's ``{facts}``, or None to leave them out.

        A topical playbook takes the best-ranked retrieved FAQ (score >= MIN_FAQ_SCORE)
        that is related to its scenario: it shares a tag with the playbook, or retrieval
        rates it at least as relevant to the message as the playbook itself. With no
        such FAQ the facts are left out (no fee facts under an app error). A general
        playbook (angry customer, escalation) takes the best FAQ: the customer's issue.
        """
        if playbook.id not in TOPICAL_PLAYBOOKS:
            return self._best_faq(hits, lang)
        own = scores.get(playbook.id, 0.0)
        for h in hits:
            if not h.article_id.startswith("faq/") or float(h.score) < MIN_FAQ_SCORE:
                continue
            art = self.lookup(h.article_id, lang)
            if art is not None and (set(art.tags) & set(playbook.tags) or float(h.score) >= own):
                return art
        return None

    # ---- building blocks ---------------------------------------------------
    def _without_courtesy(self, paragraph: str, lang: str) -> str:
        """An opening paragraph without its leading thanks, apology and acknowledgement."""
        line, sep, rest = paragraph.partition("\n")
        parts = _sentences(line)
        k = 0
        while k < len(parts) and self._is_courtesy(parts[k], lang, _COURTESY):
            k += 1
        return ("".join(parts[k:]).strip() + sep + rest).strip()

    def _is_courtesy(self, sentence: str, lang: str, kinds: Sequence[str]) -> bool:
        """True for a sentence matching one of the ``kinds`` of cue (thanks, apology, ...)."""
        return any(self.phrases.cue(k, lang).search(sentence) for k in kinds)

    def _with_opening(self, blocks: list[Block], lang: str, level: int) -> list[Block]:
        """``blocks`` with the empathetic opening for ``level`` merged into the first one.

        The variant leaves out what the first paragraph already says (an apology, an
        acknowledgement of the customer's feeling); it goes after that paragraph's
        leading thanks / apology / acknowledgement sentences (an apology alone goes
        right after the thanks, before the acknowledgement) and before its content or
        list lead-in.
        """
        if level < 1 or not blocks:
            return blocks
        first = blocks[0]
        apologised = bool(self.phrases.cue("apology", lang).search(first.text))
        understood = bool(self.phrases.cue("understanding", lang).search(first.text))
        variant = {
            (False, False): "default",
            (True, False): "after_apology",
            (False, True): "after_understanding",
            (True, True): "after_both",
        }[apologised, understood]
        phrase = str(self.phrases.get("empathy", lang)[level][variant]).strip()
        kinds = (
            ("thanks",)
            if variant == "after_understanding"
            else ("thanks", "apology", "understanding")
        )
        if not phrase:
            return blocks
        line, sep, rest = first.text.partition("\n")
        if _LIST_ITEM.match(line):  # the template starts with a list: opening goes before it
            return [Block(phrase), *blocks]
        parts = _sentences(line)
        k = 0
        while (
            k < len(parts)
            and not _ANNOUNCES_LIST.search(parts[k])
            and self._is_courtesy(parts[k], lang, kinds)
        ):
            k += 1
        space = "" if lang in ("ja", "zh") else " "
        before, after = "".join(parts[:k]).strip(), "".join(parts[k:]).strip()
        merged = space.join(x for x in (before, phrase, after) if x)
        return [Block(merged + sep + rest, first.source, first.kind), *blocks[1:]]

    def _with_handover(self, blocks: list[Block], lang: str, level: int) -> list[Block]:
        """At level 3, one hand-over offer: ours replaces our own vaguer ones."""
        if level < 3:
            return blocks
        cue = self.phrases.cue("handover", lang)
        if any(b.source and cue.search(b.text) for b in blocks):
            return blocks  # the KB template already offers it
        kept = []
        for b in blocks:
            if b.source is None and cue.search(b.text):
                lines = [
                    "".join(s for s in _sentences(ln) if not cue.search(s)).strip()
                    for ln in b.text.split("\n")
                ]
                text = "\n".join(ln for ln in lines if ln)
                if text:
                    kept.append(Block(text, None, b.kind))
            else:
                kept.append(b)
        return [*kept, Block(str(self.phrases.get("handover", lang)))]

    def _closing(self, blocks: list[Block], lang: str) -> list[Block]:
        """``blocks`` without a closing line of their own: the drafter adds the one sign-off."""
        cue = self.phrases.cue("sign_off", lang)
        out = [b for b in blocks if b.text.strip()]
        if not out:
            return out
        last = out[-1]
        lines = last.text.rstrip().split("\n")
        parts = _sentences(lines[-1])
        if parts and cue.search(parts[-1].strip()):
            lines[-1] = "".join(parts[:-1]).rstrip()
            text = "\n".join(lines).strip()
            out[-1:] = [Block(text, last.source, last.kind)] if text else []
        return out

    def _abstain_blocks(self, lang: str, level: int) -> list[Block]:
        body = [Block(p) for p in _paragraphs(str(self.phrases.get("abstain", lang)))]
        return self._with_handover(self._with_opening(body, lang, level), lang, level)

    def answer_section(
        self, faq: Article, hits: Sequence[Hit], anchor: str | None = None
    ) -> Section | None:
        """The question section (``q-...``) of ``faq`` that retrieval matched best to the
        message (its hit's best chunk), when the FAQ's reply template answers another
        question; None when the template is the answer (or there is no such section).
        An FAQ whose template is for an emergency (``CALM_SECTIONS``: the security FAQ's
        freeze-first steps) answers a message routed to it as no emergency from its first
        calm section ("is this e-mail real?") when retrieval matched no question.
        ``anchor``: the question the routing named (a login alert that was the customer's),
        before retrieval's."""
        if anchor is None:
            hit = next((h for h in hits if h.article_id == faq.id), None)
            anchor = str(getattr(hit, "section", "") or "")  # a hit may carry no section
            if not anchor.startswith("q-"):
                calm = CALM_SECTIONS.get(faq.id, ())
                if not (hits and calm):
                    return None
                anchor = calm[0]
        section, template = faq.section(anchor), faq.section("reply-template")
        if section is None or template is None or not section.text.strip():
            return None
        if template_share(section.text, template.text, faq.language in ("ja", "zh")) >= (
            SECTION_COVERED
        ):
            return None
        return section

    def answer_text(self, section: Section, lang: str) -> str:
        """A question section's text as a reply from support says it: plain text, with the
        phrases file's ``answer_rewrites`` ("contact support" -> "reply to this message")."""
        text = plain_text(section.text.strip())
        rewrites = self.phrases.data.get("answer_rewrites")
        pairs = rewrites.get(lang) if isinstance(rewrites, dict) else None
        for old, new in pairs or []:
            text = text.replace(str(old), str(new))
        return text

    def _faq_blocks(
        self,
        faq: Article,
        lang: str,
        level: int,
        hits: Sequence[Hit] = (),
        question: str | None = None,
    ) -> list[Block]:
        answer = self.answer_section(faq, hits, question)
        # a calm question, or one the routing or the message's facts named (a third lockout),
        # is answered alone: the template's steps would contradict it ("wait 30 minutes")
        calm = answer is not None and (
            answer.anchor in CALM_SECTIONS.get(faq.id, ()) or question is not None
        )
        opening = self.phrases.optional("answer_opening", lang)
        section = faq.section("reply-template")
        template = _paragraphs(_template_body(section.text if section else ""))
        if answer is not None and opening and section is not None:  # the question asked first
            paragraphs = _join_lead_ins(_paragraphs(self.answer_text(answer, lang)))
            body = [Block(opening), *(Block(p, faq.id) for p in paragraphs)]
            cjk = lang in ("ja", "zh")
            if not calm and template_share(answer.text, section.text, cjk) >= SECTION_RELATED:
                said = "\n".join(b.text for b in body)
                first = self._without_courtesy(template[0], lang) if template else ""
                steps = _join_lead_ins([first, *template[1:]] if first else template[1:])
                body += [  # the template's steps, without what the answer already says
                    Block(p, faq.id)
                    for p in steps
                    if template_share(p, said, cjk) < SECTION_REPEATS
                ]
            return self._with_handover(self._with_opening(body, lang, level), lang, level)
        body = [Block(p, faq.id) for p in template]
        if not body:  # no template: the key facts, announced
            facts = faq.bullets("key-facts")[:MAX_FACTS]
            if facts:
                body = [
                    Block(str(self.phrases.get("facts_lead_in", lang))),
                    Block(_bullets(facts), faq.id),
                ]
        return self._with_handover(self._with_opening(body, lang, level), lang, level)

    def _rejoin(self, paragraph: str, lang: str) -> str:
        """``paragraph`` without an "also" that pointed back at a list left out before it."""
        line, sep, rest = paragraph.partition("\n")
        parts = _sentences(line)
        if not parts:
            return paragraph
        first = parts[0]
        for pattern, repl in self.phrases.joins[lang]:
            first = pattern.sub(repl, first, count=1)
        if lang == "en" and first[:1].islower():
            first = first[0].upper() + first[1:]
        return "".join([first, *parts[1:]]) + sep + rest

    def _playbook_blocks(
        self, playbook: Article, level: int, faq: Article | None, message: str, lang: str
    ) -> list[Block]:
        section = playbook.section(f"level-{level}") or playbook.section("level-1")
        text = _template_body(section.text if section else "")
        before, has_facts, after = text.partition("{facts}")
        if not has_facts:
            return [Block(p, playbook.id) for p in _paragraphs(text)]
        intro, outro = _paragraphs(before), _paragraphs(after)
        facts = pick_facts(faq, message) if faq is not None else []
        lead_in: list[Block] = []
        if faq is None or not facts:  # nothing to list: drop the sentence that announces it
            intro[-1:] = [p for p in (_drop_lead_in(x) for x in intro[-1:]) if p]
            outro[:1] = [self._rejoin(p, lang) for p in outro[:1]]
        elif playbook.id in TOPICAL_PLAYBOOKS and not set(playbook.tags) & set(faq.tags):
            # the playbook announces e.g. "the fee rules that apply", the FAQ is about something
            # else: keep the facts, announce them neutrally
            neutral = str(self.phrases.get("facts_lead_in", lang))
            kept = [p for p in (_drop_lead_in(x) for x in intro[-1:]) if p]
            space = "" if lang in ("ja", "zh") else " "
            if kept:
                intro[-1:] = [kept[0] + space + neutral]
            else:
                intro, lead_in = intro[:-1], [Block(neutral)]
        return [
            *(Block(p, playbook.id) for p in intro),
            *lead_in,
            *([Block(_bullets(facts), faq.id)] if faq and facts else []),
            *(Block(p, playbook.id) for p in outro),
        ]
