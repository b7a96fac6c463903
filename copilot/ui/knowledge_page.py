"""The Knowledge page, for the knowledge-base owner: which KB version is served and since when,
what it holds (articles, chunks, languages), the embedder, and *Re-ingest* (the knowledge folder
ingested as the next version with a progress bar; readers switch to it in one step, see
:mod:`copilot.kb.versions`). Reads :func:`copilot.retrieval.index.kb_status`; ingests with
:func:`copilot.retrieval.index.ingest_into`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from copilot.kb.ingest import IngestReport
from copilot.retrieval.index import KBStatus, kb_status
from copilot.ui import state as session
from copilot.ui.i18n import t
from copilot.ui.services import Services
from copilot.ui.widgets import ERROR_ICON, language_name

ERROR_KEY = "knowledge_error"


def render(svc: Services) -> None:
    """The whole page: the status (filled last, so it shows a version just ingested), then the
    re-ingest action."""
    state = st.session_state
    st.markdown("## " + t("knowledge.title"))
    st.caption(t("knowledge.caption"))
    status_box = st.container()
    st.markdown("### " + t("knowledge.reingest_title"))
    st.caption(t("knowledge.reingest_help", folder=str(svc.settings.knowledge_dir)))
    if st.button(
        t("knowledge.reingest"), icon=":material/sync:", type="primary", key="kb_reingest"
    ):
        state[ERROR_KEY] = None
        report = None
        with session.reported(state, t("doing.ingest"), key=ERROR_KEY):
            report = reingest(svc)
        if report is not None:
            show_report(report)
    if state.get(ERROR_KEY):
        st.error(state[ERROR_KEY], icon=ERROR_ICON)
        state[ERROR_KEY] = None
    with status_box:
        status: KBStatus | None = None
        with session.reported(state, t("doing.read_kb"), key=ERROR_KEY):
            status = kb_status(svc.settings)
        if status is None:
            st.error(state[ERROR_KEY], icon=ERROR_ICON)
            state[ERROR_KEY] = None
        else:
            show_status(status)


def reingest(svc: Services) -> IngestReport:
    """Ingest the knowledge folder as the next KB version with a progress bar; the retriever
    then serves it at once. Bad articles raise an error naming file, line and field."""
    from copilot.kb.articles import load_kb
    from copilot.kb.ingest import docs_from_articles
    from copilot.retrieval.index import ingest_into

    settings = svc.settings
    bar = st.progress(0.0, text=t("knowledge.reading", folder=str(settings.knowledge_dir)))
    docs = docs_from_articles(load_kb(settings.knowledge_dir))
    bar.progress(0.0, text=t("knowledge.embedding_start", documents=len(docs)))
    report = ingest_into(settings, settings.collection, docs, progress=progress_for(bar))
    bar.progress(1.0, text=t("knowledge.done"))
    refresh = getattr(svc.retriever, "refresh", None)
    if callable(refresh):
        refresh()  # drafts use the new version now, not after COPILOT_KB_REFRESH_S
    return report


def progress_for(bar: Any) -> Callable[[int], Callable[[int], None]]:
    """The ingest's progress callback: ``start(total)`` returns ``advance(n)`` moving ``bar``."""

    def start(total: int) -> Callable[[int], None]:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            share = min(1.0, done[0] / total) if total else 1.0
            bar.progress(share, text=t("knowledge.embedding", done=done[0], total=total))

        return advance

    return start


def show_report(report: IngestReport) -> None:
    """What the re-ingest did, in one line."""
    if report.switched:
        st.success(
            t(
                "knowledge.switched",
                version=report.kb_version,
                added=report.added,
                updated=report.updated,
                removed=report.removed,
                unchanged=report.unchanged,
                embedded=report.chunks_embedded,
                copied=report.chunks_copied,
                seconds=f"{report.seconds:.1f}",
            ),
            icon=":material/task_alt:",
        )
    else:
        st.info(t("knowledge.unchanged", version=report.kb_version))


def show_status(status: KBStatus) -> None:
    """The served version, its counts and its embedder."""
    if not status.ingested:
        st.warning(t("knowledge.never"))
        st.caption(
            t(
                "knowledge.embedder_line",
                embedder=status.embedder,
                model=status.embedding_model,
                dim=status.embedding_dim,
            )
        )
        return
    top = st.columns(2)
    top[0].metric(t("knowledge.version"), status.kb_version or "—")
    top[1].metric(t("knowledge.last_ingest"), when(status.switched_at))
    counts = st.columns(3)
    counts[0].metric(t("knowledge.articles"), status.articles)
    counts[1].metric(t("knowledge.chunks"), status.chunks)
    counts[2].metric(t("knowledge.languages"), len(status.languages))
    st.caption(
        t(
            "knowledge.embedder_line",
            embedder=status.embedder,
            model=status.embedding_model,
            dim=status.embedding_dim,
        )
    )
    st.caption(t("knowledge.served_line", collection=status.collection))
    st.dataframe(
        [
            {
                t("knowledge.col_language"): language_name(code),
                t("knowledge.col_documents"): count,
            }
            for code, count in status.languages.items()
        ],
        hide_index=True,
        width="stretch",
    )


def when(iso: str) -> str:
    """``2026-12-06 21:05:16 UTC`` from an ISO time ('—' when unknown: a KB from before
    versions)."""
    return iso[:19].replace("T", " ") + " UTC" if iso else "—"
