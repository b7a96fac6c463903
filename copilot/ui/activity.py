"""The Activity tab: totals and the latest drafts from the store, with rating, sends and edit
distance as separate columns."""

from __future__ import annotations

import streamlit as st

from copilot.errors import CopilotError
from copilot.store import Store
from copilot.ui.i18n import t
from copilot.ui.widgets import ERROR_ICON


def render_activity(store: Store) -> None:
    """Totals and the latest drafts from the store."""
    try:
        stats, totals, recent = store.stats(), store.feedback_totals(), store.activity(25)
    except CopilotError as exc:
        st.error(t("app.could_not", doing=t("doing.read_db"), error=exc), icon=ERROR_ICON)
        return
    cols = st.columns(5)
    cols[0].metric(t("activity.drafts"), stats["drafts"])
    cols[1].metric(t("activity.blocked"), stats["blocked"])
    cols[2].metric(t("activity.ratings"), f"{totals['up']} / {totals['down']}")
    rate = totals["approval_rate"]
    cols[3].metric(t("activity.approval"), "—" if rate is None else f"{rate:.0%}")
    cols[4].metric(t("activity.sent"), totals["sent"])
    median = totals["median_edit_distance"]
    if median is not None:
        st.caption(f"{t('activity.median_edit')}: {median:g}")
    if not recent:
        st.caption(t("activity.none"))
        return
    ratings = {"up": t("feedback.up"), "down": t("feedback.down")}
    st.dataframe(
        [
            {
                t("activity.col_when"): (r["created_at"] or "")[:19].replace("T", " "),
                t("activity.col_lang"): r["language"],
                t("activity.col_verdict"): "blocked" if r["blocked"] else r["verdict"],
                t("activity.col_rating"): ratings.get(r["rating"] or "", ""),
                t("activity.col_reason"): r["rating_reason"] or "",
                t("activity.col_sent"): r["sent"] or "",
                t("activity.col_edit"): "" if r["edit_distance"] is None else r["edit_distance"],
                t("activity.col_message"): (r["customer_message"] or "")[:80],
            }
            for r in recent
        ],
        hide_index=True,
        width="stretch",
    )
