"""What a guardrail check returns: the verdict and each violation with its span."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from copilot.understand.signals import Flag


@dataclass(frozen=True)
class Violation:
    """One rule broken by the draft; ``span`` indexes into the draft."""

    rule: str
    severity: str
    span: tuple[int, int]
    excerpt: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "span": list(self.span),
            "excerpt": self.excerpt,
            "message": self.message,
            "fix": self.fix,
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
