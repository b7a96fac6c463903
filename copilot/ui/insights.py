"""The Insights page, for the knowledge-base owner and the compliance lead: knowledge gaps
(grouped by topic and language), guardrail hits per rule over time, and overrides with their
reasons; computed by :mod:`copilot.store.insights` from what the store holds."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from copilot.errors import CopilotError
from copilot.store import insights
from copilot.ui.i18n import t
from copilot.ui.services import Services
from copilot.ui.widgets import ERROR_ICON, language_name


def render(svc: Services) -> None:
    """The whole page."""
    st.markdown("## " + t("insights.title"))
    st.caption(t("insights.caption"))
    c1, c2 = st.columns(2)
    low = c1.slider(t("insights.low_score"), 0.0, 1.0, insights.LOW_SCORE, 0.05, key="insights_low")
    heavy = c2.slider(
        t("insights.heavy_edit"), 0.0, 1.0, insights.HEAVY_EDIT, 0.05, key="insights_heavy"
    )
    try:
        rows = svc.store.insight_rows()
    except CopilotError as exc:
        st.error(t("app.could_not", doing=t("doing.read_db"), error=exc), icon=ERROR_ICON)
        return
    if not rows:
        st.info(t("insights.empty"))
        return
    gaps_section(rows, low, heavy)
    hits_section(rows)
    overrides_section(rows)


def gaps_section(rows: list[dict[str, object]], low: float, heavy: float) -> None:
    st.markdown("### " + t("insights.gaps_title"))
    gaps = insights.knowledge_gaps(rows, low_score=low, heavy_edit=heavy)
    if not gaps:
        st.success(t("insights.no_gaps"))
        return
    st.metric(t("insights.gap_drafts"), sum(g["drafts"] for g in gaps))
    frame = pd.DataFrame(
        [
            {
                t("insights.col_topic"): g["topic"],
                t("insights.col_language"): language_name(str(g["language"])),
                t("insights.col_drafts"): g["drafts"],
                t("insights.col_abstained"): g["abstained"],
                t("insights.col_low"): g["low_score"],
                t("insights.col_edited"): g["heavily_edited"],
                t("insights.col_score"): g["mean_score"],
                t("insights.col_examples"): " / ".join(g["examples"]),
            }
            for g in gaps
        ]
    )
    st.bar_chart(
        frame,
        x=t("insights.col_topic"),
        y=t("insights.col_drafts"),
        color=t("insights.col_language"),
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def hits_section(rows: list[dict[str, object]]) -> None:
    st.markdown("### " + t("insights.hits_title"))
    hits = insights.guardrail_hits(rows)
    if not hits:
        st.caption(t("insights.no_hits"))
        return
    frame = pd.DataFrame(
        [
            {
                t("insights.col_day"): h["day"],
                t("insights.col_rule"): h["rule"],
                t("insights.col_hit_drafts"): h["drafts"],
                t("insights.col_hit_sent"): h["sent"],
            }
            for h in hits
        ]
    )
    st.bar_chart(
        frame, x=t("insights.col_day"), y=t("insights.col_hit_drafts"), color=t("insights.col_rule")
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def overrides_section(rows: list[dict[str, object]]) -> None:
    st.markdown("### " + t("insights.overrides_title"))
    found = insights.overrides(rows)
    if not found:
        st.caption(t("insights.no_overrides"))
        return
    st.dataframe(
        [
            {
                t("insights.col_when"): str(o["created_at"] or "")[:19].replace("T", " "),
                t("insights.col_agent"): o["agent"],
                t("insights.col_language"): language_name(str(o["language"] or "")),
                t("insights.col_rules"): ", ".join(o["rules"]),
                t("insights.col_reason"): o["reason"],
            }
            for o in found
        ],
        hide_index=True,
        width="stretch",
    )
