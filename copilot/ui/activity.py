"""The Activity tab: totals and the latest drafts from the store, with rating, sends, edit
distance and override reasons as separate columns; choosing a row opens the stored draft (its
verdict, rules, feedback notes, agent, sends and escalations). Customer messages are shown
masked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from copilot.errors import CopilotError
from copilot.store import Store
from copilot.ui.i18n import t
from copilot.ui.risk import masked
from copilot.ui.widgets import ERROR_ICON, language_name


def _when(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ")


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
    messages = {r["id"]: masked(r["customer_message"] or "") for r in recent}
    st.dataframe(
        [
            {
                t("activity.col_when"): _when(r["created_at"]),
                t("activity.col_lang"): r["language"],
                t("activity.col_verdict"): "blocked" if r["blocked"] else r["verdict"],
                t("activity.col_rating"): ratings.get(r["rating"] or "", ""),
                t("activity.col_reason"): r["rating_reason"] or "",
                # numbers or None (an empty cell): a column mixing text and numbers makes
                # Arrow fall back with a warning on every render
                t("activity.col_sent"): r["sent"] or 0,
                t("activity.col_edit"): r["edit_distance"],
                t("activity.col_override"): r["override_reason"] or "",
                t("activity.col_agent"): r["sent_agent"] or r["agent"] or "",
                t("activity.col_message"): messages[r["id"]][:80],
            }
            for r in recent
        ],
        hide_index=True,
        width="stretch",
    )
    rows = {r["id"]: r for r in recent}
    picked = st.selectbox(
        t("activity.open"),
        list(rows),
        index=None,
        key="activity_pick",
        placeholder=t("activity.open_placeholder"),
        format_func=lambda i: (
            f"{_when(rows[i]['created_at'])} · {rows[i]['language']} · {messages[i][:60]}"
        ),
    )
    if picked is not None:
        try:
            stored = store.get_draft(picked)
        except CopilotError as exc:
            st.error(t("app.could_not", doing=t("doing.read_db"), error=exc), icon=ERROR_ICON)
            return
        if stored is not None:
            render_stored(stored)


def render_stored(stored: Mapping[str, Any]) -> None:
    """One stored draft as it was recorded: message (masked), draft, verdict and rules, the
    agents' ratings with their notes, the sends (with override reasons) and escalations."""
    result: Mapping[str, Any] = stored.get("result") or {}
    request: Mapping[str, Any] = stored.get("request") or {}
    name = request.get("customer_name") or None
    blocked = bool(result.get("blocked"))
    verdict = "blocked" if blocked else str(result.get("verdict") or "")
    rules = list(dict.fromkeys(str(v.get("rule")) for v in result.get("violations") or []))
    with st.container(border=True):
        st.markdown(
            t(
                "activity.detail_head",
                when=_when(stored.get("created_at")),
                language=language_name(str(result.get("language") or "")),
                agent=stored.get("agent") or "—",
            )
        )
        st.markdown(t("activity.detail_verdict", verdict=verdict, rules=", ".join(rules) or "—"))
        st.caption(t("activity.detail_message"))
        st.code(masked(str(request.get("customer_message") or ""), name), language=None,
                wrap_lines=True)  # fmt: skip
        st.caption(t("activity.detail_draft"))
        st.code(str(result.get("draft") or ""), language=None, wrap_lines=True)
        for rating in stored.get("ratings") or []:
            label = t("feedback.up") if rating["rating"] == "up" else t("feedback.down")
            st.markdown(
                t(
                    "activity.detail_rating",
                    agent=rating["agent"] or "—",
                    rating=label,
                    note=rating["reason"] or "—",
                )
            )
        for sent in stored.get("sent") or []:
            line = t(
                "activity.detail_sent",
                when=_when(sent["created_at"]),
                agent=sent["agent"] or "—",
                verdict=sent["verdict"],
                distance="—" if sent["edit_distance"] is None else sent["edit_distance"],
            )
            if sent["override_reason"]:
                line += " · " + t(
                    "activity.detail_override",
                    reason=sent["override_reason"],
                    rules=", ".join(sent["rules"]) or "—",
                )
            st.markdown(line)
        for escalation in stored.get("escalations") or []:
            st.markdown(
                t(
                    "activity.detail_escalated",
                    when=_when(escalation["created_at"]),
                    agent=escalation["agent"] or "—",
                )
            )
