"""The agent workspace: the sidebar (interface language, agent, page), the reply workspace
(request form, draft panel, knowledge-base and activity tabs), and the QA and Insights pages
(:mod:`copilot.ui.qa`, :mod:`copilot.ui.insights`, :mod:`copilot.ui.knowledge_page`). ``app.py`` calls :func:`main` on every
script run; :mod:`copilot.ui.restore` reads the URL once per session and saves what changed
after each run. Every label comes from the message catalogues (:mod:`copilot.ui.i18n`)."""

from __future__ import annotations

import html

import streamlit as st

from copilot.errors import CopilotError
from copilot.settings import Settings, get_settings
from copilot.ui import actions, insights, knowledge_page, qa, restore, risk, widgets
from copilot.ui import state as session
from copilot.ui.activity import render_activity
from copilot.ui.i18n import UI_LANGUAGES, formatter, t
from copilot.ui.services import Services, build_services, settings_key


@st.cache_resource(show_spinner=False)
def services(key: str, _settings: Settings) -> Services:
    """The copilot (retriever, guardrail, backend) and the store, once per settings."""
    return build_services(_settings)


def load() -> Services:
    """Settings and services, or an error box and a stopped page."""
    try:
        settings = get_settings()
        with st.spinner(t("app.loading")):
            return services(settings_key(settings), settings)
    except CopilotError as exc:
        st.error(t("app.cannot_start", error=exc), icon=widgets.ERROR_ICON)
        st.stop()
        raise  # unreachable: st.stop() ends the run


def sidebar(svc: Services) -> None:
    """Agent identity and what the copilot runs on."""
    with st.sidebar:
        st.markdown("### :material/support_agent: " + t("app.title"))
        st.caption(t("sidebar.caption"))
        st.selectbox(
            t("sidebar.ui_language"),
            UI_LANGUAGES,
            key="ui_language",
            format_func=widgets.UI_LANGUAGE_NAMES.__getitem__,
        )
        st.text_input(t("sidebar.agent_name"), key="agent_name")
        with st.expander(t("sidebar.signatures"), icon=":material/signature:"):
            st.caption(t("sidebar.signatures_help"))
            for language in session.SIGNATURE_LANGUAGES:
                st.text_area(
                    t("sidebar.signature", language=widgets.language_name(language)),
                    key=f"signature_{language}",
                    height=68,
                )
        st.radio(
            t("page.select"),
            session.PAGES,
            key="page",
            format_func=formatter(widgets.PAGE_KEYS),
        )
        st.divider()
        s = svc.settings
        st.markdown(f"**{t('sidebar.running_on')}**")
        st.markdown(
            f"- {t('sidebar.backend')}: `{s.llm_backend}`"
            + (f" · `{s.llm_model}`" if s.llm_backend == "openai" else "")
            + f"\n- {t('sidebar.knowledge_base')}: `{s.collection}`"
            + f"\n- {t('sidebar.database')}: `{svc.store.dialect}`"
        )
        if s.llm_backend == "offline":
            st.caption(t("sidebar.offline_note"))


def request_form(svc: Services) -> bool:
    """The left column: the customer's message and context. True when submitted."""
    with st.form("draft_form", border=False):
        st.text_area(
            t("form.customer_message"),
            key="customer_message",
            height=200,
            placeholder=t("form.customer_message_placeholder"),
        )
        c1, c2 = st.columns(2)
        c1.text_input(t("form.customer_name"), key="customer_name")
        c2.selectbox(
            t("form.channel"),
            session.CHANNELS,
            key="channel",
            format_func=formatter(widgets.CHANNEL_KEYS),
        )
        st.selectbox(
            t("form.reply_language"),
            session.LANGUAGE_CHOICES,
            key="language_choice",
            format_func=formatter(widgets.LANGUAGE_KEYS),
        )
        st.text_area(
            t("form.agent_note"),
            key="agent_note",
            height=70,
            placeholder=t("form.agent_note_placeholder"),
        )
        with st.expander(t("form.thread")):
            st.text_area(
                t("form.thread_help"),
                key="thread",
                height=110,
                placeholder=t("form.thread_placeholder"),
            )
        submitted = st.form_submit_button(
            t("form.submit"), type="primary", width="stretch", help=t("form.submit_help")
        )
    st.caption(t("form.limit", limit=f"{svc.settings.max_message_chars:,}"))
    return submitted


