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
:func:`copilot.draft.factory.build_copilot`. One draft's state travels in a :class:`_Run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from copilot.draft.assembly import (
    LANGUAGE_NAMES,
    SourceChunk,
    assemble_draft,
    rewrite_messages,
    situation_text,
    understanding_text,
    violation_feedback,
)
from copilot.draft.citations import find_citations, resolve_citations
from copilot.draft.masking import PiiVault
from copilot.draft.offline.compose import OfflineDraft, OfflineDrafter
from copilot.draft.offline.phrases import clean_name, greeting
from copilot.draft.offline.routing import route_message
from copilot.draft.prompts import PromptSet
from copilot.draft.query import retrieval_query
from copilot.draft.types import DraftRequest, DraftResult, SourceRef
from copilot.errors import CopilotError
from copilot.guard.types import Guardrail, Verdict, empty_draft_verdict
from copilot.kb.articles import Article
from copilot.llm.base import Backend, Message
from copilot.llm.deadline import deadline as llm_deadline
from copilot.retrieval.types import Retriever, SearchResult
from copilot.settings import Settings
from copilot.text.chinese import is_traditional, to_simplified, to_traditional
from copilot.text.language import LANGUAGES, detect_language
from copilot.tokens import count_tokens
from copilot.understand.compromise import compromise_kind
from copilot.understand.facts import Facts, extract_facts
from copilot.understand.followup import open_case_text
from copilot.understand.model import MessageModel, Understanding
from copilot.understand.signals import Flag

TONES = ("empathetic", "concise", "formal")
MAX_ATTEMPTS = 3  # the first draft plus at most 2 re-drafts


class Stopwatch:
    """Adds up milliseconds per stage with the injected clock; each lap ends the previous one."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.start = clock()
        self._last = self.start
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        """Charge the time since the last lap (or the start) to ``stage``."""
        now = self.clock()
        self.ms[stage] = round(self.ms.get(stage, 0.0) + (now - self._last) * 1000, 3)
        self._last = now

    def total(self) -> dict[str, float]:
        """Milliseconds per stage plus ``total``."""
        return {**self.ms, "total": round((self.clock() - self.start) * 1000, 3)}


RETRIEVAL_KEPT = 3  # retrieval hits kept with a draft (for the Insights page)


@dataclass
class _Run:
    """One draft (or rewrite) on its way through the pipeline: what each stage found."""

    watch: Stopwatch
    language: str
    message: str
    vault: PiiVault
    flags: list[Flag] = field(default_factory=list)
    found: SearchResult | None = None
    kb_version: str = ""
    abstained: bool = False
    understood: Understanding | None = None
    traditional: bool = False  # the customer writes Traditional Chinese: so does the draft
    facts: Facts = field(default_factory=Facts)  # what the customer gave (ids, network, ...)

    @property
    def emotion(self) -> int:
        """The emotion level of the customer's message (0-3)."""
        return max((f.level or 0 for f in self.flags if f.kind == "emotion"), default=0)

    @property
    def escalation(self) -> bool:
        """True when the message carries an escalation cue."""
        return any(f.kind == "escalation" for f in self.flags)


@dataclass
class _Outcome:
    """What the generate-check-redraft loop produced."""

    text: str = ""
    verdict: Verdict = field(default_factory=empty_draft_verdict)
    attempts: int = 0
    completion_tokens: int = 0
    cited: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Provenance:
    """Which prompts (or phrases) made a draft, how it was chosen, its token counts."""

    scenario: str
    prompt_version: str
    prompt_sha256: str
    tokens: dict[str, int]


