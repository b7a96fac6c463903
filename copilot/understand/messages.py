"""Labelled customer messages: what message understanding learns from and is measured on.

One JSON object per line (``evals/frozen/briefs/msg_items.md`` is the format)::

    {"id", "language", "variant", "message", "thread": [{"role", "text"}], "agent_note",
     "topics": [primary, ...], "flags": [...], "escalation": [...], "emotion": 0-3,
     "injection": bool, "facts": {key: exact substring}, "note"}

``topics`` are the 20 knowledge-base article ids plus ``greeting_or_vague`` and
``out_of_scope``, primary first. Every problem names the file, the line and the field.
A stable 20% of the ids (by a hash, the same rule as the guardrail's training drafts) is
the dev split: measured, never trained on.
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
from copilot.understand.facts import FACT_KEYS  # the one list of fact keys

ARTICLES = (
    "faq/2fa-reset",
    "faq/bonus",
    "faq/deposit",
    "faq/fees",
    "faq/kyc",
    "faq/login-locked",
    "faq/market-info-disclaimer",
    "faq/options-payout",
    "faq/order-execution",
    "faq/password-reset",
    "faq/privacy",
    "faq/risk-tools",
    "faq/security",
    "faq/trading-bots",
    "faq/withdrawal",
    "playbook/angry-customer",
    "playbook/escalation",
    "playbook/fee-dispute",
    "playbook/liquidation",
    "playbook/technical-fault",
)
VAGUE = "greeting_or_vague"
OUT_OF_SCOPE = "out_of_scope"
TOPICS = (*ARTICLES, VAGUE, OUT_OF_SCOPE)
FLAGS = (
    "account_compromised",
    "asks_for_prediction_or_advice",
    "accusation",
    "refund_or_compensation_demand",
    "deadline",
)
ESCALATION = ("legal", "regulator", "supervisor", "complaint", "public")
_FIELDS = frozenset(
    [
        "id",
        "language",
        "variant",
        "message",
        "thread",
        "agent_note",
        "topics",
        "flags",
        "escalation",
        "emotion",
        "injection",
        "facts",
        "note",
    ]
)


@dataclass(frozen=True)
class ThreadTurn:
    """One earlier message of the conversation."""

    role: str  # customer | agent
    text: str


@dataclass(frozen=True)
class LabelledMessage:
    """One labelled customer message."""

    id: str
    language: str
    message: str
    thread: tuple[ThreadTurn, ...] = ()
    agent_note: str | None = None
    topics: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    escalation: tuple[str, ...] = ()
    emotion: int = 0
    injection: bool = False
    facts: dict[str, str] = field(default_factory=dict)
    variant: str | None = None
    source: str = ""
    line: int = 0


def split_of(item_id: str, dev_share: float = 0.2) -> str:
    """``dev`` for a stable ``dev_share`` of ids (by hash), else ``train``."""
    bucket = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "dev" if bucket < dev_share else "train"


def _strings(value: Any, allowed: Sequence[str] | None) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        return None
    if allowed is not None and any(x not in allowed for x in value):
        return None
    return list(value)


def parse_message(obj: dict[str, Any], path: Path, number: int) -> LabelledMessage | list[Problem]:
    """One line's object as a :class:`LabelledMessage`, or the problems found in it."""
    problems: list[Problem] = []

    def bad(name: str, what: str) -> None:
        problems.append(Problem(str(path), number, f"field '{name}': {what}"))

    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        bad(unknown[0], "unknown field")
    item_id, lang, message = obj.get("id"), obj.get("language"), obj.get("message")
    if not isinstance(item_id, str) or not item_id.strip():
        bad("id", "must be non-empty text")
    if lang not in LANGUAGES:
        bad("language", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
    if not isinstance(message, str) or not message.strip():
        bad("message", "must be non-empty text")
    variant = obj.get("variant")
    if variant not in (None, "zh-Hant"):
        bad("variant", 'must be null or "zh-Hant"')
    thread: list[ThreadTurn] = []
    raw_thread = obj.get("thread") or []
    if not isinstance(raw_thread, list):
        bad("thread", "must be a list")
        raw_thread = []
    for i, turn in enumerate(raw_thread):
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ("customer", "agent")
            or not isinstance(turn.get("text"), str)
        ):
            bad(f"thread[{i}]", 'must be {"role": "customer" or "agent", "text": "..."}')
            continue
        thread.append(ThreadTurn(turn["role"], turn["text"]))
    note = obj.get("agent_note")
    if note is not None and not isinstance(note, str):
        bad("agent_note", "must be text or null")
    topics = _strings(obj.get("topics"), TOPICS)
    if not topics:
        bad("topics", f"must be a non-empty list of {', '.join(TOPICS[:2])}, ... (see the spec)")
    flags = _strings(obj.get("flags", []), FLAGS)
    if flags is None:
        bad("flags", f"must be a list of {', '.join(FLAGS)}")
    escalation = _strings(obj.get("escalation", []), ESCALATION)
    if escalation is None:
        bad("escalation", f"must be a list of {', '.join(ESCALATION)}")
    emotion = obj.get("emotion", 0)
    if not isinstance(emotion, int) or isinstance(emotion, bool) or not 0 <= emotion <= 3:
        bad("emotion", "must be 0, 1, 2 or 3")
    injection = obj.get("injection", False)
    if not isinstance(injection, bool):
        bad("injection", "must be true or false")
    facts = obj.get("facts") or {}
    if not isinstance(facts, dict) or not all(
        k in FACT_KEYS and isinstance(v, str) for k, v in facts.items()
    ):
        bad("facts", f"must map {', '.join(FACT_KEYS[:3])}, ... to text")
        facts = {}
    if problems:
        return problems
    assert isinstance(item_id, str) and isinstance(message, str)
    return LabelledMessage(
        id=item_id,
        language=str(lang),
        message=message,
        thread=tuple(thread),
        agent_note=note if isinstance(note, str) and note.strip() else None,
        topics=tuple(topics or ()),
        flags=tuple(flags or ()),
        escalation=tuple(escalation or ()),
        emotion=int(emotion),
        injection=bool(injection),
        facts={str(k): str(v) for k, v in facts.items()},
        variant=variant if isinstance(variant, str) else None,
        source=path.name,
        line=number,
    )


