"""The embedded default drafter: no LLM, replies composed from KB reply templates.

Given the retrieval hits and the input signals (emotion level, escalation cue),
it picks a scenario:

* an escalation cue -> ``playbook/escalation``;
* a topical playbook (liquidation, fee dispute, technical fault) ranked first,
  or in the top three for an upset customer -> that playbook;
* an angry customer (level 2 with the angry-customer playbook retrieved, or
  level 3) -> ``playbook/angry-customer``;
* otherwise the best FAQ's reply template, with a short empathetic opening
  when the customer is upset;
* nothing retrieved -> an honest reply asking for details.

Playbook templates are chosen by emotion level (0/1 -> level-1, 2 -> level-2,
3 -> level-3); ``{facts}`` becomes the best FAQ's key facts most related to
the message. The greeting, openings, sign-off and abstention text come from
``prompts/offline_phrases.yaml``. Every block drawn from an article ends with
its citation ``[id]``. The output is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from copilot.errors import CopilotError
from copilot.knowledge import Article
from copilot.prompts import file_sha256

LANGUAGES = ("en", "ja", "zh")
TOPICAL_PLAYBOOKS = ("playbook/liquidation", "playbook/fee-dispute", "playbook/technical-fault")
ESCALATION = "playbook/escalation"
ANGRY = "playbook/angry-customer"
MAX_FACTS = 3
MIN_FAQ_SCORE = 0.5  # an FAQ below this (calibrated) score is not used for facts
CLOSE_SCORE = 0.15  # playbooks this close in score are ordered by their "when" section

Lookup = Callable[[str, str], Article | None]


class HitLike(Protocol):
    """What the drafter reads from a retrieval hit."""

    article_id: str
    type: str
    score: float


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

    def without(self, excerpts: Iterable[str]) -> OfflineDraft:
        """A revision with every body block containing one of ``excerpts`` removed."""
        needles = [e.strip() for e in excerpts if e and e.strip()]
        kept = tuple(
            b
            for b in self.blocks
            if b.kind != "body" or not any(n in b.text for n in needles)
        )
        return OfflineDraft(kept, self.scenario, self.level, self.articles)


@dataclass(frozen=True)
class Phrases:
    """The phrases file, validated."""

    version: int
    sha256: str
    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Phrases:
        """Read ``offline_phrases.yaml``; every section must cover en, ja and zh."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CopilotError(f"{path}: offline phrases file not found") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CopilotError(f"{path}: cannot read offline phrases: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("version"), int):
            raise CopilotError(f"{path}: must be a mapping with an integer 'version:'")
        for section in ("greeting", "sign_off", "empathy", "handover", "abstain"):
            table = data.get(section)
            if not isinstance(table, dict):
                raise CopilotError(f"{path}: missing section '{section}'")
            for lang in LANGUAGES:
                if lang not in table:
                    raise CopilotError(f"{path}: section '{section}' has no '{lang}' entry")
        for lang in LANGUAGES:
            if sorted(data["empathy"][lang]) != [1, 2, 3]:
                raise CopilotError(f"{path}: empathy.{lang} needs levels 1, 2 and 3")
        return cls(int(data["version"]), file_sha256(path), path, data)

    def get(self, section: str, language: str) -> Any:
        """The entry of ``section`` for ``language``."""
        return self.data[section][language]

    @property
    def label(self) -> str:
        """``offline_phrases@<version>``."""
        return f"offline_phrases@{self.version}"


_NAME_JUNK = re.compile(r"[\[\]{}<>\n\r\t]")
_HONORIFICS = ("様", "さん", "殿")
_PLACEHOLDER = re.compile(r"^\[[A-Z][A-Z0-9_]*\]$")


def clean_name(name: str | None, language: str) -> str:
    """The name as shown in a greeting: no brackets or line breaks, no doubled honorific."""
    if name and _PLACEHOLDER.match(name):
        return name
    clean = " ".join(_NAME_JUNK.sub(" ", name or "").split())[:60]
    if language == "ja":
        for suffix in _HONORIFICS:
            if clean.endswith(suffix) and len(clean) > len(suffix):
                clean = clean[: -len(suffix)].strip()
    return clean


