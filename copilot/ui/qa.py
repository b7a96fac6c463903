"""The QA page: eval runs from their report folders, per-language and per-category charts, the
run-versus-run diff with regressions highlighted, and "add to golden set" from a sent reply.

Reading and comparing runs is :mod:`copilot.evaluation.runs` (the diff is the one
``eval --baseline`` makes); writing a golden case is :mod:`copilot.evaluation.golden_add`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from copilot.errors import CopilotError
from copilot.evaluation.diff import DEFAULT_THRESHOLD
from copilot.evaluation.golden_add import golden_case, write_golden_case
from copilot.evaluation.runs import RunInfo, aggregate_rows, diff_runs, find_runs, load_run
from copilot.ui.i18n import t
from copilot.ui.services import Services
from copilot.ui.state import reported
from copilot.ui.widgets import ERROR_ICON, language_name

REGRESSION_STYLE = "background-color: #fdecea; color: #a4161a"
IMPROVEMENT_STYLE = "background-color: #e7f5ec; color: #12703a"


def render(svc: Services) -> None:
    """The whole page."""
    state = st.session_state
    st.markdown("## " + t("qa.title"))
    st.caption(t("qa.caption"))
    if "qa_folder" not in state:
        state["qa_folder"] = str(svc.settings.eval_reports_path)
    folder = Path(st.text_input(t("qa.folder"), key="qa_folder").strip() or ".")
    runs = find_runs(folder)
    broken = [r for r in runs if r.problem]
    usable = [r for r in runs if not r.problem]
    for run in broken:
        st.warning(t("qa.unreadable", name=run.name, problem=run.problem))
    if not usable:
        st.info(t("qa.no_runs", folder=str(folder)))
    else:
        run_table(usable)
        chosen = pick_run(usable)
        if chosen is not None:
            report = load_run(chosen.folder)
            aggregates(report)
            diff_section(chosen, report, usable)
    st.divider()
    golden_section(svc)


def run_table(runs: list[RunInfo]) -> None:
    """One row per run."""
    st.dataframe(
        [
            {
                t("qa.col_run"): r.name,
                t("qa.col_started"): r.started_at[:19].replace("T", " "),
                t("qa.col_backend"): " ".join(x for x in (r.backend, r.model) if x),
                t("qa.col_cases"): r.cases,
                t("qa.col_score"): r.score,
            }
            for r in runs
        ],
        hide_index=True,
        width="stretch",
    )


def pick_run(runs: list[RunInfo]) -> RunInfo | None:
    names = [r.name for r in runs]
    if st.session_state.get("qa_run") not in names:
        st.session_state["qa_run"] = names[0]
    name = st.selectbox(t("qa.run"), names, key="qa_run")
    return next((r for r in runs if r.name == name), None)


def aggregates(report: dict[str, Any]) -> None:
    """Mean score and metrics per language and per category, as bar charts and tables."""
    cols = st.columns(2)
    for col, by, title in (
        (cols[0], "by_language", t("qa.by_language")),
        (cols[1], "by_category", t("qa.by_category")),
    ):
        rows = aggregate_rows(report, by)
        with col:
            st.markdown(f"**{title}**")
            if not rows:
                st.caption(t("qa.no_groups"))
                continue
            frame = pd.DataFrame(rows)
            if by == "by_language":
                frame["group"] = [language_name(g) for g in frame["group"]]
            metrics = [m for m in ("score", "semantic", "must_include", "citations") if m in frame]
            st.bar_chart(frame, x="group", y=metrics[:1] or None, horizontal=by == "by_category")
            st.dataframe(frame, hide_index=True, width="stretch")


def _highlight(row: pd.Series) -> list[str]:
    style = ""
    if row.get("_regression"):
        style = REGRESSION_STYLE
    elif row.get("_improvement"):
        style = IMPROVEMENT_STYLE
    return [style] * len(row)


def diff_section(chosen: RunInfo, report: dict[str, Any], runs: list[RunInfo]) -> None:
    """The chosen run against a baseline run: per-case deltas, regressions highlighted."""
    st.markdown("### " + t("qa.diff_title"))
    others = [r.name for r in runs if r.name != chosen.name]
    if not others:
        st.caption(t("qa.diff_need_two"))
        return
    if st.session_state.get("qa_baseline") not in others:
        st.session_state["qa_baseline"] = others[0]
    c1, c2 = st.columns([3, 1])
    base_name = c1.selectbox(t("qa.baseline"), others, key="qa_baseline")
    threshold = c2.number_input(
        t("qa.threshold"),
        min_value=0.0,
        max_value=1.0,
        value=DEFAULT_THRESHOLD,
        step=0.01,
        key="qa_threshold",
    )
    baseline = next(r for r in runs if r.name == base_name)
    try:
        comparison = diff_runs(report, load_run(baseline.folder), threshold=float(threshold))
    except CopilotError as exc:
        st.error(t("app.could_not", doing=t("doing.diff"), error=exc), icon=ERROR_ICON)
        return
    m = st.columns(4)
    m[0].metric(t("qa.regressions"), len(comparison["regressions"]))
    m[1].metric(t("qa.improvements"), len(comparison["improvements"]))
    m[2].metric(t("qa.added"), len(comparison["added"]))
    m[3].metric(t("qa.removed"), len(comparison["removed"]))
    overall = (comparison.get("aggregates") or {}).get("overall", {}).get("score") or {}
    if overall.get("delta") is not None:
        st.caption(
            t(
                "qa.score_delta",
                value=overall.get("value"),
                baseline=overall.get("baseline"),
                delta=f"{overall['delta']:+.4f}",
            )
        )
    if comparison["regressions"]:
        st.error(t("qa.regressed", ids=", ".join(comparison["regressions"])), icon=ERROR_ICON)
    rows = comparison["cases"]
    if not rows:
        st.caption(t("qa.no_common_cases"))
        return
    frame = pd.DataFrame(
        [
            {
                t("qa.col_case"): r["id"],
                t("qa.col_lang"): r["language"],
                t("qa.col_category"): r["category"],
                t("qa.col_score"): r["score"],
                t("qa.col_baseline"): r["baseline_score"],
                t("qa.col_delta"): r["delta"],
                t("qa.col_status"): t("qa.status_regression")
                if r["regression"]
                else t("qa.status_improvement")
                if r["improvement"]
                else "",
                "_regression": r["regression"],
                "_improvement": r["improvement"],
            }
            for r in rows
        ]
    )
    styled = frame.style.apply(_highlight, axis=1).hide(["_regression", "_improvement"], axis=1)
    # the Styler's hide() is not honoured by st.dataframe: the helper columns are hidden here
    hidden: dict[str, Any] = {"_regression": None, "_improvement": None}
    st.dataframe(styled, hide_index=True, width="stretch", column_config=hidden)


def _sent_choices(svc: Services) -> list[dict[str, Any]]:
    return [r for r in svc.store.activity(200) if r["sent"]]


def golden_section(svc: Services) -> None:
    """Pick a sent reply and write it as a golden case (a new file, validated by the loader)."""
    state = st.session_state
    st.markdown("### " + t("qa.golden_title"))
    st.caption(t("qa.golden_caption", folder=str(svc.settings.golden_path)))
    try:
        sent = _sent_choices(svc)
    except CopilotError as exc:
        st.error(t("app.could_not", doing=t("doing.read_db"), error=exc), icon=ERROR_ICON)
        return
    if not sent:
        st.info(t("qa.no_sent"))
        return
    by_id = {r["id"]: r for r in sent}
    ids = list(by_id)
    if state.get("qa_sent") not in ids:
        state["qa_sent"] = ids[0]
        state["qa_case_id"] = f"sent-{ids[0][:8]}"
    labels = {
        i: f"{(r['created_at'] or '')[:16].replace('T', ' ')} · {r['language']} · "
        f"{(r['customer_message'] or '')[:60]}"
        for i, r in by_id.items()
    }
    draft_id = st.selectbox(t("qa.sent_reply"), ids, key="qa_sent", format_func=labels.__getitem__)
    with st.form("golden_form", border=False):
        c1, c2 = st.columns(2)
        c1.text_input(t("qa.case_id"), key="qa_case_id")
        c2.text_input(t("qa.category"), key="qa_category")
        st.text_input(t("qa.must_include"), key="qa_must_include")
        add = st.form_submit_button(t("qa.add_golden"), type="primary")
    if add:
        state["qa_golden_error"] = state["qa_golden_written"] = None
        with reported(state, t("doing.golden"), key="qa_golden_error"):
            stored = svc.store.get_draft(str(draft_id))
            if stored is None or not stored["sent"]:
                raise CopilotError(f"no sent reply stored for draft {draft_id!r}")
            case = golden_case(
                stored,
                stored["sent"][-1]["final_text"],
                case_id=str(state.get("qa_case_id") or ""),
                category=str(state.get("qa_category") or ""),
                must_include=str(state.get("qa_must_include") or "").split(","),
            )
            path = write_golden_case(
                case, svc.settings.golden_path, max_reply_chars=svc.settings.max_golden_chars
            )
            state["qa_golden_written"] = str(path)
    if state.get("qa_golden_error"):
        st.error(state["qa_golden_error"], icon=ERROR_ICON)
    elif state.get("qa_golden_written"):
        st.success(t("qa.golden_written", path=state["qa_golden_written"]))