def load_messages(path: Path) -> list[LabelledMessage]:
    """Every labelled message of ``path``; :class:`InputError` lists all problems (file, line,
    field) when any line is wrong, or when an id repeats."""
    rows, problems = read_objects(path)
    out: list[LabelledMessage] = []
    seen: dict[str, int] = {}
    for number, obj in rows:
        parsed = parse_message(obj, path, number)
        if isinstance(parsed, list):
            problems += parsed
            continue
        if parsed.id in seen:
            problems.append(
                Problem(
                    str(path), number, f"field 'id': {parsed.id!r} repeats line {seen[parsed.id]}"
                )
            )
            continue
        seen[parsed.id] = number
        out.append(parsed)
    problems.sort(key=lambda p: p.line)  # in file order, whatever found them
    if problems:
        raise InputError(problems)
    return out


def load_many(paths: Sequence[Path]) -> list[LabelledMessage]:
    """The messages of several files, in order (an id may appear once across them)."""
    out: list[LabelledMessage] = []
    where: dict[str, str] = {}
    problems: list[Problem] = []
    for p in paths:
        for m in load_messages(p):
            if m.id in where:
                problems.append(
                    Problem(str(p), m.line, f"field 'id': {m.id!r} is also in {where[m.id]}")
                )
                continue
            where[m.id] = p.name
            out.append(m)
    if problems:
        raise InputError(problems)
    return out


TRAIN_DIR = Path("evals/understanding/train_v1")


def training_files(folder: Path = TRAIN_DIR) -> list[Path]:
    """The labelled-message files of ``folder`` (``*.jsonl``, sorted by name)."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise InputError([Problem(str(folder), 1, "no labelled-message files (*.jsonl) here")])
    return files


def load_split(folder: Path = TRAIN_DIR, part: str | None = None) -> list[LabelledMessage]:
    """The messages of ``folder``; only the ``train`` or ``dev`` part when ``part`` is given."""
    messages = load_many(training_files(folder))
    if part is None:
        return messages
    return [m for m in messages if split_of(m.id) == part]
