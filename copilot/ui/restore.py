"""Nothing lost on a reload: the ticket (message, thread, draft, edits, checks) is saved in the
store as it changes, and the page's URL carries ``?draft=<id>&agent=<name>&lang=<ui language>``.

A new session (a reload, a shared link) reads those parameters once: the agent's name, their
interface language (the URL's, else the one saved in their settings) and signatures, and the
ticket of the draft. Every later run writes the ticket state when it changed and the agent's
settings when their name, language or a signature changed, and puts the parameters back in
the URL.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from copilot.draft.types import DraftRequest, DraftResult, SourceRef, Turn
from copilot.errors import CopilotError
from copilot.guard.types import Violation
from copilot.store import Store
from copilot.ui.i18n import UI_LANGUAGES
from copilot.ui.state import SIGNATURE_LANGUAGES, State, reported
from copilot.understand.signals import Flag

#: Session keys saved with the ticket (widget values and what the buttons produced).
TICKET_KEYS = (
    "customer_message",
    "customer_name",
    "channel",
    "language_choice",
    "agent_note",
    "thread",
    "draft_text",
    "tone",
    "feedback_note",
    "copied",
    "rating",
    "sent_distance",
    "escalation",
)
QUERY_DRAFT, QUERY_AGENT, QUERY_LANGUAGE = "draft", "agent", "lang"


# ---- stored form -> objects ----------------------------------------------------------------
def _span(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    return None


def violation_from_dict(d: Mapping[str, Any]) -> Violation:
    """A violation as :meth:`Violation.to_dict` wrote it."""
    return Violation(
        rule=str(d.get("rule", "")),
        severity=str(d.get("severity", "block")),
        span=_span(d.get("span")),
        excerpt=str(d.get("excerpt") or ""),
        message=str(d.get("message") or ""),
        fix=str(d.get("fix") or ""),
    )


def flag_from_dict(d: Mapping[str, Any]) -> Flag:
    """A flag as :meth:`Flag.to_dict` wrote it."""
    level = d.get("level")
    return Flag(
        kind=str(d.get("kind", "")),
        span=_span(d.get("span")),
        detail=str(d.get("detail") or ""),
        level=level if isinstance(level, int) else None,
    )


def result_from_dict(d: Mapping[str, Any]) -> DraftResult:
    """A :class:`DraftResult` from its stored form (``DraftResult.to_dict()``)."""
    language = str(d.get("language") or "en")
    titles = d.get("source_titles") or {}
    sources: list[SourceRef] = [
        {"id": str(i), "title": str(titles.get(i, i)), "language": language}
        for i in d.get("sources") or []
    ]
    return DraftResult(
        draft=str(d.get("draft") or ""),
        language=language,
        sources=sources,
        verdict=str(d.get("verdict") or "pass"),
        violations=[violation_from_dict(v) for v in d.get("violations") or []],
        flags=[flag_from_dict(f) for f in d.get("flags") or []],
        attempts=int(d.get("attempts") or 1),
        blocked=bool(d.get("blocked")),
        abstained=bool(d.get("abstained")),
        backend=str(d.get("backend") or ""),
        model=str(d.get("model") or ""),
        prompt_version=str(d.get("prompt_version") or ""),
        prompt_sha256=str(d.get("prompt_sha256") or ""),
        kb_version=str(d.get("kb_version") or ""),
        scenario=str(d.get("scenario") or ""),
        tokens=dict(d.get("tokens") or {}),
        latency_ms=dict(d["latency_ms"]) if isinstance(d.get("latency_ms"), dict) else {},
        removed_citations=list(d.get("removed_citations") or []),
        retrieval=[dict(h) for h in d.get("retrieval") or [] if isinstance(h, Mapping)],
        understanding=dict(d["understanding"])
        if isinstance(d.get("understanding"), Mapping)
        else None,
        variant=str(d["variant"]) if d.get("variant") else None,
    )


def request_from_dict(d: Mapping[str, Any]) -> DraftRequest:
    """A :class:`DraftRequest` from its stored form."""
    history = [
        Turn("agent" if h.get("role") == "agent" else "customer", str(h.get("text") or ""))
        for h in d.get("history") or []
        if isinstance(h, Mapping)
    ]
    return DraftRequest(
        customer_message=str(d.get("customer_message") or ""),
        language=d.get("language") or None,
        customer_name=d.get("customer_name") or None,
        channel=d.get("channel") or None,
        agent_note=d.get("agent_note") or None,
        history=history,
    )


# ---- the ticket --------------------------------------------------------------------------------
def ticket_snapshot(state: State) -> dict[str, Any]:
    """What is saved of the current ticket (JSON values only)."""
    snap: dict[str, Any] = {key: state.get(key) for key in TICKET_KEYS}
    check = state.get("recheck")
    snap["recheck"] = (
        None
        if not check
        else {
            "text": check["text"],
            "verdict": check["verdict"],
            "violations": [v.to_dict() for v in check["violations"]],
        }
    )
    return snap


def restore_ticket(store: Store, state: State, draft_id: str) -> None:
    """Load a stored draft and its last ticket state into the session; a clear
    :class:`CopilotError` when there is no such draft."""
    stored = store.get_draft(draft_id)
    if stored is None:
        raise CopilotError(f"no saved draft with id {draft_id!r}")
    result = result_from_dict(stored["result"])
    request = request_from_dict(stored["request"])
    state["result"], state["request"], state["draft_id"] = result, request, draft_id
    state["customer_message"] = request.customer_message
    state["customer_name"] = request.customer_name or ""
    state["agent_note"] = request.agent_note or ""
    state["thread"] = "\n".join(
        f"{'Agent' if turn.role == 'agent' else 'Customer'}: {turn.text}"
        for turn in request.history
    )
    state["draft_text"] = result.draft
    ticket = store.get_ticket_state(draft_id)
    saved: Mapping[str, Any] = ticket["state"] if ticket else {}
    for key in TICKET_KEYS:
        if key in saved and saved[key] is not None:
            state[key] = saved[key]
    check = saved.get("recheck")
    state["recheck"] = (
        None
        if not isinstance(check, Mapping)
        else {
            "text": str(check.get("text") or ""),
            "verdict": str(check.get("verdict") or ""),
            "violations": [violation_from_dict(v) for v in check.get("violations") or []],
        }
    )
    state["_saved_ticket"] = ticket_snapshot(state)


def _agent_settings(state: State, agent: str) -> tuple[str, Any, tuple[str, ...]]:
    """What is saved of the agent: name, interface language, signature per reply language."""
    return (
        agent,
        state.get("ui_language"),
        tuple(str(state.get(f"signature_{lang}") or "") for lang in SIGNATURE_LANGUAGES),
    )


def from_query(store: Store, state: State, query: Mapping[str, Any], doing: str) -> None:
    """Once per session: the agent, interface language and ticket named in the URL."""
    agent = str(query.get(QUERY_AGENT) or "").strip()
    if agent:
        state["agent_name"] = agent
        with reported(state, doing):
            saved = store.get_agent_settings(agent)
            if saved and saved.get("ui_language") in UI_LANGUAGES:
                state["ui_language"] = saved["ui_language"]
            signatures = (saved or {}).get("signatures") or {}
            for reply_language in SIGNATURE_LANGUAGES:
                state[f"signature_{reply_language}"] = str(signatures.get(reply_language) or "")
        state["_saved_agent"] = _agent_settings(state, agent)
    language = query.get(QUERY_LANGUAGE)
    if language in UI_LANGUAGES:
        state["ui_language"] = language
    draft_id = str(query.get(QUERY_DRAFT) or "").strip()
    if draft_id:
        with reported(state, doing):
            restore_ticket(store, state, draft_id)


def remember(
    store: Store, state: State, query: MutableMapping[str, Any], doing: str, *, record: bool
) -> None:
    """After a run: save what changed (ticket, agent settings) and update the URL."""
    agent = str(state.get("agent_name") or "").strip()
    language = state.get("ui_language")
    wanted = {QUERY_LANGUAGE: language, QUERY_AGENT: agent, QUERY_DRAFT: state.get("draft_id")}
    for key, value in wanted.items():
        if value:
            if query.get(key) != value:
                query[key] = value
        elif key in query:
            del query[key]
    with reported(state, doing):
        wanted_settings = _agent_settings(state, agent)
        if agent and state.get("_saved_agent") != wanted_settings:
            store.save_agent_settings(
                agent,
                display_name=agent,
                ui_language=language,
                signatures=dict(zip(SIGNATURE_LANGUAGES, wanted_settings[2], strict=True)),
            )
            state["_saved_agent"] = wanted_settings
        draft_id = state.get("draft_id")
        if record and draft_id and state.get("result") is not None:
            snap = ticket_snapshot(state)
            if snap != state.get("_saved_ticket"):
                store.save_ticket_state(draft_id, snap, agent=agent or None)
                state["_saved_ticket"] = snap
