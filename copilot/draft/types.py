"""What the drafting pipeline takes and returns: the request (message, thread, note) and the result with its provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


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
    sources: list[dict[str, str]] = field(default_factory=list)  # id, title, language
    verdict: str = "pass"
    violations: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
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

    def to_dict(self) -> dict[str, Any]:
        """The CLI output line (without ``id``) plus the extra provenance keys."""
        return {
            "draft": self.draft,
            "language": self.language,
            "sources": [s["id"] for s in self.sources],
            "verdict": self.verdict,
            "violations": self.violations,
            "flags": self.flags,
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
        }