def draft_panel(svc: Services) -> None:
    """The main column: status, editable draft, actions, flags, sources, provenance."""
    state = st.session_state
    result = state["result"]
    if result is None:
        widgets.show_messages(state)
        st.info(t("draft.empty_hint"), icon=":material/lightbulb:")
        return
    widgets.render_status(state)
    risk_strip(state)
    if result.blocked:
        widgets.render_violations(result.violations, t("draft.blocked_title"))
    else:
        widgets.render_violations(result.violations, t("draft.warnings_title"), warn=True)
    if result.abstained:
        st.warning(t("draft.abstained"))
    st.text_area(t("draft.editor"), key="draft_text", height=340)
    # the focus once per new draft: later reruns leave it alone
    widgets.editor_keyboard("draft_text", focus=state["focus_draft"])
    state["focus_draft"] = False
    widgets.render_recheck(state)

    # a tone rewrite needs a language model: hidden, with the reason, on the offline backend
    can_rewrite = not svc.copilot.offline
    edit = st.columns([1.4, 1.1, 1.1] if can_rewrite else [1.4, 2.2], vertical_alignment="bottom")
    edit[0].button(
        t("draft.recheck"),
        icon=":material/fact_check:",
        width="stretch",
        help=t("draft.recheck_help", keys=widgets.SHORTCUTS["recheck"]),
        shortcut=widgets.SHORTCUTS["recheck"],
        key=widgets.shortcut_button_key("recheck"),
        on_click=session.request_action,
        args=(state, "recheck"),
    )
    if can_rewrite:
        edit[1].selectbox(
            t("tone.label"),
            session.TONES,
            key="tone",
            label_visibility="collapsed",
            format_func=widgets.tone_formatter(),
        )
        edit[2].button(
            t("draft.rewrite"),
            icon=":material/auto_fix_high:",
            width="stretch",
            on_click=session.request_action,
            args=(state, "rewrite"),
        )
    else:
        edit[1].caption(t("draft.rewrite_hidden"))
    widgets.show_messages(state)  # outcome of the button just clicked, next to the buttons
    with st.container(border=True):
        st.markdown(t("feedback.title"))
        fb = st.columns([1, 1, 1.3], vertical_alignment="bottom")
        fb[0].button(
            t("feedback.up"),
            icon=":material/thumb_up:",
            width="stretch",
            help=t("feedback.up_help", keys=widgets.SHORTCUTS["up"]),
            shortcut=widgets.SHORTCUTS["up"],
            key=widgets.shortcut_button_key("up"),
            on_click=session.request_action,
            args=(state, "up"),
        )
        fb[1].button(
            t("feedback.down"),
            icon=":material/thumb_down:",
            width="stretch",
            help=t("feedback.down_help", keys=widgets.SHORTCUTS["down"]),
            shortcut=widgets.SHORTCUTS["down"],
            key=widgets.shortcut_button_key("down"),
            on_click=session.request_action,
            args=(state, "down"),
        )
        fb[2].button(
            t("feedback.copy"),
            icon=":material/content_copy:",
            type="primary",
            width="stretch",
            help=t("feedback.copy_help", keys=widgets.SHORTCUTS["copy"]),
            shortcut=widgets.SHORTCUTS["copy"],
            key=widgets.shortcut_button_key("copy"),
            on_click=session.request_action,
            args=(state, "copy"),
        )
        st.text_input(
            t("feedback.note"),
            key="feedback_note",
            placeholder=t("feedback.note_placeholder"),
        )
        if state["rating"] is not None:
            name = t("feedback.up") if state["rating"] == "up" else t("feedback.down")
            st.caption(t("feedback.current", rating=name))
        if widgets.current_verdict(state) == "reject":
            override_panel(state)
    if state["copied"] is not None:
        st.success(t("copy.done"), icon=":material/task_alt:")
        if state["sent_distance"] is not None:
            st.caption(t("copy.distance", distance=state["sent_distance"]))
        st.code(state["copied"], language=None, wrap_lines=True)

    if state["escalation"] is not None:
        st.markdown("#### " + t("escalate.note_title"))
        st.code(state["escalation"], language=None, wrap_lines=True)

    st.markdown("#### " + t("flags.title"))
    widgets.render_flags(result.flags)
    st.markdown("#### " + t("sources.title"))
    widgets.render_sources(svc, result)
    with st.expander(t("provenance.title")):
        widgets.render_provenance(result)


