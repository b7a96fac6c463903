"""The :class:`Store` protocol: what the workspace and every drafting entry point need from the
database. :class:`copilot.store.sql.SqlStore` implements it; tests may pass their own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

RATINGS = ("up", "down")


class Store(Protocol):
    """Drafts and what agents did with them."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...

    def save_draft(
        self,
        result: Mapping[str, Any],
        request: Mapping[str, Any],
        *,
        origin: str | None = None,
        agent: str | None = None,
    ) -> str:
        """Store one draft and its request (``origin``: ui, cli or library); returns its id."""
        ...

    def save_feedback(
        self,
        draft_id: str,
        rating: str,
        final_text: str | None = None,
        note: str | None = None,
        agent: str | None = None,
    ) -> str:
        """Record an agent's rating of a draft with the final text (a history row); its id."""
        ...

    def save_rating(
        self, draft_id: str, rating: str, *, agent: str | None = None, reason: str | None = None
    ) -> str:
        """The agent's up/down on a draft, replacing their previous one; returns its id."""
        ...

    def save_sent(
        self,
        draft_id: str,
        final_text: str,
        *,
        verdict: str,
        rules: Sequence[str] = (),
        override_reason: str | None = None,
        agent: str | None = None,
    ) -> str:
        """Record the reply the agent sent and the verdict of that exact text; returns its id."""
        ...

    def save_escalation(self, draft_id: str, note: str, *, agent: str | None = None) -> str:
        """Record an escalation of a draft's ticket with its hand-over note; returns its id."""
        ...

    def get_draft(self, draft_id: str) -> dict[str, Any] | None:
        """One draft with its result, request, feedback, ratings, sent replies, escalations."""
        ...

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest drafts first, with their latest feedback."""
        ...

    def stats(self) -> dict[str, Any]:
        """Totals for the Activity tab."""
        ...

    def activity(self, limit: int = 25) -> list[dict[str, Any]]:
        """The newest drafts first with rating, sends and edit distance as separate fields."""
        ...

    def feedback_totals(self) -> dict[str, Any]:
        """Ratings (current one per agent and draft) and sends, counted apart."""
        ...

    def insight_rows(self, limit: int = 5000) -> list[dict[str, Any]]:
        """The newest drafts with their stored result and every send (for the Insights page)."""
        ...

    def save_agent_settings(
        self,
        agent: str,
        *,
        display_name: str | None = None,
        ui_language: str | None = None,
        signatures: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create or change an agent's name, UI language and signatures per language."""
        ...

    def get_agent_settings(self, agent: str) -> dict[str, Any] | None:
        """An agent's settings, or None."""
        ...

    def save_ticket_state(
        self, draft_id: str, state: Mapping[str, Any], *, agent: str | None = None
    ) -> None:
        """Remember the workspace state of a draft's ticket."""
        ...

    def get_ticket_state(self, draft_id: str) -> dict[str, Any] | None:
        """The last saved ticket state of a draft, or None."""
        ...