def greeting(phrases: Phrases, language: str, name: str | None) -> str:
    """The greeting line: en "Hi Ken," / ja "山田様" / zh "李明您好，", or the neutral form.

    A placeholder such as ``[CUSTOMER_NAME]`` is kept as it is (masked LLM prompts).
    """
    clean = clean_name(name, language)
    table = phrases.get("greeting", language)
    if not clean:
        return str(table["anonymous"])
    return str(table["named"]).replace("{name}", clean)


_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")
_STOP = frozenset(
    ["the", "and", "for", "you", "your", "with", "that", "this", "have", "has", "are", "was", "not", "but", "can", "how", "what", "why", "when", "where", "from", "into", "any", "all", "our", "out", "get", "got", "its", "it's", "been", "did", "does", "just", "still"]
)


def _terms(text: str) -> set[str]:
    """Lower-case words (3+ letters) and CJK character bigrams, for overlap scoring."""
    low = text.lower()
    terms = {w for w in _WORD.findall(low) if len(w) >= 3 and w not in _STOP}
    for run in _CJK.findall(low):
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    return terms


def pick_facts(article: Article, message: str, limit: int = MAX_FACTS) -> list[str]:
    """Up to ``limit`` key facts of ``article`` most related to ``message``, in article order."""
    facts = article.bullets("key-facts")
    if len(facts) <= limit:
        return facts
    wanted = _terms(message)
    scored = sorted(
        range(len(facts)), key=lambda i: (-len(_terms(facts[i]) & wanted), i)
    )
    return [facts[i] for i in sorted(scored[:limit])]


def choose_scenario(
    article_ids: Sequence[str], emotion: int, escalation: bool
) -> str | None:
    """The playbook for the situation, or None for a plain FAQ answer.

    ``article_ids`` are the retrieved articles, best first, without repeats.
    """
    if escalation:
        return ESCALATION
    top3 = list(article_ids[:3])
    first = top3[0] if top3 else None
    if first in TOPICAL_PLAYBOOKS:
        return first
    if emotion >= 1:
        for aid in top3:
            if aid in TOPICAL_PLAYBOOKS:
                return aid
    if (emotion >= 2 and ANGRY in top3) or emotion >= 3 or (first == ANGRY and emotion >= 1):
        return ANGRY
    if first == ESCALATION and emotion >= 2:
        return ESCALATION
    return None


def rank_articles(
    hits: Sequence[HitLike], message: str, lookup: Lookup, language: str
) -> list[str]:
    """Article ids best first; close topical playbooks are re-ordered by their "when" section.

    Retrieval sometimes puts two playbooks within a few points of each other
    (a liquidation complaint that also mentions money); the playbook whose
    "when to use" text shares more terms with the message goes first.
    """
    best: dict[str, float] = {}
    for h in hits:
        best.setdefault(h.article_id, float(h.score))
    ids = list(best)
    topical = [a for a in ids[:3] if a in TOPICAL_PLAYBOOKS]
    if len(topical) < 2:
        return ids
    lead = max(best[a] for a in topical)
    close = [a for a in topical if lead - best[a] <= CLOSE_SCORE]
    if len(close) < 2:
        return ids
    wanted = _terms(message)

    def overlap(aid: str) -> int:
        art = lookup(aid, language)
        when = art.section("when") if art is not None else None
        text = f"{art.title} {when.text}" if art is not None and when is not None else ""
        return len(_terms(text) & wanted)

    ordered = sorted(close, key=lambda a: (-overlap(a), ids.index(a)))
    slots = sorted(ids.index(a) for a in close)
    for slot, aid in zip(slots, ordered, strict=True):
        ids[slot] = aid
    return ids


def _cite(paragraph: str, source: str) -> str:
    """``paragraph [source]``; a paragraph ending in a colon gets the mark before the colon."""
    text = paragraph.rstrip()
    if text.endswith((":", "：")):
        return f"{text[:-1].rstrip()} [{source}]{text[-1]}"
    return f"{text} [{source}]"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
_ANNOUNCES_LIST = re.compile(r"[:：]\s*$|以下|如下")


