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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from copilot.backends import Message
from copilot.offline import count_tokens
from copilot.prompts import PromptSet

LANGUAGE_NAMES = {"en": "English", "ja": "Japanese (日本語)", "zh": "Simplified Chinese (简体中文)"}
FENCE_TAGS = (
    "customer_message",
    "history",
    "agent_note",
    "sources",
    "source",
    "draft",
    "violations",
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


def shorten(text: str, keep_tokens: int) -> str:
    """Keep the start and the end of ``text`` within about ``keep_tokens`` tokens."""
    from copilot.offline import encoding

    tokens = encoding().encode(text, disallowed_special=())
    if len(tokens) <= keep_tokens:
        return text
    half = max(1, keep_tokens // 2)
    return encoding().decode(tokens[:half]) + "\n[...]\n" + encoding().decode(tokens[-half:])


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


# ---- personal data ----------------------------------------------------------
NAME_PLACEHOLDER = "[CUSTOMER_NAME]"
_SEP = "\n\u241e\u241e\u241e\n"  # joins the texts masked together (never matched as PII)


@dataclass
class PiiVault:
    """Masked copies of the request's texts and the mapping to restore the draft.

    All texts are masked in one call so placeholders are numbered once
    ([EMAIL_1] means the same address everywhere). The customer's name is
    replaced by ``[CUSTOMER_NAME]`` too; only the vault knows the real values.
    """

    pii: Any
    message: str
    agent_note: str
    history: list[HistoryTurn]
    mapping: dict[str, str]
    name: str | None

    @classmethod
    def build(cls, pii: Any, request: Any, message: str) -> PiiVault:
        """Mask ``message``, the agent note and the history of ``request`` with ``pii.mask``."""
        history = list(getattr(request, "history", None) or [])
        note = getattr(request, "agent_note", None) or ""
        texts = [message, note, *(t.text for t in history)]
        masked = pii.mask(_SEP.join(texts))
        parts = masked.text.split(_SEP)
        if len(parts) != len(texts):  # a mask that ate the separator: mask one by one
            parts, mapping = [], {}
            for text in texts:
                one = pii.mask(text)
                parts.append(one.text)
                mapping.update(one.mapping)
        else:
            mapping = dict(masked.mapping)
        name = getattr(request, "customer_name", None)
        return cls(
            pii=pii,
            message=parts[0],
            agent_note=parts[1],
            history=[HistoryTurn(t.role, p) for t, p in zip(history, parts[2:], strict=True)],
            mapping=mapping,
            name=name.strip() if isinstance(name, str) and name.strip() else None,
        )

    @property
    def name_placeholder(self) -> str | None:
        """What the model sees instead of the customer's name (None without a name)."""
        return NAME_PLACEHOLDER if self.name else None

    def restore(self, text: str, shown_name: str | None = None) -> str:
        """The model's text with the real values put back."""
        if self.name:
            text = text.replace(NAME_PLACEHOLDER, shown_name or self.name)
        return str(self.pii.unmask(text, self.mapping)) if self.mapping else text

    def remask(self, text: str) -> str:
        """Real values in ``text`` (e.g. a violation excerpt) replaced by their placeholders."""
        pairs = sorted(self.mapping.items(), key=lambda kv: -len(kv[1]))
        for placeholder, original in pairs:
            if original:
                text = text.replace(original, placeholder)
        if self.name:
            text = text.replace(self.name, NAME_PLACEHOLDER)
        return text


_PLACEHOLDER_RE = re.compile(r"\[[A-Z][A-Z_]*_\d+\]|\[CUSTOMER_NAME\]")


def retrieval_query(vault: PiiVault) -> str:
    """The masked message without placeholders (they carry no meaning for search).

    A short follow-up ("any news?") is searched together with the last customer turn.
    """
    query = " ".join(_PLACEHOLDER_RE.sub(" ", vault.message).split())
    if len(query) < 40:
        earlier = [h.text for h in vault.history if h.role == "customer"]
        if earlier:
            query = " ".join(_PLACEHOLDER_RE.sub(" ", earlier[-1]).split()) + "\n" + query
    return query or vault.message


# ---- input signals -----------------------------------------------------------
def flag_dict(flag: Any) -> dict[str, Any]:
    """A guardrail flag (or an already plain dict) as a dict with ``kind``."""
    if isinstance(flag, dict):
        return dict(flag)
    return dict(flag.to_dict())


def situation_text(
    prompts: PromptSet,
    flags: Sequence[dict[str, Any]],
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
    if any(f.get("kind") == "prompt_injection" for f in flags):
        lines.append(draft.snippet("injection"))
    if masked:
        lines.append(draft.snippet("pii"))
    if abstain:
        lines.append(draft.snippet("abstain"))
    return "\n".join(f"- {line}" for line in lines)


# ---- guardrail feedback ----------------------------------------------------------
@dataclass(frozen=True)
class EmptyViolation:
    """Stands in for a guardrail violation when the backend returned nothing."""

    rule: str = "empty_draft"
    severity: str = "block"
    span: tuple[int, int] | None = None
    excerpt: str = ""
    message: str = "the backend returned an empty draft"
    fix: str = "write the full reply"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, like the guardrail's violations."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "span": None,
            "excerpt": "",
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class EmptyVerdict:
    """A reject verdict for an empty draft (the guardrail is not asked)."""

    verdict: str = "reject"
    violations: tuple[EmptyViolation, ...] = (EmptyViolation(),)
    flags: tuple[Any, ...] = ()


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
