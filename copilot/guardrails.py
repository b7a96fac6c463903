"""The guardrail: checks a reply draft against the policy file and says exactly why it fails.

``Guardrail.check(draft, ...)`` returns a :class:`Verdict`: ``reject`` when any
``block`` rule fires, else ``pass`` (``warn`` rules never reject). Every
violation carries the rule, a span that indexes into the draft, the excerpt,
the policy's message and fix hint. Deterministic rules come from
``prompts/policy.yaml``; an optional LLM judge (off by default) can add
rejections but never remove deterministic ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from copilot.backends import Backend, Message
from copilot.checks import CHECKS, Context, Cues, figure_set
from copilot.errors import BackendError, CopilotError, InputError, Problem
from copilot.language import detect_language
from copilot.pii import fold_case
from copilot.policy import Pattern, Policy, Rule, anchors_of, load_policy, split_alternatives
from copilot.settings import Settings
from copilot.signals import Flag, analyze_message

__all__ = ["Flag", "Guardrail", "Verdict", "Violation"]


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


@dataclass(frozen=True)
class _Branch:
    """One top-level alternative of a policy pattern, compiled for lowercased text.

    ``anchors``: literals of which at least one must occur in the text; the branch then runs
    only on the sentences that contain one (no anchors: it runs on the whole text)."""

    index: int
    regex: re.Pattern[str]
    anchors: tuple[str, ...]
    negation: str
    conditional: bool
    quoted: bool
    when: str


def trie_regex(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, longest first, shaped as a trie (fast in ``re``)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


def _compile(patterns: Iterable[Pattern], branches: list[_Branch]) -> list[_Branch]:
    """Compile every top-level alternative of ``patterns``; append them to ``branches`` too."""
    first = len(branches)
    for p in patterns:
        for alt in split_alternatives(fold_case(p.regex)):
            try:
                regex = re.compile(alt)
            except re.error:  # an alternative that only compiles with its siblings
                regex, alt = re.compile(fold_case(p.regex)), fold_case(p.regex)
            branches.append(
                _Branch(
                    len(branches),
                    regex,
                    anchors_of(alt),
                    p.negation,
                    p.conditional,
                    p.quoted,
                    p.when,
                )
            )
    return branches[first:]


class Guardrail:
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
        self._cues = {
            lang: Cues(
                before=_maybe(policy.negation_before.get(lang)),
                after=_maybe(policy.negation_after.get(lang)),
                conditional=_maybe(policy.conditional.get(lang)),
            )
            for lang in policy.languages
        }
        self._groups: dict[tuple[str, str], list[_Branch]] = {}
        self._branches: list[_Branch] = []
        self._exceptions: dict[tuple[str, str], re.Pattern[str]] = {}
        for rule in policy.rules:
            for lang in (*rule.languages, "any"):
                if rule.detection.patterns.get(lang):
                    self._groups[(rule.id, lang)] = _compile(
                        rule.detection.patterns[lang], self._branches
                    )
                if rule.detection.exceptions.get(lang):
                    joined = "|".join(f"(?:{r})" for r in rule.detection.exceptions[lang])
                    self._exceptions[(rule.id, lang)] = re.compile(joined, re.IGNORECASE)
        self._by_anchor: dict[str, list[int]] = {}
        for b in self._branches:
            for a in b.anchors:
                self._by_anchor.setdefault(a, []).append(b.index)
        self._finders: dict[
            tuple[str, ...], tuple[re.Pattern[str] | None, dict[str, tuple[str, ...]]]
        ] = {}

    @classmethod
    def from_settings(cls, settings: Settings, judge: Backend | None = None) -> Guardrail:
        """Load ``settings.policy_file``; add the LLM judge when given or enabled in settings."""
        policy = load_policy(settings.policy_file)
        if judge is None and settings.guardrail_llm_judge and settings.llm_backend != "offline":
            from copilot.backends import build_backend

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
        ctx.anchor_finder, ctx.anchor_parts = self._finder(tuple(languages))
        active: dict[int, set[tuple[int, int]]] = {}
        for anchor, wins in ctx.anchor_windows.items():
            for index in self._by_anchor.get(anchor, ()):
                active.setdefault(index, set()).update(wins)
        violations: list[Violation] = []
        for rule in self.policy.rules:
            spans = self._rule_hits(rule, ctx, languages, active)
            violations += self._violations(rule, ctx, spans, lang)
        flags = analyze_message(customer_message, None) if customer_message else []
        judge_state = None
        if self.judge is not None and self.judge_prompt is not None:
            extra, judge_state = self._judge(ctx, violations)
            violations += extra
        violations.sort(key=lambda v: (v.span[0], v.rule))
        blocked = any(v.severity == "block" for v in violations)
        return Verdict("reject" if blocked else "pass", violations, flags, lang, judge_state)

    # ---- internals ----------------------------------------------------------------------------
    def _finder(
        self, languages: tuple[str, ...]
    ) -> tuple[re.Pattern[str] | None, dict[str, tuple[str, ...]]]:
        """One trie regex over the anchors of every branch that can run for ``languages``
        (built once per language combination) and, per anchor, the anchors inside it."""
        if languages not in self._finders:
            wanted = {*languages, "any"}
            anchors = {
                a
                for (_, lang), branches in self._groups.items()
                if lang in wanted
                for b in branches
                for a in b.anchors
            }
            regex = re.compile(trie_regex(anchors)) if anchors else None
            parts = {a: tuple(x for x in anchors if x in a) for a in anchors}
            self._finders[languages] = (regex, parts)
        return self._finders[languages]

    def _rule_hits(
        self,
        rule: Rule,
        ctx: Context,
        languages: list[str],
        active: dict[int, set[tuple[int, int]]],
    ) -> list[tuple[int, int, str]]:
        hits: list[tuple[int, int, str]] = []
        whole = {(0, len(ctx.lower))}
        for lang in [*languages, "any"]:
            groups = self._groups.get((rule.id, lang))
            if not groups or (lang not in rule.languages and lang != "any"):
                continue
            saved = ctx.cues
            ctx.cues = self._cues.get(lang if lang != "any" else ctx.language, Cues())
            exceptions = self._exceptions.get((rule.id, lang))
            for group in groups:
                if group.when == "injection" and not ctx.injection:
                    continue
                windows = active.get(group.index) if group.anchors else whole
                if not windows:
                    continue
                for lo, hi in windows:
                    for m in group.regex.finditer(ctx.lower, lo, hi):
                        start, end = m.span()
                        if end <= start or (group.quoted and ctx.quoted(start, end)):
                            continue
                        if exceptions is not None and exceptions.search(
                            ctx.text, *ctx.clause(start, end)
                        ):
                            continue
                        if ctx.negated(start, end, group.negation):
                            continue
                        if group.conditional and ctx.conditional(start, end):
                            continue
                        hits.append((start, end, ""))
            ctx.cues = saved
        if rule.detection.check:
            hits += CHECKS[rule.detection.check](ctx)
        return hits

    def _violations(
        self, rule: Rule, ctx: Context, hits: list[tuple[int, int, str]], lang: str
    ) -> list[Violation]:
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
                from copilot.knowledge import validate_kb

                articles, _ = validate_kb(self.knowledge_dir)
                for art in articles:
                    self._kb[art.id] = self._kb.get(art.id, "") + "\n" + art.body
                for text in self._kb.values():
                    figure_set(text)  # warm the cache: no draft pays for parsing an article
        return self._kb

    # ---- LLM judge ----------------------------------------------------------------------------
    def _judge(self, ctx: Context, found: list[Violation]) -> tuple[list[Violation], str]:
        assert self.judge is not None and self.judge_prompt is not None
        prompt = self.judge_prompt
        rules = "\n".join(
            f"- {r.id}: {r.description}" for r in self.policy.rules if r.severity == "block"
        )
        values = {
            "rules": rules,
            "language": ctx.language,
            "draft": ctx.draft,
            "customer_message": ctx.customer_message or "",
            "rule_ids": ", ".join(self.policy.rule_ids),
        }
        messages = [
            Message("system", _fill(prompt["system"], values)),
            Message("user", _fill(prompt["user"], values)),
        ]
        error = "error: no answer"
        for attempt in range(2):
            try:
                answer = self.judge.complete(messages, temperature=0.0, max_tokens=600).text
            except BackendError as exc:
                return [], f"error: {exc}"
            try:
                items = parse_judge_answer(answer, set(self.policy.rule_ids))
            except ValueError as exc:
                error = f"error: {exc}"
                if attempt == 0:
                    messages += [
                        Message("assistant", answer),
                        Message("user", _fill(prompt["retry"], values)),
                    ]
                continue
            return self._judge_violations(ctx, items, found), "ok"
        return [], error

    def _judge_violations(
        self, ctx: Context, items: list[dict[str, str]], found: list[Violation]
    ) -> list[Violation]:
        out: list[Violation] = []
        for item in items:
            rule = self.policy.rule(item["rule"])
            start = ctx.draft.find(item["excerpt"]) if item["excerpt"] else -1
            span = (start, start + len(item["excerpt"])) if start >= 0 else (0, len(ctx.draft))
            if any(
                v.rule == rule.id and v.span[0] < span[1] and span[0] < v.span[1]
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


def _maybe(regex: str | None) -> re.Pattern[str] | None:
    return re.compile(regex, re.IGNORECASE) if regex else None


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), m.group(0)), template)


def parse_judge_answer(text: str, rule_ids: set[str]) -> list[dict[str, str]]:
    """Strictly parse ``{"violations": [{"rule", "excerpt", "reason"}]}``; ValueError when malformed."""
    try:
        data = json.loads(text.strip())
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if (
        not isinstance(data, dict)
        or set(data) != {"violations"}
        or not isinstance(data["violations"], list)
    ):
        raise ValueError('expected an object with exactly one key, "violations" (a list)')
    out = []
    for item in data["violations"]:
        if not isinstance(item, dict) or set(item) != {"rule", "excerpt", "reason"}:
            raise ValueError('each violation needs exactly "rule", "excerpt" and "reason"')
        if not all(isinstance(item[k], str) for k in item):
            raise ValueError("violation fields must be strings")
        if item["rule"] not in rule_ids:
            raise ValueError(f"unknown rule {item['rule']!r}")
        out.append({k: str(item[k]) for k in ("rule", "excerpt", "reason")})
    return out


JUDGE_FIELDS = ("name", "version", "system", "user", "retry")


def load_judge_prompt(path: Path) -> dict[str, Any]:
    """Load and validate the LLM-judge prompt file (``version``, ``system``, ``user``, ``retry``)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CopilotError(f"{path}: cannot read judge prompt: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(
            [Problem(str(path), 1, f"not valid YAML: {str(exc).splitlines()[0]}")]
        ) from None
    problems = []
    if not isinstance(data, dict):
        raise InputError(
            [Problem(str(path), 1, "must be a mapping with version, system, user and retry")]
        )
    for key in JUDGE_FIELDS[1:]:
        if key not in data:
            problems.append(Problem(str(path), 1, f"field '{key}': missing"))
    for key in sorted(set(data) - set(JUDGE_FIELDS), key=str):
        problems.append(
            Problem(
                str(path), 1, f"field '{key}': unknown field; allowed: {', '.join(JUDGE_FIELDS)}"
            )
        )
    version = data.get("version")
    if "version" in data and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        problems.append(
            Problem(str(path), 1, f"field 'version': {version!r} must be a whole number >= 1")
        )
    for key in ("system", "user", "retry"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            problems.append(Problem(str(path), 1, f"field '{key}': must be non-empty text"))
    if problems:
        raise InputError(problems)
    return dict(data)
