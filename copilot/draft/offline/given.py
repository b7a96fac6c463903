"""Use what the customer gave: acknowledge the facts found in the message and thread
(:mod:`copilot.understand.facts`), and never ask for one of them again.

The phrases file (``prompts/offline_phrases.yaml``) says how:

* ``fact_labels``: per language, how each fact is named in an acknowledgement (``{v}`` is
  the value as the customer wrote it) and, under ``ask``, in a request for it;
* ``facts_ack``: the acknowledgement sentence (``{items}``), put after the reply's opening
  paragraph;
* ``fact_asks``: per language, the sentences of the KB reply templates (and of our own
  abstention text) that ask the customer for something: a pattern and the items it asks
  for (``a|b``: either one will do). A sentence whose items are all given is dropped; one
  whose items are partly given becomes ``ask_missing`` for the rest;
* ``ask_missing``: "Could you also send me {items}?".

Items that are not facts (``os``, ``screenshot``, ``what``, ``instrument``) are never given;
``time`` counts as given when the customer said how long ago it happened.
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


@dataclass(frozen=True)
class FactPhrases:
    """The validated fact sections of the phrases file for one language."""

    ack: str
    ask_missing: str
    labels: Mapping[str, str]  # fact key -> "withdrawal ID {v}"
    asks: Mapping[str, str]  # item -> "the withdrawal ID"
    rules: tuple[AskRule, ...]
    joiner: tuple[str, str]  # (", ", " and ")


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
    if "{items}" not in ack or "{items}" not in missing:
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
    return FactPhrases(ack, missing, labels, asks, tuple(rules), joiner)


def _join(parts: Sequence[str], joiner: tuple[str, str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return joiner[0].join(parts[:-1]) + joiner[1] + parts[-1]


def _given(item: str, facts: Facts) -> bool:
    if item == "time":
        return "elapsed" in facts
    return item in facts


def acknowledgement(facts: Facts, fp: FactPhrases) -> str:
    """The sentence naming the facts the customer gave ("" when none is worth naming)."""
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


def _rewrite_sentence(sentence: str, facts: Facts, fp: FactPhrases, cjk: bool) -> str | None:
    """None to keep ``sentence``; else its replacement ("" to drop it)."""
    for rule in fp.rules:
        if not rule.pattern.search(sentence):
            continue
        if not any(_given(a, facts) for alt in rule.items for a in alt):
            return None  # nothing it asks for was given: the template's own words stay
        missing = [alt for alt in rule.items if not any(_given(a, facts) for a in alt)]
        if not missing:
            return ""
        names = [_join([fp.asks[a] for a in alt], (" / ", " / ")) for alt in missing]
        text = fp.ask_missing.replace("{items}", _join(names, fp.joiner))
        return text if cjk else " " + text + " "
    return None


def without_given(text: str, facts: Facts, fp: FactPhrases, cjk: bool) -> str:
    """``text`` with every sentence asking only for given facts dropped, and every one asking
    partly for given facts narrowed to the missing ones."""
    if not facts:
        return text
    out_lines = []
    for line in text.split("\n"):
        bullet = re.match(r"^\s*(?:[-*+•]|\d+[.)])\s+", line)
        head = line[: bullet.end()] if bullet else ""
        parts = _sentences(line[len(head) :])
        changed = False
        kept = []
        for s in parts:
            new = _rewrite_sentence(s, facts, fp, cjk)
            if new is None:
                kept.append(s)
            else:
                changed = True
                kept.append(new)
        if not changed:
            out_lines.append(line)
            continue
        body = "".join(kept)
        body = re.sub(r"[ \t]{2,}", " ", body).strip()
        if body:
            out_lines.append(head + body)
    return "\n".join(out_lines).strip()
