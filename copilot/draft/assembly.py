"""Assemble the chat messages for an LLM draft within the token budget.

Customer text is fenced as data (``<customer_message>`` and friends); a tag
name inside the data is neutralised so it cannot close the fence. When the
prompt is over budget, the lowest-ranked source chunks go first (down to the
best one), then the oldest history turns, then the agent note; a message that
alone is still too long is shortened in the middle, and only then is the last
source dropped. What was dropped is reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from copilot.draft.prompts import PromptSet
from copilot.llm.base import Message
from copilot.tokens import count_tokens, shorten
from copilot.understand.signals import Flag

LANGUAGE_NAMES = {"en": "English", "ja": "Japanese (日本語)", "zh": "Simplified Chinese (简体中文)"}
FENCE_TAGS = (
    "customer_message",
    "history",
    "agent_note",
    "sources",
    "source",
    "draft",
    "violations",
    "understanding",
)
_TAG_RE = re.compile(r"<(/?)\s*(" + "|".join(FENCE_TAGS) + r")\b", re.IGNORECASE)


def neutralise(text: str) -> str:
    """Data text with our fence tags defused (``<customer_message>`` -> ``‹customer_message>``)."""
    return _TAG_RE.sub(lambda m: "‹" + m.group(1) + m.group(2), text)


@dataclass(frozen=True)
class SourceChunk:
    """One retrieved passage shown to the model, best first."""

    article_id: str
    title: str
    text: str
    section: str = ""


@dataclass(frozen=True)
class HistoryTurn:
    """One earlier message of the thread (already masked)."""

    role: str
    text: str


@dataclass
class Assembled:
    """The messages sent to the backend and what the budget left out."""

    messages: list[Message]
    prompt_tokens: int
    chunks: list[SourceChunk]
    dropped_sources: int = 0
    dropped_history: int = 0
    truncated: list[str] = field(default_factory=list)


NO_SOURCES = (
    "(no knowledge-base article matched this message: state no facts; ask for "
    "the details you need or offer to pass the case to a colleague)"
)


def format_sources(chunks: Sequence[SourceChunk], empty: str = NO_SOURCES) -> str:
    """The ``<sources>`` block body: one ``<source id=...>`` element per chunk."""
    if not chunks:
        return empty
    parts = []
    for c in chunks:
        where = f" — {c.section}" if c.section else ""
        parts.append(
            f'<source id="{c.article_id}" title="{neutralise(c.title)}{neutralise(where)}">\n'
            f"{neutralise(c.text.strip())}\n</source>"
        )
    return "\n".join(parts)


def format_history(turns: Sequence[HistoryTurn]) -> str:
    """``customer: ...`` / ``agent: ...`` lines, oldest first."""
    if not turns:
        return "(none)"
    return "\n".join(f"{t.role}: {neutralise(t.text.strip())}" for t in turns)


def assemble_draft(
    prompts: PromptSet,
    *,
    language: str,
    greeting: str,
    channel: str,
    situation: str,
    chunks: Sequence[SourceChunk],
    history: Sequence[HistoryTurn],
    message: str,
    agent_note: str,
    allowed_domains: Sequence[str],
    budget: int,
    understanding: str = "(none)",
) -> Assembled:
    """System + draft messages within ``budget`` tokens (cl100k estimate)."""
    lang_name = LANGUAGE_NAMES.get(language, language)
    system = prompts["system"].render(
        language_name=lang_name, allowed_domains=", ".join(allowed_domains)
    )
    kept = list(chunks)
    turns = list(history)
    note, msg = agent_note, message
    result = Assembled([], 0, kept)

    def build() -> tuple[list[Message], int]:
        user = prompts["draft"].render(
            language_name=lang_name,
            greeting=greeting,
            channel=channel or "chat",
            situation=situation,
            understanding=understanding,
            sources=format_sources(kept),
            history=format_history(turns),
            customer_message=neutralise(msg.strip()),
            agent_note=neutralise(note.strip()) if note.strip() else "(none)",
        )
        msgs = [Message("system", system), Message("user", user)]
        return msgs, sum(count_tokens(m.content) for m in msgs)

    messages, tokens = build()
    while tokens > budget:
        if len(kept) > 1:
            kept.pop()
            result.dropped_sources += 1
        elif turns:
            turns.pop(0)
            result.dropped_history += 1
        elif note:
            note = ""
            result.truncated.append("agent_note")
        elif "customer_message" not in result.truncated and count_tokens(msg) > 64:
            msg = shorten(msg, max(64, count_tokens(msg) - (tokens - budget) - 16))
            result.truncated.append("customer_message")
        elif kept:
            kept.pop()
            result.dropped_sources += 1
        else:
            break  # nothing left to drop: send it over budget (recorded in tokens)
        messages, tokens = build()
    result.messages, result.prompt_tokens, result.chunks = messages, tokens, kept
    return result


REWRITE_SOURCE_TOKENS = 500  # per cited article in the rewrite prompt


def rewrite_messages(
    prompts: PromptSet,
    *,
    language: str,
    tone: str,
    articles: Sequence[Any],
    draft: str,
    settings: Any,
) -> Callable[[str], list[Message]]:
    """A function of the guardrail feedback ("" at first) giving the rewrite messages.

    Each cited article is shown by its head (key facts) and tail (reply template),
    best first, within half the token budget; ``draft`` must already be masked.
    """
    lang_name = LANGUAGE_NAMES.get(language, language)
    chunks = [SourceChunk(a.id, a.title, shorten(a.body, REWRITE_SOURCE_TOKENS)) for a in articles]
    while (
        chunks
        and sum(count_tokens(c.text) for c in chunks)
        > (settings.prompt_token_budget - count_tokens(draft)) // 2
    ):
        chunks.pop()
    system = prompts["system"].render(
        language_name=lang_name, allowed_domains=", ".join(settings.allowed_domains)
    )
    rewrite = prompts["rewrite"]

    def build(violations: str) -> list[Message]:
        feedback = (
            f"{rewrite.snippet('feedback')}\n<violations>\n{violations}\n</violations>\n"
            if violations
            else ""
        )
        user = rewrite.render(
            language_name=lang_name,
            tone=tone,
            sources=format_sources(chunks, rewrite.snippet("no_sources")),
            draft=neutralise(draft),
            feedback=feedback,
        )
        return [Message("system", system), Message("user", user)]

    return build


def situation_text(
    prompts: PromptSet,
    flags: Sequence[Flag],
    emotion: int,
    escalation: bool,
    abstain: bool,
    masked: bool,
) -> str:
    """The ``{{situation}}`` lines for the draft prompt, from the draft prompt's snippets."""
    draft = prompts["draft"]
    lines = [draft.snippet(f"emotion_{max(0, min(3, emotion))}")]
    if escalation:
        lines.append(draft.snippet("escalation"))
    if any(f.kind == "prompt_injection" for f in flags):
        lines.append(draft.snippet("injection"))
    if masked:
        lines.append(draft.snippet("pii"))
    if abstain:
        lines.append(draft.snippet("abstain"))
    return "\n".join(f"- {line}" for line in lines)


