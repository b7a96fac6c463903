"""Grounded drafting: the copilot's main job.

Pipeline for one customer message (or thread)::

    language -> input checks (injection, escalation, emotion) -> personal data masked
    -> retrieval -> prompt within the token budget -> backend -> citations resolved
    -> data restored -> guardrail -> (rejected: re-draft with the violations, at most
    2 retries) -> result

A draft that still fails comes back ``blocked`` with the violations. With the
``offline`` backend the draft is composed from KB templates
(:mod:`copilot.draft.offline.compose`) and a re-draft drops the offending paragraphs.
Everything the pipeline needs is passed into :class:`Copilot`; build it with
:func:`build_copilot`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from copilot.draft.assembly import (
    LANGUAGE_NAMES,
    SourceChunk,
    assemble_draft,
    flag_dict,
    rewrite_messages,
    situation_text,
    violation_feedback,
)
from copilot.draft.citations import find_citations, resolve_citations
from copilot.draft.masking import PiiVault
from copilot.draft.offline.compose import OfflineDraft, OfflineDrafter
from copilot.draft.offline.phrases import clean_name, greeting
from copilot.draft.prompts import PromptSet
from copilot.draft.query import retrieval_query
from copilot.draft.types import DraftRequest, DraftResult
from copilot.errors import CopilotError
from copilot.guard.verdict import EmptyVerdict
from copilot.kb.articles import LANGUAGES
from copilot.llm.base import Backend, Message
from copilot.settings import Settings
from copilot.text.language import detect_language
from copilot.tokens import count_tokens

TONES = ("empathetic", "concise", "formal")
MAX_ATTEMPTS = 3  # the first draft plus at most 2 re-drafts


class _Stopwatch:
    """Adds up milliseconds per stage with the injected clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.start = clock()
        self.ms: dict[str, float] = {}

    def lap(self, stage: str, since: float) -> float:
        now = self.clock()
        self.ms[stage] = round(self.ms.get(stage, 0.0) + (now - since) * 1000, 3)
        return now

    def total(self) -> dict[str, float]:
        return {**self.ms, "total": round((self.clock() - self.start) * 1000, 3)}


