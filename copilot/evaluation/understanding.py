"""The rule-based router's reading of labelled messages, to set beside the learned model.

The offline drafter routes by retrieval, cue lexicons and margins; its reading of a
message is the draft it writes: the playbook it chose, else the first article it cited
(``greeting_or_vague`` when it abstained), and the emotion level of the input checks. It
has no situation flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from copilot.draft.pipeline import Copilot
from copilot.draft.types import DraftRequest, DraftResult, Turn
from copilot.understand.messages import VAGUE, LabelledMessage
from copilot.understand.training import score


def rule_reading(result: DraftResult) -> tuple[str, int]:
    """(primary topic, emotion level) the rule-based router gave a draft."""
    emotion = max((f.level or 0 for f in result.flags if f.kind == "emotion"), default=0)
    if result.scenario.startswith("playbook/"):
        return result.scenario, emotion
    if result.scenario == "abstain" or not result.sources:
        return VAGUE, emotion
    return result.sources[0]["id"], emotion


def request_of(m: LabelledMessage) -> DraftRequest:
    """The draft request an agent would make for a labelled message."""
    return DraftRequest(
        customer_message=m.message,
        language=m.language,
        agent_note=m.agent_note,
        history=[Turn("agent" if t.role == "agent" else "customer", t.text) for t in m.thread],
    )


def rules_report(
    copilot: Copilot,
    messages: Sequence[LabelledMessage],
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The rule-based router's figures on ``messages`` (see ``understand.training.score``)."""
    primary: list[str] = []
    emotion: list[int] = []
    for i, m in enumerate(messages):
        topic, level = rule_reading(copilot.draft(request_of(m)))
        primary.append(topic)
        emotion.append(level)
        if progress:
            progress(i + 1)
    return score(messages, primary, emotion)
