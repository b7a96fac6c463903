"""What the workspace's buttons do: draft, re-check, rewrite, feedback, copy (with an override
when the guardrail blocks the text), escalate.

Actions never raise: expected failures (:class:`CopilotError`) and unexpected ones
are turned into a message that the page shows with ``st.error``. Buttons placed
below the draft use a callback that only records the action; the work runs on the
next script run *before* the editable draft widget is created, so the action may
replace its text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import streamlit as st

from copilot.draft.citations import strip_citations
from copilot.errors import CopilotError
from copilot.guard.types import Verdict
from copilot.text.distance import edit_distance
from copilot.ui.handover import handover_note
from copilot.ui.i18n import t
from copilot.ui.services import Services
from copilot.ui.signature import signed
from copilot.ui.state import DEFAULTS, State, build_request, reported, request_dict
from copilot.ui.widgets import TONE_KEYS


# ---- actions -------------------------------------------------------------------
def run_draft(services: Services, state: State) -> None:
    """Draft a reply for the form's message, store it, and load it into the editor."""
    for key in (
        "result",
        "request",
        "draft_id",
        "recheck",
        "copied",
        "error",
        "notice",
        "rating",
        "sent_distance",
        "escalation",
        "override_reason",
    ):
        state[key] = DEFAULTS[key]
    if not str(state["customer_message"]).strip():
        state["error"] = t("draft.message_empty")
        return
    with reported(state, t("doing.draft")):
        request = build_request(state)
        with st.spinner(t("draft.spinner")):
            result = services.copilot.draft(request)
        state["result"], state["request"] = result, request
        state["draft_text"] = result.draft
        state["feedback_note"] = ""
        state["focus_draft"] = True  # the agent goes on in the editor, without a click
    if state["result"] is not None and services.settings.record_drafts:
        with reported(state, t("doing.save_draft")):
            state["draft_id"] = services.store.save_draft(
                state["result"].to_dict(),
                request_dict(state["request"]),
                origin="ui",
                agent=str(state["agent_name"]).strip() or None,
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
        "override": _override,
        "escalate": _escalate,
    }
    handler = handlers.get(str(action))
    if handler is not None:
        handler(services, state)


def check_text(services: Services, state: State, text: str) -> Verdict:
    """The guardrail's verdict on ``text`` with the draft's evidence; remembered as the
    re-check of that exact text (so the verdict pill follows the box)."""
    result = state["result"]
    if not text.strip():
        raise CopilotError(t("copy.empty"))
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
    return verdict


def _recheck(services: Services, state: State) -> None:
    with reported(state, t("doing.recheck")):
        check_text(services, state, str(state["draft_text"]))


def _rewrite(services: Services, state: State) -> None:
    result, tone = state["result"], str(state["tone"])
    tone_name = t(TONE_KEYS[tone]) if tone in TONE_KEYS else tone
    with reported(state, t("doing.rewrite", tone=tone_name)):
        with st.spinner(t("draft.rewriting", tone=tone_name)):
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
        state["notice"] = (
            "success",
            t("rewrite.done", tone=tone_name, backend=new.backend, model=new.model),
        )


def _feedback(services: Services, state: State, rating: str) -> None:
    if state["draft_id"] is None:
        state["error"] = t("feedback.not_saved")
        return
    with reported(state, t("doing.feedback")):
        agent = str(state["agent_name"]).strip() or None
        note = str(state["feedback_note"]).strip() or None
        # the agent's current opinion of the draft: one rating per agent, replaced on change;
        # a rating is not a send (``_copy`` records those, with the edit distance)
        services.store.save_rating(state["draft_id"], rating, agent=agent, reason=note)
        state["rating"] = rating
        state["notice"] = (
            "success",
            t("feedback.saved_up") if rating == "up" else t("feedback.saved_down"),
        )


def _sign_off(services: Services, language: str) -> re.Pattern[str] | None:
    """The reply language's closing-line pattern (the drafter's phrases), if it has one."""
    try:
        pattern = services.copilot.drafter.phrases.cue("sign_off", language)
    except (AttributeError, KeyError):
        return None
    return pattern if isinstance(pattern, re.Pattern) else None


def final_text(services: Services, state: State) -> str:
    """The text in the box as it will be sent: ending with the agent's signature for the
    reply's language (from their settings), once."""
    language = state["result"].language
    signature = str(state.get(f"signature_{language}") or "")
    return signed(str(state["draft_text"]), signature, _sign_off(services, language))


def _blocking_rules(verdict: Verdict) -> list[str]:
    return list(dict.fromkeys(v.rule for v in verdict.violations if v.blocking))


def _send(
    services: Services, state: State, text: str, verdict: Verdict, reason: str | None
) -> None:
    """Store the send of ``text`` (with its verdict, rules and override reason) and put the
    customer-ready text on the page."""
    services.store.save_sent(
        state["draft_id"],
        text,
        verdict=verdict.verdict,
        rules=_blocking_rules(verdict),
        override_reason=reason,
        agent=str(state["agent_name"]).strip() or None,
    )
    # what leaves is customer-ready: no citation markers (the record keeps them)
    state["copied"] = strip_citations(text)
    state["sent_distance"] = edit_distance(state["result"].draft.strip(), text.strip())


def _copy(services: Services, state: State) -> None:
    """Send (copy) the text in the box, signed: always re-checked first; a blocked text is
    refused (it can only go out through :func:`_override`, with a reason)."""
    if state["draft_id"] is None:
        state["error"] = t("copy.not_saved")
        return
    text = final_text(services, state)
    state["draft_text"] = text  # the box shows what is checked and sent: the pill follows it
    with reported(state, t("doing.copy")):
        verdict = check_text(services, state, text)
        if not verdict.passed:
            state["error"] = t("copy.refused", rules=", ".join(_blocking_rules(verdict)))
            return
        _send(services, state, text, verdict, None)


def _override(services: Services, state: State) -> None:
    """Send anyway: the text is re-checked; when the guardrail still blocks it, it is stored
    with the agent's reason (required) and its rules. The verdict stays ``reject``."""
    if state["draft_id"] is None:
        state["error"] = t("copy.not_saved")
        return
    reason = str(state["override_reason"]).strip()
    if not reason:
        state["error"] = t("override.reason_required")
        return
    text = final_text(services, state)
    state["draft_text"] = text
    with reported(state, t("doing.copy")):
        verdict = check_text(services, state, text)
        _send(services, state, text, verdict, None if verdict.passed else reason)
        if not verdict.passed:
            state["override_reason"] = ""  # the next override needs its own reason
            state["notice"] = (
                "warning",
                t("override.done", rules=", ".join(_blocking_rules(verdict))),
            )


def _escalate(services: Services, state: State) -> None:
    """Write the internal hand-over note and record the escalation with the draft."""
    if state["draft_id"] is None:
        state["error"] = t("escalate.not_saved")
        return
    with reported(state, t("doing.escalate")):
        agent = str(state["agent_name"]).strip() or None
        note = handover_note(services, state)
        services.store.save_escalation(state["draft_id"], note, agent=agent)
        state["escalation"] = note
        state["notice"] = ("success", t("escalate.done"))
