"""What a guardrail check returns (the verdict, each violation with its span) and the
Guardrail interface the drafting pipeline depends on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from copilot.understand.signals import Flag


@dataclass(frozen=True)
class Violation:
    """One rule broken by the draft; ``span`` indexes into the draft (None: the whole draft)."""

    rule: str
    severity: str
    span: tuple[int, int] | None
    excerpt: str
    message: str
    fix: str
    tier: str = "rules"  # rules | learned | judge: which tier found it
    probability: float | None = None  # learned tier: the head's probability
    close_to: str | None = None  # learned tier: the closest labelled example

    @property
    def blocking(self) -> bool:
        """True for ``block`` rules (``warn`` rules never reject a draft)."""
        return self.severity == "block"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "span": list(self.span) if self.span is not None else None,
            "excerpt": self.excerpt,
            "message": self.message,
            "fix": self.fix,
            "tier": self.tier,
            "probability": None if self.probability is None else round(self.probability, 3),
            "close_to": self.close_to,
        }


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``pass`` or ``reject``, why, and input-side flags."""

    verdict: str
    violations: list[Violation] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    language: str = "en"
    judge: str | None = None  # None: judge not used; "ok"; or "error: ..."

    @property
    def passed(self) -> bool:
        """True when the draft may be sent."""
        return self.verdict == "pass"

    @property
    def rules(self) -> list[str]:
        """Ids of the rules that fired (block and warn), in order, without repeats."""
        return list(dict.fromkeys(v.rule for v in self.violations))

    def to_dict(self) -> dict[str, Any]:
        """``{"verdict", "violations", "flags"}``."""
        return {
            "verdict": self.verdict,
            "violations": [v.to_dict() for v in self.violations],
            "flags": [f.to_dict() for f in self.flags],
        }


def empty_draft_verdict() -> Verdict:
    """The reject verdict for an empty draft (the guardrail is not asked)."""
    return Verdict(
        "reject",
        [
            Violation(
                "empty_draft",
                "block",
                None,
                "",
                "the backend returned an empty draft",
                "write the full reply",
            )
        ],
    )


class Guardrail(Protocol):
    """What the drafting pipeline needs from a guardrail (:class:`~copilot.guard.guardrail.PolicyGuardrail`)."""

    def check(
        self,
        draft: str,
        *,
        customer_message: str | None = None,
        language: str | None = None,
        sources: list[str] | None = None,
        source_texts: dict[str, str] | None = None,
    ) -> Verdict:
        """Check one reply draft; ``sources`` are the cited article ids, ``source_texts`` their text."""
        ...

    def analyze_message(self, text: str, language: str | None = None) -> list[Flag]:
        """Input-side flags for a customer message."""
        ...