class Copilot:
    """Drafts and rewrites replies; every collaborator is injected (see ``build_copilot``)."""

    def __init__(
        self,
        *,
        retriever: Retriever,
        backend: Backend,
        guardrail: Guardrail,
        prompts: PromptSet,
        drafter: OfflineDrafter,
        settings: Settings,
        clock: Callable[[], float] = time.perf_counter,
        understanding: MessageModel | None = None,
    ) -> None:
        self.retriever = retriever
        self.backend = backend
        self.guardrail = guardrail
        self.prompts = prompts
        self.drafter = drafter
        self.settings = settings
        self.clock = clock
        self.understanding = understanding

    @property
    def offline(self) -> bool:
        """True when drafts come from KB templates rather than a language model."""
        return self.backend.name == "offline"

    # ---- drafting -------------------------------------------------------
    def draft(self, request: DraftRequest) -> DraftResult:
        """A guard-railed, cited draft for ``request``; see the module docstring."""
        watch = Stopwatch(self.clock)
        message = self._check_message(request.customer_message, "customer_message")
        language = self._language(request.language, message)
        watch.lap("language")
        flags = list(self.guardrail.analyze_message(message, language))
        watch.lap("input_checks")
        understood = None
        if self.understanding is not None:
            understood = self.understanding.understand(
                message, language, request.history, request.agent_note
            )
            watch.lap("understanding")
        facts = extract_facts(message, request.history)
        watch.lap("facts")
        vault = PiiVault.build(request, message)
        watch.lap("masking")
        traditional = language == "zh" and is_traditional(message)
        query = retrieval_query(vault)
        found = self.retriever.search(
            to_simplified(query) if traditional else query,
            k=self.settings.retrieval_k,
            language=language,
        )
        watch.lap("retrieval")
        run = _Run(
            watch,
            language,
            message,
            vault,
            flags,
            found,
            kb_version=str(found.kb_version or ""),
            abstained=bool(found.abstain),
            understood=understood,
            traditional=traditional,
            facts=facts,
        )
        if self.offline:
            return self._draft_offline(request, run, found)
        return self._draft_llm(request, run, found)

    def _draft_offline(self, request: DraftRequest, run: _Run, found: SearchResult) -> DraftResult:
        composed: OfflineDraft = self.drafter.compose(
            message=run.message,
            language=run.language,
            name=request.customer_name,
            hits=() if found.abstain else found.hits,
            abstain=bool(found.abstain),
            emotion=run.emotion,
            escalation=run.escalation,
            route=route_message(run.understood, run.message),
            facts=run.facts,
            open_case=open_case_text(run.message, request.history),
            injected=any(f.kind == "prompt_injection" for f in run.flags),
        )
        if run.traditional:
            composed = composed.converted(to_traditional)
        run.watch.lap("compose")
        attempts = 0
        verdict = empty_draft_verdict()
        while attempts < MAX_ATTEMPTS:
            attempts += 1
            verdict = self._check(
                composed.text,
                run,
                composed.cited,
                {a.id: a.body for a in composed.articles},
            )
            run.watch.lap("guardrail")
            if verdict.passed:
                break
            revised = composed.without(v.excerpt for v in verdict.violations if v.blocking)
            run.watch.lap("compose")
            if revised.text == composed.text:
                break  # nothing left to drop: blocked
            composed = revised
        if run.understood is not None:  # the learned route may answer where retrieval abstained
            run.abstained = composed.scenario in ("abstain", "vague")
        else:
            run.abstained = run.abstained or composed.scenario == "abstain"
        by_id = {a.id: a for a in composed.articles}
        phrases = self.drafter.phrases
        return self._finish(
            run,
            composed.text,
            verdict,
            attempts,
            sources=[_source(by_id[i]) for i in composed.cited if i in by_id],
            removed=[],
            provenance=_Provenance(
                composed.scenario,
                phrases.label,
                phrases.sha256,
                {"prompt": 0, "completion": count_tokens(composed.text)},
            ),
        )

    def _draft_llm(self, request: DraftRequest, run: _Run, found: SearchResult) -> DraftResult:
        language, vault = run.language, run.vault
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
                run.flags,
                run.emotion,
                run.escalation,
                bool(found.abstain),
                any(key != vault.name_placeholder for key in vault.mapping),
            ),
            chunks=chunks,
            history=vault.history,
            message=vault.message,
            agent_note=vault.agent_note,
            allowed_domains=self.settings.allowed_domains,
            budget=self.settings.prompt_token_budget,
            understanding=understanding_text(
                self.prompts,
                topics=run.understood.topics if run.understood is not None else (),
                flags=[f for f, _ in run.understood.flags] if run.understood is not None else (),
                facts=run.facts.to_dict(),
                compromised=compromise_kind(run.message) is not None,
                mask=vault.remask,
            ),
        )
        run.watch.lap("prompt")
        if assembled.dropped_sources or assembled.dropped_history or assembled.truncated:
            run.flags.append(
                Flag(
                    "prompt_trimmed",
                    None,
                    f"token budget: dropped {assembled.dropped_sources} source(s),"
                    f" {assembled.dropped_history} history turn(s); shortened: "
                    f"{', '.join(assembled.truncated) or 'nothing'}",
                )
            )
        allowed = {h.article_id for h in hits}
        # one entry per prompt chunk (the guardrail reads the values only): chunk texts repeat
        # across drafts, so their parsed figures come from the guardrail's cache
        texts = {f"{c.article_id}:{i}": c.text for i, c in enumerate(assembled.chunks)}
        first_hit = {h.article_id: h for h in reversed(hits)}
        outcome = self._generate(run, assembled.messages, allowed, texts)
        names = ["system", "draft"] + (["redraft"] if outcome.attempts > 1 else [])
        return self._finish(
            run,
            outcome.text,
            outcome.verdict,
            outcome.attempts,
            sources=[
                {"id": i, "title": first_hit[i].title, "language": first_hit[i].language}
                for i in outcome.cited
            ],
            removed=outcome.removed,
            provenance=_Provenance(
                "abstain" if found.abstain else "llm",
                self.prompts.version(names),
                self.prompts.sha256(names),
                {
                    "prompt": assembled.prompt_tokens,
                    "completion": outcome.completion_tokens,
                    "budget": self.settings.prompt_token_budget,
                    "dropped_sources": assembled.dropped_sources,
                    "dropped_history": assembled.dropped_history,
                },
            ),
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
        watch = Stopwatch(self.clock)
        text = self._check_message(draft, "draft")
        lang = self._language(language, text)
        ids = list(dict.fromkeys(sources)) if sources is not None else find_citations(text)
        articles = [a for a in (self.retriever.article(i, lang) for i in ids) if a is not None]
        vault = PiiVault.build(DraftRequest(text), text)
        run = _Run(watch, lang, text, vault)
        messages = rewrite_messages(
            self.prompts,
            language=lang,
            tone=tone,
            articles=articles,
            draft=vault.message,
            settings=self.settings,
        )
        watch.lap("prompt")
        outcome = self._generate(
            run,
            messages(""),
            {a.id for a in articles},
            {a.id: a.body for a in articles},
            rewrite=messages,
        )
        names = ["system", "rewrite"]
        return self._finish(
            run,
            outcome.text,
            outcome.verdict,
            outcome.attempts,
            sources=[_source(a) for a in articles if a.id in outcome.cited],
            removed=outcome.removed,
            provenance=_Provenance(
                f"rewrite:{tone}",
                self.prompts.version(names),
                self.prompts.sha256(names),
                {
                    "prompt": sum(count_tokens(m.content) for m in messages("")),
                    "completion": outcome.completion_tokens,
                },
            ),
        )

    # ---- shared steps ---------------------------------------------------
    def _generate(
        self,
        run: _Run,
        messages: list[Message],
        allowed: set[str],
        source_texts: dict[str, str],
        rewrite: Callable[[str], list[Message]] | None = None,
    ) -> _Outcome:
        """Call the backend, repair citations, restore data, guard-rail; re-draft on reject.

        Every model call in here (drafts, re-drafts, the LLM judge) shares one deadline
        (``COPILOT_LLM_DEADLINE_S``), however many retries each needs.
        """
        with llm_deadline(self.settings.llm_deadline_s):
            return self._generate_within_deadline(run, messages, allowed, source_texts, rewrite)

    def _generate_within_deadline(
        self,
        run: _Run,
        messages: list[Message],
        allowed: set[str],
        source_texts: dict[str, str],
        rewrite: Callable[[str], list[Message]] | None,
    ) -> _Outcome:
        language, vault, watch = run.language, run.vault, run.watch
        out = _Outcome()
        convo = list(messages)
        while out.attempts < MAX_ATTEMPTS:
            out.attempts += 1
            completion = self.backend.complete(convo)
            out.completion_tokens += completion.completion_tokens or count_tokens(completion.text)
            watch.lap("backend")
            resolved = resolve_citations(completion.text.strip(), allowed)
            out.removed.extend(i for i in resolved.removed if i not in out.removed)
            out.cited = resolved.cited
            out.text = vault.restore(resolved.text, clean_name(vault.name, language))
            watch.lap("citations")
            if out.text:
                out.verdict = self._check(out.text, run, out.cited, source_texts)
            else:
                out.verdict = empty_draft_verdict()
            watch.lap("guardrail")
            if out.verdict.passed or out.attempts >= MAX_ATTEMPTS:
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
            watch.lap("prompt")
        return out

    def _check(
        self, text: str, run: _Run, cited: Sequence[str], source_texts: dict[str, str]
    ) -> Verdict:
        return self.guardrail.check(
            text,
            customer_message=run.message,
            language=run.language,
            sources=list(cited),
            source_texts=source_texts or None,
        )

    def _finish(
        self,
        run: _Run,
        text: str,
        verdict: Verdict,
        attempts: int,
        *,
        sources: list[SourceRef],
        removed: list[str],
        provenance: _Provenance,
    ) -> DraftResult:
        flags = list(run.flags)
        flags += [
            Flag("citation_removed", None, f"[{i}] is not among the retrieved sources; removed")
            for i in removed
        ]
        blocked = not verdict.passed
        if blocked:
            rules = sorted({v.rule for v in verdict.violations if v.blocking})
            flags.append(
                Flag(
                    "blocked",
                    None,
                    f"still rejected after {attempts} attempt(s): " + ", ".join(rules),
                )
            )
        return DraftResult(
            draft=text,
            language=run.language,
            sources=sources,
            verdict=verdict.verdict,
            violations=list(verdict.violations),
            flags=flags,
            attempts=attempts,
            blocked=blocked,
            abstained=run.abstained,
            backend=self.backend.name,
            model=self.backend.model,
            prompt_version=provenance.prompt_version,
            prompt_sha256=provenance.prompt_sha256,
            kb_version=run.kb_version,
            scenario=provenance.scenario,
            tokens=provenance.tokens,
            latency_ms=run.watch.total(),
            removed_citations=list(removed),
            understanding=run.understood.to_dict() if run.understood is not None else None,
            variant="zh-Hant" if run.traditional else None,
            facts=run.facts.to_dict(),
            retrieval=[
                {
                    "id": h.article_id,
                    "score": round(float(h.score), 4),
                    "language": h.language,
                    "snippet": h.snippet,  # the passage used (the risk strip shows it)
                }
                for h in (run.found.hits[:RETRIEVAL_KEPT] if run.found is not None else [])
            ],
        )

    def _check_message(self, text: object, name: str) -> str:
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


def _source(article: Article) -> SourceRef:
    return {"id": article.id, "title": article.title, "language": article.language}