def risk_strip(state: session.State) -> None:
    """Topics, emotion and flag chips, the top source with the passage used, and *Escalate*
    when escalation cues fired: one compact box above the draft."""
    result = state["result"]
    with st.container(border=True):
        widgets.render_risk(result)
        if risk.escalation_cues(result):
            st.button(
                t("escalate.button"),
                icon=":material/escalator_warning:",
                help=t("escalate.help"),
                on_click=session.request_action,
                args=(state, "escalate"),
            )


def override_panel(state: session.State) -> None:
    """The guardrail blocks the text in the box: it goes out only with a stated reason."""
    with st.container(border=True):
        st.markdown(t("override.title"))
        st.caption(t("override.caption"))
        st.text_input(
            t("override.reason"),
            key="override_reason",
            placeholder=t("override.reason_placeholder"),
        )
        st.button(
            t("override.send"),
            icon=":material/warning:",
            on_click=session.request_action,
            args=(state, "override"),
        )


def knowledge_tab(svc: Services) -> None:
    """Search the KB as the copilot does and read whole articles."""
    state = st.session_state
    with st.form("kb_form", border=False):
        c1, c2, c3 = st.columns([4, 1.4, 1], vertical_alignment="bottom")
        query = c1.text_input(
            t("kb.search"), key="kb_query", placeholder=t("kb.search_placeholder")
        )
        language = c2.selectbox(
            t("kb.language"),
            session.LANGUAGE_CHOICES,
            key="kb_language",
            format_func=formatter({**widgets.LANGUAGE_KEYS, "auto": "lang.same_as_query"}),
        )
        searched = c3.form_submit_button(t("kb.search_button"), width="stretch")
    if searched and query.strip():
        state["kb_error"] = None
        with session.reported(state, t("doing.search"), key="kb_error"):
            limit = svc.settings.max_query_chars
            if len(query) > limit:
                raise CopilotError(t("kb.query_too_long", length=len(query), limit=limit))
            lang = None if language == "auto" else language
            found = svc.retriever.search(query, k=8, language=lang)
            state["kb_results"] = (query, list(found.hits), bool(found.abstain))
    if state["kb_error"]:
        st.error(state["kb_error"], icon=widgets.ERROR_ICON)
    elif state["kb_results"] is not None:
        q, hits, abstain = state["kb_results"]
        st.caption(t("kb.results", count=len(hits), query=q))
        if abstain:
            st.warning(t("kb.weak"))
        widgets.render_kb_hits(svc, hits)


def _default_ui_language() -> str:
    """``COPILOT_UI_LANGUAGE``, or English when the settings cannot be read (the page then
    shows why)."""
    try:
        return get_settings().ui_language
    except CopilotError:
        return "en"


def main() -> None:
    """Lay out the page: restore what the URL names (once per session), render the chosen
    page, then save what changed."""
    st.set_page_config(
        page_title="Support Copilot", page_icon=":material/support_agent:", layout="wide"
    )
    st.markdown(widgets.CSS, unsafe_allow_html=True)
    state = st.session_state
    session.init_state(state, ui_language=_default_ui_language())
    svc = load()
    if not state.get("_restored"):
        state["_restored"] = True
        restore.from_query(svc.store, state, st.query_params, t("doing.restore"))
    sidebar(svc)
    page = state["page"]
    if page == "qa":
        qa.render(svc)
    elif page == "insights":
        insights.render(svc)
    elif page == "knowledge":
        knowledge_page.render(svc)
    else:
        workspace_page(svc)
    restore.remember(
        svc.store, state, st.query_params, t("doing.save_ticket"), record=svc.settings.record_drafts
    )


def workspace_page(svc: Services) -> None:
    """The reply workspace with its knowledge-base and activity tabs."""
    st.markdown(
        f'<div class="sc-header"><h1>{html.escape(t("app.title"))}</h1></div>'
        f'<div class="sc-sub">{html.escape(t("app.subtitle"))}</div>',
        unsafe_allow_html=True,
    )
    workspace, knowledge, activity = st.tabs(
        [t("tab.workspace"), t("tab.knowledge"), t("tab.activity")]
    )
    with workspace:
        left, right = st.columns([2, 3], gap="large")
        with left:
            submitted = request_form(svc)
        with right:
            if submitted:
                actions.run_draft(svc, st.session_state)
            actions.run_pending(svc, st.session_state)
            draft_panel(svc)
    with knowledge:
        knowledge_tab(svc)
    with activity:
        render_activity(svc.store)
