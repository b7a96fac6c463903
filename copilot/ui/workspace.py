"""Streamlit building blocks for ``app.py``: services, session state, actions and panels.

``app.py`` lays the page out; this module holds what it calls. Actions
(draft, re-check, rewrite, feedback) never raise: expected failures
(:class:`CopilotError`) and unexpected ones are turned into a message that the
page shows with ``st.error``. Buttons placed below the draft use a callback that
only records the action; the work runs on the next script run *before* the
editable draft widget is created, so the action may replace its text.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from copilot.errors import CopilotError
from copilot.guard.types import Violation
from copilot.settings import Settings
from copilot.store import Store
from copilot.understand.signals import Flag

if TYPE_CHECKING:
    from copilot.draft.pipeline import Copilot
    from copilot.draft.types import DraftRequest, Turn

log = logging.getLogger(__name__)

State = MutableMapping[Any, Any]  # st.session_state, or a dict in tests

LANGUAGE_NAMES = {"en": "English", "ja": "Japanese · 日本語", "zh": "Chinese · 中文"}
LANGUAGE_CHOICES = ("auto", "en", "ja", "zh")
CHANNELS = ("chat", "email", "ticket", "social")
TONES = ("empathetic", "concise", "formal")
FLAG_ICONS = {
    "escalation": ":material/priority_high:",
    "emotion": ":material/sentiment_dissatisfied:",
    "prompt_injection": ":material/shield:",
    "pii": ":material/lock:",
    "citation_removed": ":material/content_cut:",
    "blocked": ":material/block:",
    "prompt_trimmed": ":material/compress:",
}
FLAG_LABELS = {
    "pii": "Personal data masked",
    "prompt_injection": "Prompt injection",
    "citation_removed": "Citation removed",
    "prompt_trimmed": "Prompt trimmed",
}
ERROR_ICON = ":material/error:"
_ANCHOR = re.compile(r"\s*\{#[a-z0-9][a-z0-9-]*\}")
_HEADING = re.compile(r"^(#{1,6})\s+", re.MULTILINE)
_TITLE = re.compile(r"^\s*#\s[^\n]*\n?")  # the H1: already shown as the panel's label

# Session keys and their first values; widget keys are set here, never via ``value=``.
DEFAULTS: dict[str, Any] = {
    "customer_message": "",
    "customer_name": "",
    "channel": CHANNELS[0],
    "language_choice": "auto",
    "agent_note": "",
    "thread": "",
    "agent_name": "",
    "draft_text": "",
    "tone": TONES[0],
    "feedback_note": "",
    "kb_query": "",
    "kb_language": "auto",
    "result": None,  # DraftResult of the current draft
    "request": None,  # DraftRequest it answered
    "draft_id": None,  # row id in the store
    "recheck": None,  # {"text", "verdict", "violations"} for the edited draft
    "pending": None,  # action recorded by a button callback
    "error": None,  # message for st.error, shown once
    "kb_error": None,  # the same for the knowledge-base tab
    "notice": None,  # (kind, message) for st.success / st.info / st.warning, shown once
    "copied": None,  # final text stored by "Copy final reply"
    "kb_results": None,  # (query, hits) of the last KB search
}

CSS = """
<style>
.block-container {padding-top: 2.2rem; padding-bottom: 2rem; max-width: 1400px;}
.sc-header {display: flex; align-items: baseline; gap: .75rem; margin-bottom: .2rem;}
.sc-header h1 {font-size: 1.65rem; margin: 0; padding: 0;}
.sc-sub {color: #5f6b7a; font-size: .92rem; margin-bottom: .8rem;}
.sc-badges {display: flex; flex-wrap: wrap; gap: .4rem; margin: .1rem 0 .6rem 0;}
.sc-badge {display: inline-block; padding: .14rem .65rem; border-radius: 999px;
  font-size: .8rem; font-weight: 600; border: 1px solid transparent; white-space: nowrap;}
.sc-pass {background: #e7f5ec; color: #12703a; border-color: #b7e1c6;}
.sc-block {background: #fdecea; color: #a4161a; border-color: #f5c2bd;}
.sc-neutral {background: #eef2f7; color: #334155; border-color: #d8dee8;}
.sc-warn {background: #fff4e0; color: #8a4b00; border-color: #f4d6a0;}
.sc-muted {color: #6b7280; font-size: .82rem;}
</style>
"""


# ---- services ----------------------------------------------------------------
@dataclass
class Services:
    """Everything heavy the page uses, built once per settings (see ``app.py``)."""

    settings: Settings
    copilot: Copilot
    store: Store

    @property
    def retriever(self) -> Any:
        """The copilot's retriever (shared: one index in memory)."""
        return self.copilot.retriever

    @property
    def guardrail(self) -> Any:
        """The copilot's guardrail."""
        return self.copilot.guardrail


def build_services(settings: Settings) -> Services:
    """Build the copilot and the store; raises :class:`CopilotError` with a clear message."""
    from copilot.draft.factory import build_copilot
    from copilot.runtime import configure

    configure()
    return Services(settings, build_copilot(settings), Store.from_url(settings.database))


def settings_key(settings: Settings) -> str:
    """A cache key that changes when any setting does (the API key only by its hash)."""
    return str(hash(settings))


# ---- session state -------------------------------------------------------------
def init_state(state: State) -> None:
    """Set every key of :data:`DEFAULTS` once per session (the one init guard)."""
    if state.get("_initialised"):
        return
    for key, value in DEFAULTS.items():
        if key not in state:
            state[key] = value
    state["_initialised"] = True


def request_action(state: State, action: str) -> None:
    """Button callback: remember ``action`` for the next run (see the module docstring)."""
    state["pending"] = action


@contextmanager
def reported(state: State, doing: str, key: str = "error") -> Iterator[None]:
    """Turn any failure inside the block into ``state[key]`` instead of a traceback."""
    try:
        yield
    except CopilotError as exc:
        state[key] = f"Could not {doing}: {exc}"
    except Exception as exc:  # the page must never show a traceback
        log.exception("unexpected error while trying to %s", doing)
        state[key] = f"Could not {doing}: unexpected {type(exc).__name__}: {exc}"


# ---- input -------------------------------------------------------------------
def parse_thread(text: str) -> list[Turn]:
    """Earlier messages pasted as lines starting ``Customer:`` or ``Agent:``.

    Lines without a prefix continue the previous turn; text before the first
    prefix is taken as the customer's. Blank input gives no turns.
    """
    from copilot.draft.types import Turn

    turns: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = re.match(r"^\s*(customer|client|user|agent|support|us|we)\s*[:：]\s*(.*)$", line, re.I)
        if m:
            role = "agent" if m.group(1).lower() in ("agent", "support", "us", "we") else "customer"
            turns.append((role, [m.group(2)]))
        elif line.strip():
            if not turns:
                turns.append(("customer", []))
            turns[-1][1].append(line.strip())
    out = []
    for role, lines in turns:
        body = "\n".join(lines).strip()
        if body:
            out.append(Turn("agent" if role == "agent" else "customer", body))
    return out


def build_request(state: State) -> DraftRequest:
    """The :class:`DraftRequest` from the form's widgets."""
    from copilot.draft.types import DraftRequest

    language = state["language_choice"]
    return DraftRequest(
        customer_message=str(state["customer_message"]),
        language=None if language == "auto" else str(language),
        customer_name=str(state["customer_name"]).strip() or None,
        channel=str(state["channel"]) or None,
        agent_note=str(state["agent_note"]).strip() or None,
        history=parse_thread(str(state["thread"])),
    )


def request_dict(request: DraftRequest) -> dict[str, Any]:
    """The request as stored with the draft."""
    return {
        "customer_message": request.customer_message,
        "language": request.language,
        "customer_name": request.customer_name,
        "channel": request.channel,
        "agent_note": request.agent_note,
        "history": [{"role": t.role, "text": t.text} for t in request.history],
    }


# ---- actions -------------------------------------------------------------------
def run_draft(services: Services, state: State) -> None:
    """Draft a reply for the form's message, store it, and load it into the editor."""
    for key in ("result", "request", "draft_id", "recheck", "copied", "error", "notice"):
        state[key] = DEFAULTS[key]
    if not str(state["customer_message"]).strip():
        state["error"] = "Paste the customer's message first: the message is empty."
        return
    with reported(state, "draft a reply"):
        request = build_request(state)
        with st.spinner("Drafting: retrieving articles, composing, checking the policy…"):
            result = services.copilot.draft(request)
        state["result"], state["request"] = result, request
        state["draft_text"] = result.draft
        state["feedback_note"] = ""
    if state["result"] is not None:
        with reported(state, "save the draft to the database"):
            state["draft_id"] = services.store.save_draft(
                state["result"].to_dict(), request_dict(state["request"])
            )


def run_pending(services: Services, state: State) -> None:
    """Run the action a button below the draft asked for, if any."""
    action, state["pending"] = state["pending"], None
    if action is None or state["result"] is None:
        return
    state["error"] = state["notice"] = None
    handlers: dict[str, Callable[[Services, State], None]] = {
        "recheck": _recheck,
        "rewrite": _rewrite,
        "up": lambda s, st_: _feedback(s, st_, "up"),
        "down": lambda s, st_: _feedback(s, st_, "down"),
        "copy": _copy,
    }
    handler = handlers.get(str(action))
    if handler is not None:
        handler(services, state)


def _recheck(services: Services, state: State) -> None:
    result, text = state["result"], str(state["draft_text"])
    with reported(state, "re-check the draft"):
        if not text.strip():
            raise CopilotError("the draft is empty")
        ids = [s["id"] for s in result.sources]
        # Same evidence as the draft-time check: the cited articles in the reply language.
        articles = (services.retriever.article(i, result.language) for i in ids)
        verdict = services.guardrail.check(
            text,
            customer_message=state["request"].customer_message,
            language=result.language,
            sources=ids,
            source_texts={a.id: a.body for a in articles if a is not None} or None,
        )
        state["recheck"] = {
            "text": text,
            "verdict": verdict.verdict,
            "violations": list(verdict.violations),
        }


def _rewrite(services: Services, state: State) -> None:
    result, tone = state["result"], str(state["tone"])
    with reported(state, f"rewrite the draft ({tone} tone)"):
        with st.spinner(f"Rewriting the draft ({tone} tone)…"):
            new = services.copilot.rewrite(
                str(state["draft_text"]),
                tone,
                language=result.language,
                sources=[s["id"] for s in result.sources],
            )
        state["draft_text"] = new.draft
        state["recheck"] = {
            "text": new.draft,
            "verdict": new.verdict,
            "violations": list(new.violations),
        }
        state["notice"] = ("success", f"Rewritten: {tone} tone ({new.backend}/{new.model}).")


def _feedback(services: Services, state: State, rating: str) -> None:
    if state["draft_id"] is None:
        state["error"] = "This draft was not saved, so feedback cannot be stored."
        return
    with reported(state, "store the feedback"):
        services.store.save_feedback(
            state["draft_id"],
            rating,
            final_text=str(state["draft_text"]),
            note=str(state["feedback_note"]).strip() or None,
            agent=str(state["agent_name"]).strip() or None,
        )
        state["notice"] = (
            "success",
            "Thanks: feedback saved."
            if rating == "up"
            else "Thanks: feedback saved; the draft is marked as needing work.",
        )


def _copy(services: Services, state: State) -> None:
    if state["draft_id"] is None:
        state["error"] = "This draft was not saved, so the final reply cannot be stored."
        return
    text = str(state["draft_text"])
    with reported(state, "store the final reply"):
        services.store.save_feedback(
            state["draft_id"],
            "up",
            final_text=text,
            note=str(state["feedback_note"]).strip() or "copied as final reply",
            agent=str(state["agent_name"]).strip() or None,
        )
        state["copied"] = text


# ---- rendering -------------------------------------------------------------------
def badge(text: str, kind: str = "neutral") -> str:
    """HTML for one pill; ``text`` is escaped."""
    return f'<span class="sc-badge sc-{kind}">{html.escape(text)}</span>'


def show_messages(state: State) -> None:
    """Show (and clear) the pending error and notice."""
    if state["error"]:
        st.error(state["error"], icon=ERROR_ICON)
        state["error"] = None
    if state["notice"]:
        kind, text = state["notice"]
        {"success": st.success, "info": st.info, "warning": st.warning}[kind](text)
        state["notice"] = None


def render_status(result: Any) -> None:
    """Verdict, language and scenario as badges."""
    pills = [
        badge("✓ Guardrail: pass", "pass")
        if not result.blocked
        else badge("✕ Blocked by guardrail", "block"),
        badge(f"Language: {LANGUAGE_NAMES.get(result.language, result.language)}"),
        badge(f"Attempts: {result.attempts}"),
    ]
    if result.abstained:
        pills.append(badge("No matching article", "warn"))
    pills += [badge(chip, "warn") for chip in flag_chips(result.flags)]
    st.markdown(f'<div class="sc-badges">{"".join(pills)}</div>', unsafe_allow_html=True)


def flag_chips(flags: Sequence[Flag]) -> list[str]:
    """Short labels for the flags an agent must notice before sending (no repeats)."""
    chips: list[str] = []
    for f in flags:
        kind, level = f.kind, f.level
        if kind == "emotion" and isinstance(level, int) and level >= 1:
            chips.append(f"Emotion {level}/3")
        elif kind == "escalation":
            chips.append("Escalation")
        elif kind == "prompt_injection":
            chips.append("Injection attempt")
        elif kind == "pii":
            chips.append("Personal data masked")
    return list(dict.fromkeys(chips))


def render_violations(violations: Sequence[Violation], title: str, warn: bool = False) -> None:
    """Each violation's rule, excerpt and fix hint, in one error (or warning) box."""
    if not violations:
        return
    lines = [f"**{title}**"]
    for v in violations:
        line = f"- **{v.rule}** ({v.severity}): {v.message}"
        if v.excerpt:
            line += f"\n  - Excerpt: “{v.excerpt}”"
        if v.fix:
            line += f"\n  - Fix: {v.fix}"
        lines.append(line)
    (st.warning if warn else st.error)("\n".join(lines))


def render_recheck(state: State) -> None:
    """The verdict of the last re-check, if it still matches the editor's text."""
    check = state["recheck"]
    if not check:
        return
    if check["text"] != state["draft_text"]:
        st.caption("The draft changed since the last check: re-check it before sending.")
    elif check["verdict"] == "pass":
        st.success("Re-check: the edited draft passes the guardrail.", icon=":material/verified:")
        render_violations(check["violations"], "Policy warnings (not blocking)", warn=True)
    else:
        render_violations(check["violations"], "Re-check: the edited draft is blocked")


def render_flags(flags: Sequence[Flag]) -> None:
    """Input and output signals: escalation, emotion, injection, masked personal data…"""
    if not flags:
        st.caption("No flags: calm message, no escalation cue, no injection, no personal data.")
        return
    for f in flags:
        kind, level = f.kind, f.level
        label = FLAG_LABELS.get(kind, kind.replace("_", " ").capitalize())
        if level not in (None, ""):
            label += f" · level {level}"
        detail = f.detail or ""
        line = f"{FLAG_ICONS.get(kind, ':material/flag:')} **{label}**" + (
            f": {detail}" if detail else ""
        )
        warn = kind in ("escalation", "prompt_injection", "blocked") or (
            kind == "emotion" and isinstance(level, int) and level >= 2
        )
        (st.warning if warn else st.info)(line)


def article_markdown(body: str) -> str:
    """An article body for a panel: title and ``{#anchors}`` removed, headings made smaller."""
    text = _TITLE.sub("", _ANCHOR.sub("", body), count=1)
    return _HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + 3) + " ", text).strip()


def render_sources(services: Services, result: Any) -> None:
    """Cited articles with their titles; each expands to the article text."""
    if not result.sources:
        st.caption("No article was cited: this reply is not grounded in the knowledge base.")
        return
    for i, s in enumerate(result.sources, 1):
        with st.expander(f"{i}. {s['title']}  ·  [{s['id']}]  ·  {s.get('language', '')}"):
            article = services.retriever.article(s["id"], s.get("language") or result.language)
            if article is None:
                st.caption("Article not found in the current knowledge base.")
            else:
                st.markdown(article_markdown(article.body))


def render_provenance(result: Any) -> None:
    """Backend, model, prompt and KB versions, tokens and latency per stage."""
    rows = [
        ("Backend", result.backend),
        ("Model", result.model),
        ("Prompt version", result.prompt_version),
        ("Prompt sha256", (result.prompt_sha256 or "")[:16]),
        ("KB version", result.kb_version),
        ("Scenario", getattr(result, "scenario", "")),
        ("Tokens", ", ".join(f"{k} {v}" for k, v in (result.tokens or {}).items())),
    ]
    latency = result.latency_ms
    if isinstance(latency, dict):
        rows += [(f"Latency · {stage}", f"{ms:.1f} ms") for stage, ms in latency.items()]
    elif isinstance(latency, int | float):
        rows.append(("Latency", f"{latency:.1f} ms"))
    table = "| | |\n|---|---|\n" + "\n".join(
        f"| {name} | `{value}` |" for name, value in rows if value not in (None, "")
    )
    st.markdown(table)


def render_kb_hits(services: Services, hits: Sequence[Any]) -> None:
    """KB search results, each expandable to its whole article."""
    for hit in hits:
        where = str(hit.heading_path or hit.section or "")
        title = f"{hit.title}  ·  [{hit.article_id}]  ·  {hit.language}  ·  match {hit.score:.0%}"
        with st.expander(title):
            if where:
                st.caption(where)
            st.markdown(f"> {hit.snippet}" if hit.snippet else "")
            article = services.retriever.article(hit.article_id, hit.language)
            if article is not None:
                st.divider()
                st.markdown(article_markdown(article.body))


def render_activity(store: Store) -> None:
    """Totals and the latest drafts from the store."""
    try:
        stats, recent = store.stats(), store.recent(25)
    except CopilotError as exc:
        st.error(f"Could not read the database: {exc}", icon=ERROR_ICON)
        return
    cols = st.columns(4)
    cols[0].metric("Drafts", stats["drafts"])
    cols[1].metric("Blocked", stats["blocked"])
    cols[2].metric("Helpful / needs work", f"{stats['up']} / {stats['down']}")
    rate = stats["approval_rate"]
    cols[3].metric("Approval", "—" if rate is None else f"{rate:.0%}")
    if not recent:
        st.caption("No drafts yet.")
        return
    st.dataframe(
        [
            {
                "When (UTC)": (r["created_at"] or "")[:19].replace("T", " "),
                "Lang": r["language"],
                "Verdict": "blocked" if r["blocked"] else r["verdict"],
                "Rating": r["rating"] or "",
                "Edited": "yes" if r["edited"] else "",
                "Customer message": (r["customer_message"] or "")[:80],
            }
            for r in recent
        ],
        hide_index=True,
        width="stretch",
    )
