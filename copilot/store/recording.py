"""Every draft recorded: the library entry point, and what the CLI and the UI record with.

:class:`RecordingCopilot` wraps the drafting pipeline (:class:`~copilot.draft.pipeline.Copilot`)
and a store: each draft is saved with its backend, model, prompt and KB versions, verdict and
latency (``DraftResult.to_dict()``), where it came from (``origin``: ui, cli, library) and the
agent. Recording never blocks or fails a draft: a store error comes back in
:attr:`Recorded.error` next to the finished draft, for the caller to show::

    from copilot.store.recording import draft_reply
    done = draft_reply("My withdrawal is stuck", customer_name="Ken", agent="mika")
    print(done.result.draft, done.draft_id or done.error)

``COPILOT_RECORD_DRAFTS=false`` (or ``record=False``) turns recording off. The pipeline
itself (``Copilot.draft``, used by ``eval`` and the benchmarks) records nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from copilot.draft.pipeline import Copilot
from copilot.draft.types import DraftRequest, DraftResult, Turn
from copilot.errors import CopilotError
from copilot.secrets import redact
from copilot.settings import Settings, get_settings
from copilot.store.base import Store


@dataclass(frozen=True)
class Recorded:
    """A finished draft and what became of its record."""

    result: DraftResult
    draft_id: str | None = None  # the stored row; None when not recorded
    error: str | None = None  # why it was not recorded (recording on, the store failed)

    @property
    def recorded(self) -> bool:
        """True when the draft is in the store."""
        return self.draft_id is not None


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


class RecordingCopilot:
    """Drafts with ``copilot`` and records each draft in ``store`` (``None``: recording off)."""

    def __init__(self, copilot: Copilot, store: Store | None, *, origin: str = "library") -> None:
        self.copilot = copilot
        self.store = store
        self.origin = origin

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        backend: str | None = None,
        origin: str = "library",
        record: bool | None = None,
    ) -> RecordingCopilot:
        """The copilot from settings and, unless recording is off, the configured store.

        Nothing connects to the database until the first draft is recorded.
        """
        from copilot.draft.factory import build_copilot
        from copilot.store.sql import SqlStore

        on = settings.record_drafts if record is None else record
        store = SqlStore.from_url(settings.database) if on else None
        return cls(build_copilot(settings, backend), store, origin=origin)

    def draft(self, request: DraftRequest, *, agent: str | None = None) -> Recorded:
        """Draft a reply (errors of the draft itself raise as usual), then record it."""
        return self.record(self.copilot.draft(request), request, agent=agent)

    def record(
        self, result: DraftResult, request: DraftRequest, *, agent: str | None = None
    ) -> Recorded:
        """Store a finished draft; a failure is returned in ``error``, never raised."""
        if self.store is None:
            return Recorded(result)
        try:
            draft_id = self.store.save_draft(
                result.to_dict(), request_dict(request), origin=self.origin, agent=agent
            )
        except CopilotError as exc:
            return Recorded(result, error=f"the draft was not recorded: {exc}")
        except Exception as exc:  # a draft is never lost to a bug in its record
            return Recorded(
                result,
                error=redact(f"the draft was not recorded: unexpected {type(exc).__name__}: {exc}"),
            )
        return Recorded(result, draft_id)


_lock = threading.Lock()
_shared: dict[tuple[int, str | None], RecordingCopilot] = {}


def draft_reply(
    message: str,
    *,
    language: str | None = None,
    customer_name: str | None = None,
    channel: str | None = None,
    agent_note: str | None = None,
    history: Sequence[Turn] = (),
    agent: str | None = None,
    backend: str | None = None,
    settings: Settings | None = None,
) -> Recorded:
    """Draft a reply to ``message`` and record it: the one-call library entry point.

    The copilot (retriever, guardrail, backend) is built once per settings and backend and
    shared by later calls in the process.
    """
    chosen = settings or get_settings()
    key = (hash(chosen), backend)
    with _lock:
        if key not in _shared:
            _shared[key] = RecordingCopilot.from_settings(chosen, backend=backend)
        recorder = _shared[key]
    request = DraftRequest(
        message,
        language=language,
        customer_name=customer_name,
        channel=channel,
        agent_note=agent_note,
        history=list(history),
    )
    return recorder.draft(request, agent=agent)
