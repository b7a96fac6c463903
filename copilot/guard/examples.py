"""What the guardrail's learned tier learns from: labelled drafts and example sentences.

Two kinds of files, both named by the policy file's ``learned:`` section:

* **example sentences** (``prompts/guard_examples.jsonl``), the teach-by-example file a
  compliance lead edits: ``{"rule", "language", "label": "violates"|"complies", "text",
  "note"?}``. One sentence that breaks a rule, or one that comes close and is fine.
* **labelled drafts** (``evals/guardrails/labelled_v1.jsonl``, ``train_v1/*.jsonl``):
  whole replies with ``expect``, ``rules`` and, for the training corpus, ``spans`` (the exact
  text that breaks each rule). A draft becomes one row per sentence: a sentence is a
  positive for a rule when it overlaps that rule's span; every sentence of a compliant
  draft is a negative for every rule.

Every problem names the file, the line and the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.errors import InputError, Problem
from copilot.jsonl import read_objects
from copilot.text.language import LANGUAGES
from copilot.text.sentences import sentence_spans

LABELS = ("violates", "complies")


@dataclass(frozen=True)
class DraftExample:
    """One labelled draft."""

    id: str
    language: str
    draft: str
    customer_message: str
    sources: tuple[str, ...]
    rules: tuple[str, ...]
    spans: tuple[tuple[str, int, int], ...]  # (rule, start, end) in the draft
    near_rule: str | None = None
    source: str = ""

    @property
    def compliant(self) -> bool:
        """True when the draft may be sent."""
        return not self.rules


@dataclass
class SentenceRow:
    """One training row: a sentence (of a draft or from the examples file) and its rules."""

    text: str
    language: str
    group: str  # rows of one draft share a group (cross-validation keeps them together)
    rules: set[str] = field(default_factory=set)  # rules the sentence breaks
    draft: DraftExample | None = None
    span: tuple[int, int] = (0, 0)  # where it sits in the draft


def split_of(item_id: str, dev_share: float = 0.2) -> str:
    """``dev`` for a stable ``dev_share`` of ids (by hash), else ``train``."""
    bucket = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "dev" if bucket < dev_share else "train"


def _lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows, problems = read_objects(path)
    if problems:
        raise InputError(problems)
    return rows


def load_examples(path: Path, rule_ids: Sequence[str]) -> list[SentenceRow]:
    """The example sentences of ``path`` as rows (a ``complies`` row breaks no rule)."""
    rows, problems = [], []
    for number, obj in _lines(path):

        def bad(field_name: str, what: str, number: int = number) -> None:
            problems.append(Problem(str(path), number, f"field '{field_name}': {what}"))

        rule, lang, label, text = (obj.get(k) for k in ("rule", "language", "label", "text"))
        if rule not in rule_ids:
            bad("rule", f"{rule!r} is not a policy rule")
        if lang not in LANGUAGES:
            bad("language", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
        if label not in LABELS:
            bad("label", "must be violates or complies")
        if not isinstance(text, str) or not text.strip():
            bad("text", "must be a non-empty sentence")
        unknown = sorted(set(obj) - {"rule", "language", "label", "text", "note"})
        if unknown:
            bad(unknown[0], "unknown field")
        if problems and problems[-1].line == number:
            continue
        rows.append(
            SentenceRow(
                str(text).strip(),
                str(lang),
                f"{path.name}:{number}",
                {str(rule)} if label == "violates" else set(),
            )
        )
    if problems:
        raise InputError(problems)
    return rows


def load_drafts(path: Path, rule_ids: Sequence[str]) -> list[DraftExample]:
    """Labelled drafts (``labelled_v1`` or the training corpus format)."""
    out, problems = [], []
    for number, obj in _lines(path):
        draft = obj.get("draft")
        expect = obj.get("expect")
        rules = obj.get("rules") or []
        lang = obj.get("language")
        if not isinstance(draft, str) or not draft.strip():
            problems.append(Problem(str(path), number, "field 'draft': must be text"))
            continue
        if expect not in ("pass", "reject") or lang not in LANGUAGES:
            problems.append(Problem(str(path), number, "field 'expect'/'language': invalid"))
            continue
        if not isinstance(rules, list) or any(r not in rule_ids for r in rules):
            problems.append(Problem(str(path), number, f"field 'rules': unknown rule in {rules}"))
            continue
        spans: list[tuple[str, int, int]] = []
        for item in obj.get("spans") or []:
            text = item.get("text", "") if isinstance(item, dict) else ""
            start = draft.find(text) if text else -1
            if start < 0 or item.get("rule") not in rules:
                problems.append(
                    Problem(str(path), number, f"field 'spans': {text[:40]!r} is not in the draft")
                )
                continue
            spans.append((str(item["rule"]), start, start + len(text)))
        out.append(
            DraftExample(
                id=str(obj.get("id") or f"{path.name}:{number}"),
                language=str(lang),
                draft=draft,
                customer_message=str(obj.get("customer_message") or ""),
                sources=tuple(str(s) for s in obj.get("sources") or []),
                rules=tuple(str(r) for r in rules) if expect == "reject" else (),
                spans=tuple(spans),
                near_rule=obj.get("near_rule") if isinstance(obj.get("near_rule"), str) else None,
                source=path.name,
            )
        )
    if problems:
        raise InputError(problems)
    return out


def draft_rows(drafts: Sequence[DraftExample]) -> list[SentenceRow]:
    """One row per sentence of each draft (see the module docstring).

    A reject without spans (``labelled_v1``) gives no positive rows: its sentences are not
    known to be fine or not, so only compliant drafts and drafts with spans are used.
    """
    rows = []
    for d in drafts:
        if d.rules and not d.spans:
            continue
        for start, end in sentence_spans(d.draft):
            rules = {
                rule
                for rule, s, e in d.spans
                if min(end, e) - max(start, s) >= min(8, e - s, end - start)
            }
            rows.append(SentenceRow(d.draft[start:end], d.language, d.id, rules, d, (start, end)))
    return rows
