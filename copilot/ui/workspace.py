"""The agent workspace page: the request form, the draft panel, the knowledge-base and
activity tabs. ``app.py`` calls :func:`main` on every script run."""

from __future__ import annotations

import streamlit as st

from copilot.errors import CopilotError
from copilot.settings import Settings, get_settings
from copilot.ui import actions, widgets
from copilot.ui import state as session
from copilot.ui.activity import render_activity
from copilot.ui.services import Services, build_services, settings_key


@st.cache_resource(show_spinner="Loading the knowledge base…")
def services(key: str, _settings: Settings) -> Services:
    """The copilot (retriever, guardrail, backend) and the store, once per settings."""
    return build_services(_settings)


def load() -> Services:
    """Settings and services, or an error box and a stopped page."""
    try:
        settings = get_settings()
        return services(settings_key(settings), settings)
    except CopilotError as exc:
        st.error(f"Support Copilot cannot start: {exc}", icon=widgets.ERROR_ICON)
        st.stop()
        raise  # unreachable: st.stop() ends the run


def sidebar(svc: Services) -> None:
    """Agent identity and what the copilot runs on."""
    with st.sidebar:
        st.markdown("### :material/support_agent: Support Copilot")
        st.caption("Grounded, cited, policy-checked reply drafts · en / ja / zh")
        st.text_input("Your name (stored with feedback)", key="agent_name")
        st.divider()
        s = svc.settings
        st.markdown("**Running on**")
        st.markdown(
            f"- Backend: `{s.llm_backend}`"
            + (f" · `{s.llm_model}`" if s.llm_backend == "openai" else "")
            + f"\n- Knowledge base: `{s.collection}`\n- Database: `{svc.store.dialect}`"
        )
        if s.llm_backend == "offline":
            st.caption(
                "Offline mode: replies are composed from KB templates; tone rewrite "
                "needs an LLM backend (COPILOT_LLM_BACKEND=openai)."
            )


def request_form(svc: Services) -> bool:
    """The left column: the customer's message and context. True when submitted."""
    with st.form("draft_form", border=False):
        st.text_area(
            "Customer message",
            key="customer_message",
            height=200,
            placeholder="Paste the customer's latest message (English, 日本語 or 中文)…",
        )
        c1, c2 = st.columns(2)
        c1.text_input("Customer name (optional)", key="customer_name")
        c2.selectbox("Channel", session.CHANNELS, key="channel", format_func=str.capitalize)
        st.selectbox(
            "Reply language",
            session.LANGUAGE_CHOICES,
            key="language_choice",
            format_func=lambda c: "Auto-detect" if c == "auto" else session.LANGUAGE_NAMES[c],
        )
        st.text_area(
            "Agent note (private, optional)",
            key="agent_note",
            height=70,
            placeholder="e.g. customer already tried resetting 2FA",
        )
        with st.expander("Earlier thread (optional)"):
            st.text_area(
                "One message per line, prefixed Customer: or Agent:",
                key="thread",
                height=110,
                placeholder="Customer: my deposit is missing\nAgent: could you share the TXID?",
            )
        submitted = st.form_submit_button("Draft reply", type="primary", width="stretch")
    st.caption(f"Messages up to {svc.settings.max_message_chars:,} characters.")
    return submitted


