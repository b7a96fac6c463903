"""The validated guardrail policy as frozen data: rules, their patterns and detection settings.

Built by :func:`copilot.guard.policy.load_policy` from ``prompts/policy.yaml``; read by the
guardrail engine. Mappings are read-only views, so a loaded policy cannot change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    """One regular expression with its own context switches (defaults come from the rule)."""

    regex: str
    negation: str  # none | before | clause | auto
    conditional: bool
    quoted: bool
    when: str = (
        "always"  # always | injection (only when the customer message has an injection attempt)
    )


@dataclass(frozen=True)
class Detection:
    """How a rule finds violations: per-language patterns and/or a named structured check."""

    patterns: Mapping[str, tuple[Pattern, ...]]
    exceptions: Mapping[str, tuple[str, ...]]
    check: str | None


@dataclass(frozen=True)
class Rule:
    """One policy rule."""

    id: str
    description: str
    severity: str
    languages: tuple[str, ...]
    message: Mapping[str, str]
    fix: Mapping[str, str]
    detection: Detection

    def message_for(self, language: str) -> str:
        """The message in ``language`` (English when not translated)."""
        return (
            self.message.get(language)
            or self.message.get("en")
            or next(iter(self.message.values()))
        )

    def fix_for(self, language: str) -> str:
        """The fix hint in ``language`` (English when not translated)."""
        return self.fix.get(language) or self.fix.get("en") or next(iter(self.fix.values()))


@dataclass(frozen=True)
class Learned:
    """The learned tier's part of the policy: which rules get a head, what they learn from."""

    weights: str  # COPILOT_MODELS_DIR/<weights>.npz and .json
    heads: tuple[str, ...]  # rule ids with a learned head
    examples: tuple[str, ...]  # example-sentence files, relative to the policy file
    corpus: tuple[str, ...]  # labelled-draft files (globs allowed), relative to the policy file
    # the input-side prompt-injection flag: its weights and labelled-message files (globs)
    injection_weights: str | None = None
    injection_corpus: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """The whole validated policy."""

    path: Path
    version: int
    languages: tuple[str, ...]
    negation_before: Mapping[str, str]
    negation_after: Mapping[str, str]
    conditional: Mapping[str, str]
    rules: tuple[Rule, ...]
    sha256: str
    learned: Learned | None = None

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError when unknown)."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Ids of every rule, in file order."""
        return tuple(r.id for r in self.rules)