class Copilot:
    """Drafts and rewrites replies; every collaborator is injected (see :func:`build_copilot`)."""

    def __init__(
        self,
        *,
        retriever: Any,
        backend: Backend,
        guardrail: Any,
        prompts: PromptSet,
        drafter: OfflineDrafter,
        settings: Settings,
        clock: Callable[[], float] = time.perf_counter,
        pii: Any = None,
    ) -> None:
        self.retriever = retriever
        self.backend = backend
        self.guardrail = guardrail
        self.prompts = prompts
        self.drafter = drafter
        self.settings = settings
        self.clock = clock
        self._pii = pii

    @property
    def offline(self) -> bool:
        """True when drafts come from KB templates rather than a language model."""
        return self.backend.name == "offline"

    # ---- drafting -------------------------------------------------------
    def draft(self, request: DraftRequest) -> DraftResult:
        """A guard-railed, cited draft for ``request``; see the module docstring."""
        watch = _Stopwatch(self.clock)
        t = watch.start
        message = self._check_message(request.customer_message, "customer_message")
        language = self._language(request.language, message)
        t = watch.lap("language", t)
        flags = [flag_dict(f) for f in self.guardrail.analyze_message(message, language)]
        emotion = max(
            (int(f.get("level") or 0) for f in flags if f["kind"] == "emotion"), default=0
        )
        escalation = any(f["kind"] == "escalation" for f in flags)
        t = watch.lap("input_checks", t)
        vault = PiiVault.build(self._pii_module(), request, message)
        t = watch.lap("masking", t)
        found = self.retriever.search(
            retrieval_query(vault), k=self.settings.retrieval_k, language=language
        )
        t = watch.lap("retrieval", t)
        common = {
            "language": language,
            "flags": flags,
            "kb_version": str(found.kb_version or ""),
            "abstained": bool(found.abstain),
            "backend": self.backend.name,
            "model": self.backend.model,
        }
        if self.offline:
            return self._draft_offline(
                request, message, found, emotion, escalation, watch, t, common
            )
        return self._draft_llm(
            request, message, found, vault, emotion, escalation, watch, t, common
        )

    def _draft_offline(
        self,
        request: DraftRequest,
        message: str,
        found: Any,
        emotion: int,
        escalation: bool,
        watch: _Stopwatch,
        t: float,
        common: dict[str, Any],
    ) -> DraftResult:
        composed: OfflineDraft = self.drafter.compose(
            message=message,
            language=common["language"],
            name=request.customer_name,
            hits=[] if found.abstain else found.hits,
            abstain=bool(found.abstain),
            emotion=emotion,
            escalation=escalation,
        )
        t = watch.lap("compose", t)
        attempts, verdict = 0, None
        while attempts < MAX_ATTEMPTS:
            attempts += 1
            verdict = self._check(
                composed.text,
                message,
                common["language"],
                composed.cited,
                {a.id: a.body for a in composed.articles},
            )
            t = watch.lap("guardrail", t)
            if verdict.verdict == "pass":
                break
            revised = composed.without(
                v.excerpt for v in verdict.violations if getattr(v, "severity", "block") == "block"
            )
            t = watch.lap("compose", t)
            if revised.text == composed.text:
                break  # nothing left to drop: blocked
            composed = revised
        assert verdict is not None
        common["abstained"] = common["abstained"] or composed.scenario == "abstain"
        by_id = {a.id: a for a in composed.articles}
        sources = [_source(by_id[i]) for i in composed.cited if i in by_id]
        phrases = self.drafter.phrases
        return self._finish(
            composed.text,
            verdict,
            attempts,
            watch,
            common,
            sources=sources,
            scenario=composed.scenario,
            prompt_version=phrases.label,
            prompt_sha256=phrases.sha256,
            removed=[],
            tokens={"prompt": 0, "completion": count_tokens(composed.text)},
        )

    def _draft_llm(
        self,
        request: DraftRequest,
        message: str,
        found: Any,
        vault: PiiVault,
        emotion: int,
        escalation: bool,
        watch: _Stopwatch,
        t: float,
        common: dict[str, Any],
    ) -> DraftResult:
        language = common["language"]
        hits = [] if found.abstain else list(found.hits)
        chunks = [SourceChunk(h.article_id, h.title, h.text, h.section or "") for h in hits]
        hello = greeting(self.drafter.phrases, language, vault.name_placeholder)
        assembled = assemble_draft(
            self.prompts,
            language=language,
            greeting=hello,
            channel=request.channel or "chat",
            situation=situation_text(
                self.prompts,
                common["flags"],
                emotion,
                escalation,
                bool(found.abstain),
                bool(vault.mapping),
            ),
            chunks=chunks,
            history=vault.history,
            message=vault.message,
            agent_note=vault.agent_note,
            allowed_domains=self.settings.allowed_domains,
            budget=self.settings.prompt_token_budget,
        )
        t = watch.lap("prompt", t)
        flags = common["flags"]
        if assembled.dropped_sources or assembled.dropped_history or assembled.truncated:
            flags.append(
                {
                    "kind": "prompt_trimmed",
                    "span": None,
                    "level": None,
                    "detail": f"token budget: dropped {assembled.dropped_sources} source(s),"
                    f" {assembled.dropped_history} history turn(s); shortened: "
                    f"{', '.join(assembled.truncated) or 'nothing'}",
                }
            )
        allowed = {h.article_id for h in hits}
        # one entry per prompt chunk (the guardrail reads the values only): chunk texts repeat
        # across drafts, so their parsed figures come from the guardrail's cache
        texts = {f"{c.article_id}:{i}": c.text for i, c in enumerate(assembled.chunks)}
        first_hit = {h.article_id: h for h in reversed(hits)}
        outcome = self._generate(
            assembled.messages, allowed, vault, message, language, texts, watch, t
        )
        names = ["system", "draft"] + (["redraft"] if outcome.attempts > 1 else [])
        return self._finish(
            outcome.text,
            outcome.verdict,
            outcome.attempts,
            watch,
            common,
            sources=[
                {"id": i, "title": first_hit[i].title, "language": first_hit[i].language}
                for i in outcome.cited
            ],
            scenario="abstain" if found.abstain else "llm",
            prompt_version=self.prompts.version(names),
            prompt_sha256=self.prompts.sha256(names),
            removed=outcome.removed,
            tokens={
                "prompt": assembled.prompt_tokens,
                "completion": outcome.completion_tokens,
                "budget": self.settings.prompt_token_budget,
                "dropped_sources": assembled.dropped_sources,
                "dropped_history": assembled.dropped_history,
            },
        )

    # ---- tone rewrite ---------------------------------------------------
    def rewrite(
        self,
        draft: str,
        tone: str,
        *,
        language: str | None = None,
        sources: list[str] | None = None,
    ) -> DraftResult:
        """``draft`` rewritten in ``tone`` (empathetic, concise or formal), guard-railed again."""
        if self.offline:
            raise CopilotError(
                "tone rewrite needs an LLM backend; the offline backend cannot "
                "rewrite (set COPILOT_LLM_BACKEND=openai and COPILOT_LLM_BASE_URL)"
            )
        if tone not in TONES:
            raise CopilotError(f"tone: {tone!r} is not allowed; use one of {', '.join(TONES)}")
        watch = _Stopwatch(self.clock)
        text = self._check_message(draft, "draft")
        lang = self._language(language, text)
        ids = list(dict.fromkeys(sources)) if sources is not None else find_citations(text)
        articles = [a for a in (self.retriever.article(i, lang) for i in ids) if a is not None]
        vault = PiiVault.build(self._pii_module(), DraftRequest(text), text)
        messages = rewrite_messages(
            self.prompts,
            language=lang,
            tone=tone,
            articles=articles,
            draft=vault.message,
            settings=self.settings,
        )
        t = watch.lap("prompt", watch.start)
        outcome = self._generate(
            messages(""),
            {a.id for a in articles},
            vault,
            text,
            lang,
            {a.id: a.body for a in articles},
            watch,
            t,
            rewrite=messages,
        )
        names = ["system", "rewrite"]
        common = {
            "language": lang,
            "flags": [],
            "kb_version": "",
            "abstained": False,
            "backend": self.backend.name,
            "model": self.backend.model,
        }
        return self._finish(
            outcome.text,
            outcome.verdict,
            outcome.attempts,
            watch,
            common,
            sources=[_source(a) for a in articles if a.id in outcome.cited],
            scenario=f"rewrite:{tone}",
            prompt_version=self.prompts.version(names),
            prompt_sha256=self.prompts.sha256(names),
            removed=outcome.removed,
            tokens={
                "prompt": sum(count_tokens(m.content) for m in messages("")),
                "completion": outcome.completion_tokens,
            },
        )

    # ---- shared steps ---------------------------------------------------
    def _generate(
        self,
        messages: list[Message],
        allowed: set[str],
        vault: PiiVault,
        customer_message: str,
        language: str,
        source_texts: dict[str, str],
        watch: _Stopwatch,
        t: float,
        rewrite: Callable[[str], list[Message]] | None = None,
    ) -> _Outcome:
        """Call the backend, repair citations, restore data, guard-rail; re-draft on reject."""
        out = _Outcome()
        convo = list(messages)
        while out.attempts < MAX_ATTEMPTS:
            out.attempts += 1
            completion = self.backend.complete(convo)
            out.completion_tokens += completion.completion_tokens or count_tokens(completion.text)
            t = watch.lap("backend", t)
            resolved = resolve_citations(completion.text.strip(), allowed)
            out.removed.extend(i for i in resolved.removed if i not in out.removed)
            out.cited = resolved.cited
            out.text = vault.restore(resolved.text, clean_name(vault.name, language))
            t = watch.lap("citations", t)
            if out.text:
                out.verdict = self._check(
                    out.text, customer_message, language, out.cited, source_texts
                )
            else:
                out.verdict = EmptyVerdict()
            t = watch.lap("guardrail", t)
            if out.verdict.verdict == "pass" or out.attempts >= MAX_ATTEMPTS:
                break
            feedback = vault.remask(violation_feedback(out.verdict.violations))
            if rewrite is not None:
                convo = rewrite(feedback)
            else:
                convo = [
                    *messages,
                    Message("assistant", vault.remask(out.text) or "(empty)"),
                    Message(
                        "user",
                        self.prompts["redraft"].render(
                            language_name=LANGUAGE_NAMES[language],
                            greeting=greeting(
                                self.drafter.phrases, language, vault.name_placeholder
                            ),
                            violations=feedback,
                        ),
                    ),
                ]
            t = watch.lap("prompt", t)
        return out

    def _check(
        self,
        text: str,
        customer_message: str,
        language: str,
        cited: Sequence[str],
        source_texts: dict[str, str],
    ) -> Any:
        return self.guardrail.check(
            text,
            customer_message=customer_message,
            language=language,
            sources=list(cited),
            source_texts=source_texts or None,
        )

    def _finish(
        self,
        text: str,
        verdict: Any,
        attempts: int,
        watch: _Stopwatch,
        common: dict[str, Any],
        *,
        sources: list[dict[str, str]],
        scenario: str,
        prompt_version: str,
        prompt_sha256: str,
        removed: list[str],
        tokens: dict[str, int],
    ) -> DraftResult:
        flags = list(common["flags"])
        flags += [
            {
                "kind": "citation_removed",
                "span": None,
                "level": None,
                "detail": f"[{i}] is not among the retrieved sources; removed",
            }
            for i in removed
        ]
        blocked = verdict.verdict != "pass"
        if blocked:
            rules = sorted(
                {v.rule for v in verdict.violations if getattr(v, "severity", "block") == "block"}
            )
            flags.append(
                {
                    "kind": "blocked",
                    "span": None,
                    "level": None,
                    "detail": f"still rejected after {attempts} attempt(s): " + ", ".join(rules),
                }
            )
        return DraftResult(
            draft=text,
            language=common["language"],
            sources=sources,
            verdict=verdict.verdict,
            violations=[v.to_dict() for v in verdict.violations],
            flags=flags,
            attempts=attempts,
            blocked=blocked,
            abstained=common["abstained"],
            backend=common["backend"],
            model=common["model"],
            prompt_version=prompt_version,
            prompt_sha256=prompt_sha256,
            kb_version=common["kb_version"],
            scenario=scenario,
            tokens=tokens,
            latency_ms=watch.total(),
            removed_citations=list(removed),
        )

    def _check_message(self, text: Any, name: str) -> str:
        if not isinstance(text, str) or not text.strip():
            raise CopilotError(f"{name}: must be non-empty text")
        if len(text) > self.settings.max_message_chars:
            raise CopilotError(
                f"{name}: {len(text)} characters is over the limit of "
                f"{self.settings.max_message_chars} (COPILOT_MAX_MESSAGE_CHARS)"
            )
        return text.strip()

    @staticmethod
    def _language(given: str | None, text: str) -> str:
        if given is None or given == "":
            return detect_language(text)
        if given not in LANGUAGES:
            raise CopilotError(
                f"language: {given!r} is not allowed; use one of {', '.join(LANGUAGES)}"
            )
        return given

    def _pii_module(self) -> Any:
        if self._pii is None:
            import copilot.text.pii

            self._pii = copilot.text.pii
        return self._pii


@dataclass
class _Outcome:
    text: str = ""
    verdict: Any = None
    attempts: int = 0
    completion_tokens: int = 0
    cited: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _source(article: Any) -> dict[str, str]:
    return {"id": article.id, "title": article.title, "language": article.language}
