"""Use what the customer gave: acknowledge the facts found in the message and thread
(:mod:`copilot.understand.facts`), and never ask for one of them again.

The phrases file (``prompts/offline_phrases.yaml``) says how:

* ``fact_labels``: per language, how each fact is named in an acknowledgement (``{v}`` is
  the value as the customer wrote it) and, under ``ask``, in a request for it;
* ``facts_ack``: the acknowledgement sentence (``{items}``), put after the reply's opening
  paragraph; empty (the default since phrases version 5) for none: a list of the customer's
  own facts read as robotic, so facts are used inside the answer instead (``facts_said``);
* ``facts_said``: per language, named slots of sentences that use a given fact inside the
  answer ("You have been waiting 31 hours for your withdrawal W88..., longer than ...");
  each slot lists variants, the first that fits is used (:class:`FactSentence`);
* ``fact_asks``: per language, the sentences of the KB reply templates (and of our own
  abstention text) that ask the customer for something: a pattern and the items it asks
  for (``a|b``: either one will do). A sentence whose items are all given is dropped; one
  whose items are partly given becomes ``ask_missing`` for the rest;
* ``ask_missing``: "Could you also send me {items}?".

Items that are not facts (``screenshot``, ``what``, ``instrument``) are never given; ``time``
counts as given when the customer said how long ago it happened, ``os`` when the message
names an operating system with its version ("iOS 18.1"), and ``error_message`` also when
the message quotes an error or gives its code ('Unexpected token <', 「…（コード：E1023）」,
(-1001), HTTP 503) that the extractor did not take.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from copilot.errors import CopilotError
from copilot.understand.facts import FACT_KEYS, Facts

ASK_ITEMS = (*FACT_KEYS, "time", "os", "screenshot", "what", "instrument")
ACKNOWLEDGED = (
    "withdrawal_id",
    "txid",
    "order_id",
    "network",
    "amount",
    "asset",
    "elapsed",
    "device",
    "app_version",
    "error_message",
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")


@dataclass(frozen=True)
class AskRule:
    """A template sentence that asks for ``items`` (each a tuple of alternatives)."""

    pattern: re.Pattern[str]
    items: tuple[tuple[str, ...], ...]


_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "a couple of": 2, "a few": 3,
    "several": 3, "半": 0.5,
}  # fmt: skip
_CJK_DIGITS = {"一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6,
               "七": 7, "八": 8, "九": 9}  # fmt: skip
# a business day is 7/5 of a calendar day on average: "the 4th business day" of a review
# that takes "1-3 business days" is past it (96 calendar hours would not say so)
BUSINESS_DAY_HOURS = 24 * 7 / 5
_UNITS = (
    (re.compile(r"business\s+days?|working\s+days?|営業日|工作日|工作天"), BUSINESS_DAY_HOURS),
    (re.compile(r"min|分"), 1 / 60),
    (re.compile(r"h(?:ou)?rs?\b|hours?|\bh\b|時間|小时|小時|钟|鐘"), 1.0),
    (re.compile(r"days?|日|天"), 24.0),
    (re.compile(r"w(?:ee)?ks?|週|周|星期|禮拜|礼拜"), 168.0),
    (re.compile(r"months?|ヶ月|か月|カ月|个月|個月"), 720.0),
)
_LEAD_NUMBER = re.compile(
    r"(\d+(?:\.\d+)?)|([一二两兩三四五六七八九]?十[一二三四五六七八九]?|[一二两兩三四五六七八九半])"
    r"|\b(a couple of|a few|several|an?|one|two|three|four|five|six|seven|eight|nine|ten"
    r"|twelve|fifteen|twenty|thirty|forty|fifty)\b",
    re.IGNORECASE,
)


def _cjk_number(text: str) -> float:
    if text == "半":
        return 0.5
    if "十" in text:
        tens, _, ones = text.partition("十")
        return float(_CJK_DIGITS.get(tens, 1) * 10 + _CJK_DIGITS.get(ones, 0))
    return float(_CJK_DIGITS[text])


def elapsed_hours(value: str) -> float | None:
    """A duration the customer wrote ("31 hours", 「26時間」, 三十多个小时, 兩天, 半日) in hours,
    or None when it is not a plain number of minutes, hours, days, weeks or months."""
    text = value.strip().lower()
    m = _LEAD_NUMBER.search(text)
    if m is None:
        return None
    if m.group(1):
        number = float(m.group(1))
    elif m.group(2):
        number = _cjk_number(m.group(2))
    else:
        number = float(_NUMBERS[m.group(3).lower()])
    rest = text[m.end() :]
    for unit, hours in _UNITS:
        if unit.search(rest):
            return number * hours
    return None


# ``facts_said`` slots whose names start with this replace the routine answer (see
# :meth:`copilot.draft.offline.compose.OfflineDrafter._overdue`)
OVERDUE_SLOT = "overdue"
# slots whose names start with this answer a follow-up on an open case that is still within
# the KB's service time (its variants say ``follow_up: true``): they replace the routine
# answer too, without the Tier 2 hand-over
PENDING_SLOT = "pending"


@dataclass(frozen=True)
class FactSentence:
    """One variant of a ``facts_said`` slot: ``text`` with ``{key}`` placeholders for the
    facts in ``needs``, used when the draft's scenario or a cited article is one of ``when``,
    the message shows the situation of the playbook ``cue`` (or the routing named the
    question ``cue``: ``q-phishing-email``) (if set), matches ``match`` (a
    case-insensitive pattern, if set: "wrong address", 銀行) and not ``unless``, every fact in ``needs``
    was given and the elapsed time is within ``over_hours`` .. ``under_hours`` (if set). It
    goes after the opening paragraph (``at: start``) or at the end of the body (``at: end``),
    cited to ``cite`` (None: our own sentence); with ``once`` it is left out when the draft
    already cites ``cite`` (a second-topic section already answers from it). A ``follow_up``
    variant fits only a follow-up on an open case
    (:func:`copilot.understand.followup.chases_open_case`), and its ``match`` and ``unless``
    read the whole thread with the message (the case is named in the thread: "any news??")."""

    slot: str
    text: str
    when: tuple[str, ...]
    needs: tuple[str, ...] = ()
    cue: str | None = None
    over_hours: float | None = None
    under_hours: float | None = None
    at: str = "start"
    cite: str | None = None
    match: re.Pattern[str] | None = None
    once: bool = False
    unless: re.Pattern[str] | None = None
    follow_up: bool = False

    def fits(
        self,
        facts: Facts,
        scenario: str,
        cited: Sequence[str],
        cues: set[str],
        message: str = "",
        thread: str | None = None,
    ) -> bool:
        """True when this variant applies to a draft (see the class docstring); ``thread``:
        the thread's text when the message is a follow-up on an open case, else None."""
        if scenario not in self.when and not set(cited) & set(self.when):
            return False
        if self.follow_up:
            if thread is None:
                return False
            message = f"{thread}\n{message}"
        if self.cue is not None and self.cue not in cues:
            return False
        if self.match is not None and not self.match.search(message):
            return False
        if self.unless is not None and self.unless.search(message):
            return False
        if self.once and self.cite in cited:
            return False
        if any(k not in facts for k in self.needs):
            return False
        if self.over_hours is not None or self.under_hours is not None:
            hours = elapsed_hours(str(facts.get("elapsed") or ""))
            if hours is None:
                return False
            if self.over_hours is not None and hours <= self.over_hours:
                return False
            if self.under_hours is not None and hours > self.under_hours:
                return False
        return True

    def render(self, facts: Facts) -> str:
        """The sentence with the customer's own values."""
        text = self.text
        for k in self.needs:
            text = text.replace("{" + k + "}", str(facts.get(k)))
        return text


