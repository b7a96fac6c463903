"""What the drafting pipeline takes and returns: the request (message, thread, note) and the result with its provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from copilot.guard.types import Violation
from copilot.understand.signals import Flag


class SourceRef(TypedDict):
    """A cited article as shown with the draft."""

    id: str
    title: str
    language: str


@dataclass(frozen=True)
class Turn:
    """One earlier message of the thread."""

    role: Literal["customer", "agent"]
    text: str


@dataclass
class DraftRequest:
    """What the agent pastes: the customer's latest message and optional context."""

    customer_message: str
    language: str | None = None
    customer_name: str | None = None
    channel: str | None = None
    agent_note: str | None = None
    history: list[Turn] = field(default_factory=list)


@dataclass
class DraftResult:
    """A draft with its sources, guardrail verdict and provenance."""

    draft: str
    language: str
    sources: list[SourceRef] = field(default_factory=list)
    verdict: str = "pass"
    violations: list[Violation] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    attempts: int = 1
    blocked: bool = False
    abstained: bool = False
    backend: str = ""
    model: str = ""
    prompt_version: str = ""
    prompt_sha256: str = ""
    kb_version: str = ""
    scenario: str = ""
    tokens: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    removed_citations: list[str] = field(default_factory=list)
    # learned message understanding (topics with P, flags, emotion); None when the rules route
    understanding: dict[str, Any] | None = None
    variant: str | None = None  # "zh-Hant": the customer wrote, and the draft is, Traditional
    #: facts the customer gave (``withdrawal_id``, ``network``, ``elapsed``, ...), as written
    facts: dict[str, str] = field(default_factory=dict)
    #: the best retrieval hits (``id``, ``score``, ``language``, ``snippet``: the passage used),
    #: also when retrieval abstained
    retrieval: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The CLI output line (without ``id``) plus the extra provenance keys."""
        return {
            "draft": self.draft,
            "language": self.language,
            "sources": [s["id"] for s in self.sources],
            "verdict": self.verdict,
            "violations": [v.to_dict() for v in self.violations],
            "flags": [f.to_dict() for f in self.flags],
            "attempts": self.attempts,
            "backend": self.backend,
            "prompt_version": self.prompt_version,
            "kb_version": self.kb_version,
            "latency_ms": self.latency_ms,
            "blocked": self.blocked,
            "abstained": self.abstained,
            "model": self.model,
            "prompt_sha256": self.prompt_sha256,
            "scenario": self.scenario,
            "source_titles": {s["id"]: s["title"] for s in self.sources},
            "tokens": self.tokens,
            "removed_citations": self.removed_citations,
            "understanding": self.understanding,
            "variant": self.variant,
            "retrieval": self.retrieval,
            "facts": self.facts,
        }
