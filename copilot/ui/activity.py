"""The Activity tab: totals and the latest drafts from the store."""

from __future__ import annotations

import streamlit as st

from copilot.errors import CopilotError
from copilot.store import Store
from copilot.ui.widgets import ERROR_ICON


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