@dataclass(frozen=True)
class FactPhrases:
    """The validated fact sections of the phrases file for one language."""

    ack: str
    ask_missing: str
    labels: Mapping[str, str]  # fact key -> "withdrawal ID {v}"
    asks: Mapping[str, str]  # item -> "the withdrawal ID"
    rules: tuple[AskRule, ...]
    joiner: tuple[str, str]  # (", ", " and ")
    said: tuple[FactSentence, ...] = ()


def load_fact_phrases(data: Mapping[str, Any], path: object, lang: str) -> FactPhrases | None:
    """The fact phrases for ``lang``, or None when the file has no ``facts_ack`` section."""
    if not isinstance(data.get("facts_ack"), dict):
        return None
    try:
        ack = str(data["facts_ack"][lang]).strip()
        missing = str(data["ask_missing"][lang]).strip()
        table = data["fact_labels"][lang]
        labels = {k: str(table["ack"][k]) for k in ACKNOWLEDGED}
        asks = {k: str(table["ask"][k]) for k in ASK_ITEMS}
        joiner = (str(table["join"][0]), str(table["join"][1]))
        raw_rules = data["fact_asks"][lang]
    except (KeyError, TypeError, IndexError) as exc:
        raise CopilotError(f"{path}: fact phrases for '{lang}' are incomplete: {exc}") from None
    if (ack and "{items}" not in ack) or "{items}" not in missing:
        raise CopilotError(f"{path}: facts_ack.{lang} and ask_missing.{lang} need {{items}}")
    rules = []
    for i, rule in enumerate(raw_rules or []):
        where = f"{path}: fact_asks.{lang}[{i}]"
        if not isinstance(rule, dict) or not isinstance(rule.get("match"), str):
            raise CopilotError(f"{where}: needs match: (a pattern) and asks: (items)")
        items = rule.get("asks")
        if not isinstance(items, list) or not items:
            raise CopilotError(f"{where}: asks: must list items")
        parsed = tuple(tuple(str(x).split("|")) for x in items)
        unknown = sorted({a for alt in parsed for a in alt} - set(ASK_ITEMS))
        if unknown:
            raise CopilotError(f"{where}: unknown item '{unknown[0]}'; use {', '.join(ASK_ITEMS)}")
        try:
            pattern = re.compile(rule["match"], re.IGNORECASE)
        except re.error as exc:
            raise CopilotError(f"{where}: match is not a valid regular expression: {exc}") from None
        rules.append(AskRule(pattern, parsed))
    said = _load_said(data.get("facts_said"), path, lang)
    return FactPhrases(ack, missing, labels, asks, tuple(rules), joiner, said)


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _hours(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CopilotError(f"{where}: over_hours / under_hours must be numbers")
    return float(value)


def _pattern(value: object, key: str, where: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(str(value), re.IGNORECASE)
    except re.error as exc:
        raise CopilotError(f"{where}: {key} is not a valid regular expression: {exc}") from None


def _load_said(table: object, path: object, lang: str) -> tuple[FactSentence, ...]:
    """The ``facts_said`` variants for ``lang`` (none without the section)."""
    if table is None:
        return ()
    slots = table.get(lang) if isinstance(table, dict) else None
    if not isinstance(slots, dict):
        raise CopilotError(f"{path}: facts_said.{lang} must map slot names to lists of variants")
    out = []
    for slot, variants in slots.items():
        if not isinstance(variants, list) or not variants:
            raise CopilotError(f"{path}: facts_said.{lang}.{slot} must list variants")
        for i, v in enumerate(variants):
            where = f"{path}: facts_said.{lang}.{slot}[{i}]"
            if not isinstance(v, dict) or not isinstance(v.get("text"), str) or not v["text"]:
                raise CopilotError(f"{where}: needs text:")
            when = v.get("when")
            when_list = [when] if isinstance(when, str) else when
            if not isinstance(when_list, list) or not when_list:
                raise CopilotError(f"{where}: needs when: (article ids)")
            needs = tuple(str(k) for k in v.get("needs") or ())
            unknown = sorted(set(needs) - set(FACT_KEYS))
            if unknown:
                raise CopilotError(f"{where}: unknown fact '{unknown[0]}'")
            extra = sorted(set(_PLACEHOLDER.findall(v["text"])) - set(needs))
            if extra:
                raise CopilotError(f"{where}: {{{extra[0]}}} is not in needs:")
            at = str(v.get("at") or "start")
            if at not in ("start", "end"):
                raise CopilotError(f"{where}: at: must be start or end")
            match, unless = (_pattern(v.get(k), k, where) for k in ("match", "unless"))
            out.append(
                FactSentence(
                    slot=str(slot),
                    text=v["text"].strip(),
                    when=tuple(str(w) for w in when_list),
                    needs=needs,
                    cue=str(v["cue"]) if v.get("cue") else None,
                    over_hours=_hours(v.get("over_hours"), where),
                    under_hours=_hours(v.get("under_hours"), where),
                    at=at,
                    cite=str(v["cite"]) if v.get("cite") else None,
                    match=match,
                    once=bool(v.get("once")),
                    unless=unless,
                    follow_up=bool(v.get("follow_up")),
                )
            )
    return tuple(out)


def said_sentences(
    fp: FactPhrases,
    facts: Facts,
    scenario: str,
    cited: Sequence[str],
    cues: set[str],
    message: str = "",
    thread: str | None = None,
) -> list[FactSentence]:
    """The first fitting variant of each ``facts_said`` slot, in file order (``thread``: see
    :meth:`FactSentence.fits`)."""
    chosen: dict[str, FactSentence] = {}
    for s in fp.said:
        if s.slot not in chosen and s.fits(facts, scenario, cited, cues, message, thread):
            chosen[s.slot] = s
    return list(chosen.values())


def _join(parts: Sequence[str], joiner: tuple[str, str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return joiner[0].join(parts[:-1]) + joiner[1] + parts[-1]


# what a message shows beside the extracted facts: an operating system with its version
# ("iOS 18.1", Android 14), and an error the customer quoted or coded ('Unexpected token <',
# 「ネットワークエラー（コード：E1023）」, 网络请求失败(-1001), HTTP 503)
_OS = re.compile(
    r"\b(?:iOS|iPadOS|Android|HarmonyOS|Windows|macOS|Mac\s?OS)\s?\d+(?:\.\d+)*", re.IGNORECASE
)
_ERROR_SHOWN = re.compile(
    r"(?<![A-Za-z])'[^'\n]{4,80}'(?![A-Za-z])|\"[^\"\n]{4,80}\"|“[^”\n]{2,80}”|「[^」\n]{2,80}」"
    r"|\((?:code|コード|代码|代碼)?[:：]?\s?-?[A-Z]{0,3}\d{3,5}\)|（(?:code|コード|代码|代碼)?[:：]?\s?-?[A-Z]{0,3}\d{3,5}）"
    r"|\bHTTP\s?\d{3}\b",
    re.IGNORECASE,
)


def _given(item: str, facts: Facts, message: str = "") -> bool:
    if item == "time":
        return "elapsed" in facts
    if item == "os":
        return bool(_OS.search(message))
    if item == "error_message" and "error_message" not in facts:
        return bool(_ERROR_SHOWN.search(message))
    return item in facts


def acknowledgement(facts: Facts, fp: FactPhrases) -> str:
    """The sentence naming the facts the customer gave ("" when none is worth naming, or
    when the phrases file has no acknowledgement sentence)."""
    if not fp.ack:
        return ""
    keys = [k for k in ACKNOWLEDGED if k in facts]
    amount = facts.get("amount") or ""
    if "asset" in keys and (amount and (facts.get("asset") or "").lower() in amount.lower()):
        keys.remove("asset")  # "500 USDT" already says USDT
    if keys == ["asset"]:
        return ""  # a coin named in passing is not a detail worth thanking for
    items = [fp.labels[k].replace("{v}", str(facts.get(k))) for k in keys]
    return fp.ack.replace("{items}", _join(items, fp.joiner)) if items else ""


def _sentences(line: str) -> list[str]:
    cuts = [m.end() for m in _SENTENCE_END.finditer(line) if 0 < m.end() < len(line)]
    bounds = [0, *cuts, len(line)]
    return [line[a:b] for a, b in pairwise(bounds) if line[a:b]]


def _rewrite_sentence(
    sentence: str, facts: Facts, fp: FactPhrases, cjk: bool, message: str = ""
) -> str | None:
    """None to keep ``sentence``; else its replacement ("" to drop it)."""
    for rule in fp.rules:
        if not rule.pattern.search(sentence):
            continue
        if not any(_given(a, facts, message) for alt in rule.items for a in alt):
            return None  # nothing it asks for was given: the template's own words stay
        missing = [alt for alt in rule.items if not any(_given(a, facts, message) for a in alt)]
        if not missing:
            return ""
        names = [_join([fp.asks[a] for a in alt], (" / ", " / ")) for alt in missing]
        text = fp.ask_missing.replace("{items}", _join(names, fp.joiner))
        return text if cjk else " " + text + " "
    return None


def without_given(
    text: str,
    facts: Facts,
    fp: FactPhrases,
    cjk: bool,
    message: str = "",
    asked: set[str] | None = None,
) -> str:
    """``text`` with every sentence asking only for given facts dropped, and every one asking
    partly for given facts narrowed to the missing ones; ``asked`` (the narrowed requests of
    earlier blocks of the same draft, updated here) keeps a request from being made twice."""
    if not facts and not message:
        return text
    out_lines = []
    for line in text.split("\n"):
        bullet = re.match(r"^\s*(?:[-*+•]|\d+[.)])\s+", line)
        head = line[: bullet.end()] if bullet else ""
        parts = _sentences(line[len(head) :])
        changed = False
        kept = []
        for s in parts:
            new = _rewrite_sentence(s, facts, fp, cjk, message)
            if new is None:
                kept.append(s)
                continue
            changed = True
            if asked is not None and new.strip():
                if new.strip() in asked:
                    continue  # "could you also send me the network?" once per draft
                asked.add(new.strip())
            kept.append(new)
        if not changed:
            out_lines.append(line)
            continue
        body = "".join(kept)
        body = re.sub(r"[ \t]{2,}", " ", body).strip()
        if body:
            out_lines.append(head + body)
    return "\n".join(out_lines).strip()