def understanding_text(
    prompts: PromptSet,
    *,
    topics: Sequence[tuple[str, float]] = (),
    flags: Sequence[str] = (),
    facts: Mapping[str, str] | None = None,
    compromised: bool = False,
    mask: Callable[[str], str] = lambda s: s,
) -> str:
    """The ``{{understanding}}`` block: detected topics with their confidence, situation flags
    and the facts the customer gave (passed through ``mask``: the model sees placeholders
    for personal data, as in the message), with the draft prompt's instructions for them."""
    draft = prompts["draft"]
    lines = []
    if topics:
        shown = ", ".join(f"{t} (p={p:.2f})" for t, p in topics)
        lines.append(f"- topics: {shown}")
    if flags:
        lines.append(f"- flags: {', '.join(flags)}")
    if len([t for t, _ in topics if "/" in t]) > 1:
        lines.append(f"- {draft.snippet('two_topics')}")
    if compromised or "account_compromised" in flags:
        lines.append(f"- {draft.snippet('compromised')}")
    if facts:
        lines.append(f"- {draft.snippet('facts')}")
        lines += [f"  - {k}: {neutralise(mask(v))}" for k, v in facts.items()]
    else:
        lines.append(f"- {draft.snippet('no_facts')}")
    return "\n".join(lines)


def violation_feedback(violations: Sequence[Any]) -> str:
    """The guardrail's violations as a list for the re-draft prompt."""
    lines = []
    for v in violations:
        line = f"- {v.rule}: {v.message}"
        if v.excerpt:
            line += f' (in: "{v.excerpt}")'
        if v.fix:
            line += f" Fix: {v.fix}"
        lines.append(line)
    return "\n".join(lines) or "- the draft did not pass the reply policy"
