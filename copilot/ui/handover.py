"""The internal hand-over note of an escalation, from the template in
``<COPILOT_PROMPTS_DIR>/handover.yaml`` (one per interface language; English when a language
has none). The customer's message and the draft are shown masked."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from copilot.errors import Problem
from copilot.files import ConfigError, fill, line_of, read_versioned
from copilot.ui import risk
from copilot.ui.i18n import DEFAULT, current_language, t
from copilot.ui.services import Services
from copilot.ui.state import State
from copilot.ui.widgets import current_verdict, flag_chips, language_name

FILE = "handover.yaml"


@cache
def templates(path: Path) -> dict[str, str]:
    """The note template per language; :class:`ConfigError` naming the file and line."""
    data = read_versioned(path, "hand-over template", hint="COPILOT_PROMPTS_DIR").data
    notes = data.get("note")
    if not isinstance(notes, dict) or not isinstance(notes.get(DEFAULT), str):
        raise ConfigError(Problem(str(path), line_of(data, "note"), "'note:' needs an 'en' text"))
    for language, body in notes.items():
        if not isinstance(body, str) or not body.strip():
            raise ConfigError(
                Problem(str(path), line_of(notes, language), f"{language!r}: must be text")
            )
    return {str(k): v for k, v in notes.items()}


def handover_note(services: Services, state: State) -> str:
    """The note for the current ticket in the interface language."""
    result, request = state["result"], state["request"]
    name = request.customer_name if request is not None else None
    message = request.customer_message if request is not None else ""
    found = templates(Path(services.settings.prompts_dir) / FILE)
    template = found.get(current_language(), found[DEFAULT])
    topics = ", ".join(
        topic if p is None else f"{topic} ({p:.0%})" for topic, p in risk.topics(result)
    )
    return fill(
        template,
        {
            "agent": str(state.get("agent_name") or "").strip() or "—",
            "draft_id": state.get("draft_id") or "—",
            "language": language_name(result.language),
            "topic": topics or (risk.top_source(result) or {}).get("id") or "—",
            "cues": ", ".join(risk.escalation_cues(result)) or "—",
            "flags": ", ".join(flag_chips(result.flags)) or t("flags.none_short"),
            "verdict": {"pass": t("pill.pass"), "reject": t("pill.blocked")}.get(
                current_verdict(state), t("pill.unchecked")
            ),
            "message": risk.masked(message, name),
            "draft": risk.masked(str(state.get("draft_text") or ""), name),
        },
    ).strip()