def draft_panel(svc: Services) -> None:
    """The main column: status, editable draft, actions, flags, sources, provenance."""
    state = st.session_state
    result = state["result"]
    if result is None:
        widgets.show_messages(state)
        st.info(
            "Paste a customer message on the left and click **Draft reply**. The draft "
            "cites knowledge-base articles as [faq/…] and is checked against the reply "
            "policy before you see it.",
            icon=":material/lightbulb:",
        )
        return
    widgets.render_status(state)
    if result.blocked:
        widgets.render_violations(result.violations, "Blocked: do not send this draft as it is")
    else:
        widgets.render_violations(result.violations, "Policy warnings (not blocking)", warn=True)
    if result.abstained:
        st.warning("No knowledge-base article matched well: check the facts before sending.")
    st.text_area("Reply draft (editable)", key="draft_text", height=340)
    widgets.render_recheck(state)

    edit = st.columns([1.4, 1.1, 1.1], vertical_alignment="bottom")
    edit[0].button(
        "Re-check edited draft",
        icon=":material/fact_check:",
        width="stretch",
        on_click=session.request_action,
        args=(state, "recheck"),
    )
    edit[1].selectbox(
        "Tone",
        session.TONES,
        key="tone",
        label_visibility="collapsed",
        format_func=lambda t: f"Tone: {t.capitalize()}",
    )
    edit[2].button(
        "Rewrite tone",
        icon=":material/auto_fix_high:",
        width="stretch",
        on_click=session.request_action,
        args=(state, "rewrite"),
    )
    widgets.show_messages(state)  # outcome of the button just clicked, next to the buttons
    with st.container(border=True):
        st.markdown("**Feedback** · stored with the draft to improve the copilot")
        fb = st.columns([1, 1, 1.3], vertical_alignment="bottom")
        fb[0].button(
            "Helpful",
            icon=":material/thumb_up:",
            width="stretch",
            on_click=session.request_action,
            args=(state, "up"),
        )
        fb[1].button(
            "Needs work",
            icon=":material/thumb_down:",
            width="stretch",
            on_click=session.request_action,
            args=(state, "down"),
        )
        fb[2].button(
            "Copy final reply",
            icon=":material/content_copy:",
            type="primary",
            width="stretch",
            on_click=session.request_action,
            args=(state, "copy"),
        )
        st.text_input(
            "Feedback note (optional)",
            key="feedback_note",
            placeholder="What was wrong or missing?",
        )
    if state["copied"] is not None:
        st.success(
            "Final reply stored. Use the copy icon on the box below.", icon=":material/task_alt:"
        )
        st.code(state["copied"], language=None, wrap_lines=True)

    st.markdown("#### Flags")
    widgets.render_flags(result.flags)
    st.markdown("#### Sources")
    widgets.render_sources(svc, result)
    with st.expander("Provenance"):
        widgets.render_provenance(result)


def knowledge_tab(svc: Services) -> None:
    """Search the KB as the copilot does and read whole articles."""
    state = st.session_state
    with st.form("kb_form", border=False):
        c1, c2, c3 = st.columns([4, 1.4, 1], vertical_alignment="bottom")
        query = c1.text_input(
            "Search the knowledge base", key="kb_query", placeholder="e.g. 出金 保留 / 2FA reset"
        )
        language = c2.selectbox(
            "Language",
            session.LANGUAGE_CHOICES,
            key="kb_language",
            format_func=lambda c: "Same as query" if c == "auto" else session.LANGUAGE_NAMES[c],
        )
        searched = c3.form_submit_button("Search", width="stretch")
    if searched and query.strip():
        state["kb_error"] = None
        with session.reported(state, "search the knowledge base", key="kb_error"):
            limit = svc.settings.max_query_chars
            if len(query) > limit:
                raise CopilotError(
                    f"the query is {len(query)} characters, over the limit of {limit} "
                    "(COPILOT_MAX_QUERY_CHARS)"
                )
            lang = None if language == "auto" else language
            found = svc.retriever.search(query, k=8, language=lang)
            state["kb_results"] = (query, list(found.hits), bool(found.abstain))
    if state["kb_error"]:
        st.error(state["kb_error"], icon=widgets.ERROR_ICON)
    elif state["kb_results"] is not None:
        q, hits, abstain = state["kb_results"]
        st.caption(f"{len(hits)} result(s) for “{q}”")
        if abstain:
            st.warning("Weak matches only: the copilot would not answer from these.")
        widgets.render_kb_hits(svc, hits)


def main() -> None:
    """Lay out the page."""
    st.set_page_config(
        page_title="Support Copilot", page_icon=":material/support_agent:", layout="wide"
    )
    st.markdown(widgets.CSS, unsafe_allow_html=True)
    session.init_state(st.session_state)
    svc = load()
    sidebar(svc)
    st.markdown(
        '<div class="sc-header"><h1>Support Copilot</h1></div>'
        '<div class="sc-sub">Agent workspace · drafts are grounded in the knowledge base '
        "and checked against the reply policy. Review before sending.</div>",
        unsafe_allow_html=True,
    )
    workspace, knowledge, activity = st.tabs(["Reply workspace", "Knowledge base", "Activity"])
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
