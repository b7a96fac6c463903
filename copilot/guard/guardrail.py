"""The guardrail: checks a reply draft against the policy file and says exactly why it fails.

``PolicyGuardrail.check(draft, ...)`` returns a :class:`Verdict`: ``reject`` when any
``block`` rule fires, else ``pass`` (``warn`` rules never reject). Every
violation carries the rule, a span that indexes into the draft, the excerpt,
the policy's message and fix hint, and the tier that found it. Three tiers, whose
findings add up:

* **rules**: the patterns and structured checks of ``prompts/policy.yaml``;
* **learned**: one trained head per rule over each sentence
  (:mod:`copilot.guard.learned`, ``COPILOT_GUARDRAIL_LEARNED``), with its probability and
  the closest labelled example;
* an optional **LLM judge** (off by default), which can add rejections but never remove
  the others.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from copilot.guard.checks import CHECKS, Context, Cues, Hit, backed_figures
from copilot.guard.figures import figure_set
from copilot.guard.judge import ask_judge, load_judge_prompt, parse_judge_answer
from copilot.guard.learned import LearnedTier
from copilot.guard.matching import Matcher, compile_cues
from copilot.guard.policy import Policy, Rule, load_policy
from copilot.guard.types import Verdict, Violation
from copilot.llm.base import Backend
from copilot.settings import Settings
from copilot.text.deobfuscate import encoded_runs
from copilot.text.language import detect_language
from copilot.text.pii import Vault, find_pii
from copilot.understand.injection import InjectionFlagger
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
        learned: LearnedTier | None = None,
        injection: InjectionFlagger | None = None,
    ) -> None:
        self.policy = policy
        self.learned = learned
        self.injection = injection
        self.allowed_domains = tuple(d.lower() for d in allowed_domains)
        self.knowledge_dir = knowledge_dir
        self.judge = judge
        self.judge_prompt = judge_prompt
        self._kb: dict[str, str] | None = None
        self._kb_lock = threading.Lock()  # concurrent first checks wait for the whole KB
        self._cues = compile_cues(policy)
        self._matcher = Matcher(policy, self._cues)
        # the flags of recent customer messages: a batch of drafts answering the same
        # message (an eval's variants, a redraft) analyses it once; Flags are immutable
        self._message_flags = functools.lru_cache(maxsize=1024)(self._flags_of)

    @classmethod
    def from_settings(cls, settings: Settings, judge: Backend | None = None) -> PolicyGuardrail:
        """Load ``settings.policy_file``; add the LLM judge when given or enabled in settings."""
        policy = load_policy(settings.policy_file)
        if judge is None and settings.guardrail_llm_judge and settings.llm_backend != "offline":
            from copilot.llm.registry import build_backend

            judge = build_backend(settings)
        prompt = load_judge_prompt(settings.prompts_dir / "guardrail_judge.yaml") if judge else None
        learned = injection = None
        if settings.guardrail_learned and policy.learned is not None:
            from copilot.guard.training import policy_data_sha256

            learned = LearnedTier.load(
                settings.models_dir,
                policy.learned.weights,
                data_sha256=policy_data_sha256(policy),
            )
            if policy.learned.injection_weights:
                from copilot.guard.injection_training import injection_data_sha256

                injection = InjectionFlagger.load(
                    settings.models_dir,
                    policy.learned.injection_weights,
                    data_sha256=injection_data_sha256(policy),
                )
        return cls(
            policy,
            allowed_domains=settings.allowed_domains,
            knowledge_dir=settings.knowledge_dir,
            judge=judge,
            judge_prompt=prompt,
            learned=learned,
            injection=injection,
        )

    # ---- public API -----------------------------------------------------------------------
    def analyze_message(self, text: str, language: str | None = None) -> list[Flag]:
        """Input-side flags for a customer message (injection, personal data, escalation,
        emotion); with the learned injection flag, an injection the cues miss is flagged at
        the part of the message that reads most like one (detail ``learned``)."""
        return list(self._message_flags(text, language))

    def _flags_of(self, text: str, language: str | None) -> tuple[Flag, ...]:
        flags = analyze_message(text, language)
        if self.injection is None or not text:
            return tuple(flags)
        cues = [f.span for f in flags if f.kind == "prompt_injection" and f.span is not None]
        if cues and next(encoded_runs(text), None) is None:
            return tuple(flags)
        hit = self.injection.hit(text, language or detect_language(text))
        if hit is not None and (
            not cues
            # a hidden (encoded) instruction the cues did not point at is shown as well
            or (
                hit.kind == "decoded"
                and not any(s < hit.span[1] and hit.span[0] < e for s, e in cues)
            )
        ):
            flags.insert(
                0,
                Flag(
                    "prompt_injection",
                    hit.span,
                    f"learned ({hit.kind}, p={hit.probability:.2f})",
                ),
            )
        return tuple(flags)

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
        ctx, violations, cleared = self._rules_tier(
            draft, customer_message, language, sources, source_texts
        )
        flags = self.analyze_message(customer_message, None) if customer_message else []
        if self.learned is not None:
            # the draft heads were trained on the cue finder's flag, not the learned one
            injected = any(
                f.kind == "prompt_injection" and not f.detail.startswith("learned") for f in flags
            )
            violations += self._learned(ctx, violations, cleared, injected)
        judge_state = None
        if self.judge is not None and self.judge_prompt is not None:
            extra, judge_state = self._judge(ctx, violations)
            violations += extra
        violations.sort(key=lambda v: (v.span[0] if v.span else 0, v.rule))
        blocked = any(v.severity == "block" for v in violations)
        return Verdict(
            "reject" if blocked else "pass", violations, flags, ctx.language, judge_state
        )

    def prime(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Embed, in one batch, every text the learned tiers will read for ``items`` (keys
        ``draft`` and ``customer_message``), so that checking them one by one afterwards
        embeds nothing. :meth:`clear_cache` forgets them."""
        if self.learned is not None:
            self.learned.prime(
                [
                    t
                    for it in items
                    for t in self.learned.texts_for(
                        str(it["draft"]), it.get("customer_message") or ""
                    )
                ]
            )
        if self.injection is not None:
            self.injection.prime(
                [
                    t
                    for it in items
                    if it.get("customer_message")
                    for t in self.injection.texts_for(str(it["customer_message"]))
                ]
            )

    def clear_cache(self) -> None:
        """Forget the learned tiers' cached vectors."""
        for tier in (self.learned, self.injection):
            if tier is not None:
                tier.clear_cache()

    def settle_cache(self) -> None:
        """Keep the primed vectors as recent ones (bounded): texts that repeat in the next
        batch (the same customer message, a template sentence) are not embedded again."""
        for tier in (self.learned, self.injection):
            if tier is not None:
                tier.settle_cache()

    def check_many(self, items: Sequence[Mapping[str, Any]]) -> Iterator[Verdict]:
        """:meth:`check` for each item (keys ``draft``, ``customer_message``, ``language``,
        ``sources``), with the learned tiers' embeddings of all items computed in one batch
        first. Same verdicts as one check at a time, yielded in order as each is ready (a
        caller writing them out keeps what was checked when interrupted)."""
        self.prime(items)
        try:
            for it in items:
                yield self.check(
                    str(it["draft"]),
                    customer_message=it.get("customer_message") or None,
                    language=it.get("language"),
                    sources=it.get("sources"),
                )
        finally:
            self.clear_cache()

    def evidence(
        self,
        draft: str,
        *,
        customer_message: str | None = None,
        language: str | None = None,
        sources: list[str] | None = None,
    ) -> tuple[Spans, Spans]:
        """What the rules tier saw in ``draft``: the spans each block rule fired on, and the
        spans a rule's pattern matched but negation, an exception, a condition or quotes
        cleared (both are features of the learned tier)."""
        _, violations, cleared = self._rules_tier(draft, customer_message, language, sources, None)
        return _spans(violations), cleared

    def _rules_tier(
        self,
        draft: str,
        customer_message: str | None,
        language: str | None,
        sources: list[str] | None,
        source_texts: dict[str, str] | None,
    ) -> tuple[Context, list[Violation], Spans]:
        lang = language if language in self.policy.languages else detect_language(draft)
        ctx = Context(
            draft=draft,
            language=lang,
            cues=self._cues.get(lang, Cues()),
            customer_message=customer_message or None,
            allowed_domains=self.allowed_domains,
            source_texts=self._source_texts(sources, source_texts),
            cited=bool(sources) or bool(source_texts),
        )
        languages = list(dict.fromkeys([lang, "en", detect_language(draft, lang)]))
        active = self._matcher.active(ctx, tuple(languages))
        violations: list[Violation] = []
        cleared: Spans = {}
        for rule in self.policy.rules:
            dropped: list[Hit] = []
            spans = self._matcher.hits(rule, ctx, languages, active, dropped)
            if dropped:
                cleared[rule.id] = [(s, e) for s, e, _ in dropped]
            if rule.detection.check:
                spans += CHECKS[rule.detection.check](ctx)
                if rule.detection.check == "unbacked_figures":
                    # figures the sources state: evidence the promise is supported
                    cleared.setdefault(rule.id, []).extend(backed_figures(ctx))
            violations += self._violations(rule, ctx, spans, lang)
        return ctx, violations, cleared

    # ---- internals ----------------------------------------------------------------------------
    def _learned(
        self, ctx: Context, found: list[Violation], cleared: Spans, injected: bool
    ) -> list[Violation]:
        """Sentences a learned head flags, where the rules tier found nothing of that rule."""
        assert self.learned is not None
        spans = _spans(found)
        hits = self.learned.hits(
            ctx.draft, ctx.language, spans, cleared, injected, ctx.customer_message or ""
        )
        out = []
        for hit in hits:
            if any(a < hit.end and hit.start < b for a, b in spans.get(hit.rule, ())):
                continue  # the rules tier already points at this sentence
            if hit.rule == "pii_leak" and _only_echoed_ids(
                ctx.draft[hit.start : hit.end], ctx.customer_message or ""
            ):
                continue
            rule = self.policy.rule(hit.rule)
            out.append(
                Violation(
                    rule.id,
                    rule.severity,
                    (hit.start, hit.end),
                    ctx.draft[hit.start : hit.end],
                    f"{rule.message_for(ctx.language)} (learned tier, p={hit.probability:.2f})",
                    rule.fix_for(ctx.language),
                    tier="learned",
                    probability=hit.probability,
                    close_to=hit.close_to,
                )
            )
        return out

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
        with self._kb_lock:
            if self._kb is None:
                kb: dict[str, str] = {}
                if self.knowledge_dir is not None and self.knowledge_dir.is_dir():
                    from copilot.kb.articles import validate_kb

                    articles, _ = validate_kb(self.knowledge_dir)
                    for art in articles:
                        kb[art.id] = kb.get(art.id, "") + "\n" + art.body
                    for text in kb.values():
                        figure_set(text)  # warm the cache: no draft pays for parsing an article
                self._kb = kb
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
                    tier="judge",
                )
            )
        return out


Spans = dict[str, list[tuple[int, int]]]


def _spans(violations: list[Violation]) -> Spans:
    """The spans of the blocking violations, per rule."""
    out: Spans = {}
    for v in violations:
        if v.span is not None and v.blocking:
            out.setdefault(v.rule, []).append(v.span)
    return out


#: identifiers of a transfer or an order: not personal data under the policy's pii_leak rule
_TRANSFER_IDS = frozenset({"TXID", "WALLET", "ORDER"})


def _only_echoed_ids(sentence: str, customer_message: str) -> bool:
    """Whether the only data in ``sentence`` are transfer or order ids the customer wrote
    themselves ("we are checking withdrawal W24... to 0x5290... (TxID 0x9f3c...)"): quoting
    them back is no leak, whatever a learned head reads into the long strings."""
    found = find_pii(sentence)
    return bool(found) and all(
        f.kind in _TRANSFER_IDS and f.value in customer_message for f in found
    )
