"""The guardrail: checks a reply draft against the policy file and says exactly why it fails.

``PolicyGuardrail.check(draft, ...)`` returns a :class:`Verdict`: ``reject`` when any
``block`` rule fires, else ``pass`` (``warn`` rules never reject). Every
violation carries the rule, a span that indexes into the draft, the excerpt,
the policy's message and fix hint. Deterministic rules come from
``prompts/policy.yaml``; an optional LLM judge (off by default) can add
rejections but never remove deterministic ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from copilot.guard.checks import CHECKS, Context, Cues, Hit
from copilot.guard.figures import figure_set
from copilot.guard.judge import ask_judge, load_judge_prompt, parse_judge_answer
from copilot.guard.matching import Matcher, compile_cues
from copilot.guard.policy import Policy, Rule, load_policy
from copilot.guard.types import Verdict, Violation
from copilot.llm.base import Backend
from copilot.settings import Settings
from copilot.text.language import detect_language
from copilot.text.pii import Vault
from copilot.understand.signals import Flag, analyze_message

__all__ = [
    "Flag",
    "PolicyGuardrail",
    "Verdict",
    "Violation",
    "load_judge_prompt",
    "parse_judge_answer",
]


class PolicyGuardrail:
    """A compiled policy; build once (``from_settings``) and call :meth:`check` per draft."""

    def __init__(
        self,
        policy: Policy,
        *,
        allowed_domains: tuple[str, ...] = ("example.com",),
        knowledge_dir: Path | None = None,
        judge: Backend | None = None,
        judge_prompt: dict[str, Any] | None = None,
    ) -> None:
        self.policy = policy
        self.allowed_domains = tuple(d.lower() for d in allowed_domains)
        self.knowledge_dir = knowledge_dir
        self.judge = judge
        self.judge_prompt = judge_prompt
        self._kb: dict[str, str] | None = None
        self._cues = compile_cues(policy)
        self._matcher = Matcher(policy, self._cues)

    @classmethod
    def from_settings(cls, settings: Settings, judge: Backend | None = None) -> PolicyGuardrail:
        """Load ``settings.policy_file``; add the LLM judge when given or enabled in settings."""
        policy = load_policy(settings.policy_file)
        if judge is None and settings.guardrail_llm_judge and settings.llm_backend != "offline":
            from copilot.llm.registry import build_backend

            judge = build_backend(settings)
        prompt = load_judge_prompt(settings.prompts_dir / "guardrail_judge.yaml") if judge else None
        return cls(
            policy,
            allowed_domains=settings.allowed_domains,
            knowledge_dir=settings.knowledge_dir,
            judge=judge,
            judge_prompt=prompt,
        )

    # ---- public API -----------------------------------------------------------------------
    def analyze_message(self, text: str, language: str | None = None) -> list[Flag]:
        """Input-side flags for a customer message (injection, personal data, escalation, emotion)."""
        return analyze_message(text, language)

    def warm(self) -> int:
        """Compile now what the first check in each language would otherwise compile
        (a long-running drafting process calls this at start); returns the finder count."""
        return self._matcher.warm(self.policy.languages)

    def check(
        self,
        draft: str,
        *,
        customer_message: str | None = None,
        language: str | None = None,
        sources: list[str] | None = None,
        source_texts: dict[str, str] | None = None,
    ) -> Verdict:
        """Check one draft; ``sources`` are cited article ids, ``source_texts`` their text."""
        draft = draft if isinstance(draft, str) else str(draft)
        lang = language if language in self.policy.languages else detect_language(draft)
        ctx = Context(
            draft=draft,
            language=lang,
            cues=self._cues.get(lang, Cues()),
            customer_message=customer_message or None,
            allowed_domains=self.allowed_domains,
            source_texts=self._source_texts(sources, source_texts),
        )
        languages = list(dict.fromkeys([lang, "en", detect_language(draft, lang)]))
        active = self._matcher.active(ctx, tuple(languages))
        violations: list[Violation] = []
        for rule in self.policy.rules:
            spans = self._matcher.hits(rule, ctx, languages, active)
            if rule.detection.check:
                spans += CHECKS[rule.detection.check](ctx)
            violations += self._violations(rule, ctx, spans, lang)
        flags = analyze_message(customer_message, None) if customer_message else []
        judge_state = None
        if self.judge is not None and self.judge_prompt is not None:
            extra, judge_state = self._judge(ctx, violations)
            violations += extra
        violations.sort(key=lambda v: (v.span[0] if v.span else 0, v.rule))
        blocked = any(v.severity == "block" for v in violations)
        return Verdict("reject" if blocked else "pass", violations, flags, lang, judge_state)

    # ---- internals ----------------------------------------------------------------------------
    def _violations(self, rule: Rule, ctx: Context, hits: list[Hit], lang: str) -> list[Violation]:
        merged: list[tuple[int, int, str]] = []
        for start, end, detail in sorted(hits):
            if merged and start < merged[-1][1]:
                s, e, d = merged[-1]
                merged[-1] = (s, max(e, end), d or detail)
            else:
                merged.append((start, end, detail))
        message = rule.message_for(lang)
        return [
            Violation(
                rule.id,
                rule.severity,
                (s, e),
                ctx.draft[s:e],
                f"{message} ({detail})" if detail else message,
                rule.fix_for(lang),
            )
            for s, e, detail in merged
        ]

    def _source_texts(
        self, sources: list[str] | None, source_texts: dict[str, str] | None
    ) -> list[str] | None:
        if source_texts:
            return list(source_texts.values())
        kb = self._load_kb()
        if not kb:
            return None
        if sources:
            found = [kb[s] for s in sources if s in kb]
            if found:
                return found
        return list(kb.values())

    def _load_kb(self) -> dict[str, str]:
        if self._kb is None:
            self._kb = {}
            if self.knowledge_dir is not None and self.knowledge_dir.is_dir():
                from copilot.kb.articles import validate_kb

                articles, _ = validate_kb(self.knowledge_dir)
                for art in articles:
                    self._kb[art.id] = self._kb.get(art.id, "") + "\n" + art.body
                for text in self._kb.values():
                    figure_set(text)  # warm the cache: no draft pays for parsing an article
        return self._kb

    # ---- LLM judge ----------------------------------------------------------------------------
    def _judge(self, ctx: Context, found: list[Violation]) -> tuple[list[Violation], str]:
        assert self.judge is not None and self.judge_prompt is not None
        rules = "\n".join(
            f"- {r.id}: {r.description}" for r in self.policy.rules if r.severity == "block"
        )
        # the judge is a remote call: it sees the draft and the message masked, and its
        # excerpts and reasons come back with the real values (to be found in the draft)
        vault = Vault.for_texts([ctx.draft, ctx.customer_message or ""])
        values = {
            "rules": rules,
            "language": ctx.language,
            "draft": vault.mask(ctx.draft),
            "customer_message": vault.mask(ctx.customer_message or ""),
            "rule_ids": ", ".join(self.policy.rule_ids),
        }
        items, state = ask_judge(self.judge, self.judge_prompt, values, set(self.policy.rule_ids))
        items = [{k: vault.restore(v) for k, v in item.items()} for item in items]
        return self._judge_violations(ctx, items, found), state

    def _judge_violations(
        self, ctx: Context, items: list[dict[str, str]], found: list[Violation]
    ) -> list[Violation]:
        out: list[Violation] = []
        for item in items:
            rule = self.policy.rule(item["rule"])
            start = ctx.draft.find(item["excerpt"]) if item["excerpt"] else -1
            span = (start, start + len(item["excerpt"])) if start >= 0 else (0, len(ctx.draft))
            if any(
                v.rule == rule.id
                and v.span is not None
                and v.span[0] < span[1]
                and span[0] < v.span[1]
                for v in found + out
            ):
                continue
            out.append(
                Violation(
                    rule.id,
                    rule.severity,
                    span,
                    ctx.draft[span[0] : span[1]],
                    f"LLM judge: {item['reason']}",
                    rule.fix_for(ctx.language),
                )
            )
        return out
