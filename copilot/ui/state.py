"""Session state of the agent workspace: its keys and defaults, the one init guard, the request built from the form, and the action a button recorded."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from copilot.errors import CopilotError
from copilot.secrets import redact
from copilot.ui.i18n import UI_LANGUAGES, text

if TYPE_CHECKING:
    from copilot.draft.types import DraftRequest, Turn

log = logging.getLogger(__name__)

State = MutableMapping[Any, Any]  # st.session_state, or a dict in tests

LANGUAGE_CHOICES = ("auto", "en", "ja", "zh")
CHANNELS = ("chat", "email", "ticket", "social")
TONES = ("empathetic", "concise", "formal")
PAGES = ("workspace", "qa", "insights", "knowledge")
SIGNATURE_LANGUAGES = ("en", "ja", "zh")

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
    "override_reason": "",  # why a text the guardrail blocks is sent anyway
    "signature_en": "",  # the agent's signature per reply language (agent settings)
    "signature_ja": "",
    "signature_zh": "",
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
    "rating": None,  # the agent's current rating of the draft (up, down)
    "sent_distance": None,  # edit distance of the last sent text from the draft
    "escalation": None,  # the internal hand-over note of the last escalation
    "focus_draft": False,  # move the keyboard focus to the draft editor on the next render
    "ui_language": None,  # interface language (en, ja, zh); set by init_state
    "page": PAGES[0],
}


# ---- session state -------------------------------------------------------------
def init_state(state: State, ui_language: str = "en") -> None:
    """Set every key of :data:`DEFAULTS` once per session (the one init guard); the interface
    language starts as ``ui_language`` (``COPILOT_UI_LANGUAGE``)."""
    if state.get("_initialised"):
        return
    for key, value in DEFAULTS.items():
        if key not in state:
            state[key] = value
    if state.get("ui_language") not in UI_LANGUAGES:
        state["ui_language"] = ui_language if ui_language in UI_LANGUAGES else "en"
    state["_initialised"] = True


def request_action(state: State, action: str) -> None:
    """Button callback: remember ``action`` for the next run (see the module docstring)."""
    state["pending"] = action


@contextmanager
def reported(state: State, doing: str, key: str = "error") -> Iterator[None]:
    """Turn any failure inside the block into ``state[key]`` instead of a traceback."""
    language = str(state.get("ui_language") or "en")
    try:
        yield
    except CopilotError as exc:
        state[key] = text(language, "app.could_not", doing=doing, error=exc)
    except Exception as exc:  # the page must never show a traceback
        log.exception("unexpected error while trying to %s", doing)
        state[key] = redact(
            text(
                language,
                "app.could_not_unexpected",
                doing=doing,
                kind=type(exc).__name__,
                error=exc,
            )
        )


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
    """The request as stored with the draft (one definition: the store's)."""
    from copilot.store.recording import request_dict as stored_form

    return stored_form(request)