def _drop_lead_in(paragraph: str) -> str:
    """The paragraph without its last sentence when that announces a list ("...:", 以下, 如下)."""
    text = paragraph.rstrip()
    cuts = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() < len(text)]
    last = text[cuts[-1]:] if cuts else text
    if not _ANNOUNCES_LIST.search(last):
        return text
    return text[: cuts[-1]].rstrip() if cuts else ""


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _template_body(text: str) -> str:
    """A reply template without its ``{name}`` greeting line."""
    lines = text.strip().splitlines()
    if lines and lines[0].strip() == "{name}":
        lines = lines[1:]
    return "\n".join(lines).replace("{name}", "").strip()


class OfflineDrafter:
    """Composes drafts from KB templates; ``lookup(article_id, language)`` fetches articles."""

    def __init__(self, phrases: Phrases, lookup: Lookup) -> None:
        self.phrases = phrases
        self.lookup = lookup

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
        hits: Sequence[HitLike],
        abstain: bool,
        emotion: int = 0,
        escalation: bool = False,
    ) -> OfflineDraft:
        """The draft for one customer message."""
        lang = language if language in LANGUAGES else "en"
        level = max(0, min(3, emotion))
        ids = rank_articles(hits, message, self.lookup, lang)
        head = Block(greeting(self.phrases, lang, name), kind="greeting")
        tail = Block(str(self.phrases.get("sign_off", lang)), kind="sign_off")
        faq = None
        for h in hits:
            if h.article_id.startswith("faq/") and float(h.score) >= MIN_FAQ_SCORE:
                faq = self.lookup(h.article_id, lang)
                if faq is not None:
                    break
        scenario = choose_scenario([] if abstain else ids, level, escalation)
        if scenario is not None:
            playbook = self.lookup(scenario, lang)
            if playbook is not None:
                body = self._playbook_blocks(playbook, max(1, level), faq, message, lang)
                used = (playbook, faq) if faq is not None and any(
                    b.source == faq.id for b in body
                ) else (playbook,)
                return OfflineDraft((head, *body, tail), scenario, level, used)
        if abstain or faq is None:
            return OfflineDraft((head, *self._abstain_blocks(lang, level), tail), "abstain", level)
        return OfflineDraft((head, *self._faq_blocks(faq, lang, level), tail), "faq", level, (faq,))

    # ---- building blocks ---------------------------------------------------
    def _opening(self, lang: str, level: int) -> list[Block]:
        if level < 1:
            return []
        return [Block(str(self.phrases.get("empathy", lang)[level]))]

    def _handover(self, lang: str, level: int) -> list[Block]:
        return [Block(str(self.phrases.get("handover", lang)))] if level >= 3 else []

    def _abstain_blocks(self, lang: str, level: int) -> list[Block]:
        body = [Block(p) for p in _paragraphs(str(self.phrases.get("abstain", lang)))]
        return [*self._opening(lang, level), *body, *self._handover(lang, level)]

    def _faq_blocks(self, faq: Article, lang: str, level: int) -> list[Block]:
        section = faq.section("reply-template")
        paragraphs = _paragraphs(_template_body(section.text if section else ""))
        if not paragraphs:  # no template: fall back to the key facts
            facts = faq.bullets("key-facts")[:MAX_FACTS]
            paragraphs = ["\n".join(f"- {f}" for f in facts)] if facts else []
        body = [Block(p, faq.id) for p in paragraphs]
        return [*body[:1], *self._opening(lang, level), *body[1:], *self._handover(lang, level)]

    def _playbook_blocks(
        self, playbook: Article, level: int, faq: Article | None, message: str, lang: str
    ) -> list[Block]:
        section = playbook.section(f"level-{level}") or playbook.section("level-1")
        text = _template_body(section.text if section else "")
        before, has_facts, after = text.partition("{facts}")
        if not has_facts:
            return [Block(p, playbook.id) for p in _paragraphs(text)]
        intro = _paragraphs(before)
        facts = pick_facts(faq, message) if faq is not None else []
        if faq is None or not facts:  # nothing to list: drop the sentence that announces it
            intro[-1:] = [p for p in (_drop_lead_in(x) for x in intro[-1:]) if p]
        return [
            *(Block(p, playbook.id) for p in intro),
            *([Block("\n".join(f"- {f}" for f in facts), faq.id)] if faq and facts else []),
            *(Block(p, playbook.id) for p in _paragraphs(after)),
        ]
