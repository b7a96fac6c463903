"""Rendering helpers: pills, violations, flags, sources, provenance and KB hits."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st
from streamlit.components.v1 import html as component_html

from copilot.guard.types import Violation
from copilot.ui import risk
from copilot.ui.i18n import DEFAULT, catalogue, current_language, t, text
from copilot.ui.services import Services
from copilot.ui.state import State
from copilot.understand.signals import Flag

FLAG_ICONS = {
    "escalation": ":material/priority_high:",
    "emotion": ":material/sentiment_dissatisfied:",
    "prompt_injection": ":material/shield:",
    "pii": ":material/lock:",
    "citation_removed": ":material/content_cut:",
    "blocked": ":material/block:",
    "prompt_trimmed": ":material/compress:",
}


FLAG_LABELS = {  # catalogue keys
    "pii": "flag.pii",
    "prompt_injection": "flag.prompt_injection",
    "citation_removed": "flag.citation_removed",
    "prompt_trimmed": "flag.prompt_trimmed",
    "escalation": "flag.escalation",
    "emotion": "flag.emotion",
    "blocked": "flag.blocked",
}

# the understanding layer names a flag's detail in English; these details have a catalogue
# entry ``detail.<kind>.<detail>`` (emotion: ``detail.emotion.<level>``), others show as given
DETAIL_KINDS = ("emotion", "escalation", "prompt_injection")


def flag_detail(flag: Flag, language: str) -> str:
    """The detail of ``flag`` in the interface ``language``: emotion levels, escalation cues
    and injection kinds from the catalogue, anything else (an article id, a PII kind) as given."""
    detail = flag.detail or ""
    if flag.kind not in DETAIL_KINDS or not detail:
        return detail
    name = str(flag.level) if flag.kind == "emotion" and flag.level else detail.replace(" ", "_")
    key = f"detail.{flag.kind}.{name}"
    return text(language, key) if key in catalogue(DEFAULT) else detail


LANGUAGE_KEYS = {"auto": "lang.auto", "en": "lang.en", "ja": "lang.ja", "zh": "lang.zh"}
CHANNEL_KEYS = {
    "chat": "channel.chat",
    "email": "channel.email",
    "ticket": "channel.ticket",
    "social": "channel.social",
}
TONE_KEYS = {"empathetic": "tone.empathetic", "concise": "tone.concise", "formal": "tone.formal"}
#: The interface languages by their own names: the same in every interface language, so the
#: selector's options do not change when it is used (streamlit matches a selectbox's value by
#: its shown text; options renamed by the switch would reset it on the next run).
UI_LANGUAGE_NAMES = {"en": "English", "ja": "日本語", "zh": "中文"}
PAGE_KEYS = {
    "workspace": "page.workspace",
    "qa": "page.qa",
    "insights": "page.insights",
    "knowledge": "page.knowledge",
}
#: Keyboard shortcuts of the draft panel's buttons (Ctrl is Cmd on a Mac). Drafting needs
#: none: Ctrl+Enter in the message box submits the form (Streamlit's own form key). A global
#: Ctrl+Enter is avoided on purpose: it would also fire in the draft editor and redraft.
SHORTCUTS = {
    "recheck": "Ctrl+Shift+K",
    "copy": "Ctrl+Shift+Enter",
    "up": "Ctrl+Shift+Up",
    "down": "Ctrl+Shift+Down",
}


#: Moves the keyboard focus to a text area of the page from a zero-height component frame
#: (same origin as the page). The element may render after the frame, so it retries briefly.
#: Each keyboard shortcut's button: its widget key (the draft panel gives the button this key)
#: and the key pressed with Ctrl+Shift (``KeyboardEvent.code``).
SHORTCUT_BUTTONS = {
    "recheck": ("shortcut_recheck", "KeyK"),
    "copy": ("shortcut_copy", "Enter"),
    "up": ("shortcut_up", "ArrowUp"),
    "down": ("shortcut_down", "ArrowDown"),
}

#: Streamlit's button shortcuts fire a click without leaving the text box, so an edit typed
#: just before Ctrl+Shift+K (or Ctrl+Shift+Enter) could reach the app after the click, or the
#: click could be lost while the edit's own rerun was on its way (seen on a loaded machine).
#: This listener runs first (capture phase, on the page's window). Pressed inside a text box,
#: a shortcut is handled here, in order: the box is left (which commits the edit, with the
#: text as typed), then the button is clicked (its rerun carries that text), then the focus
#: comes back. Outside a text box Streamlit's own shortcut acts (there is no pending edit).
#: The focus reaches a new draft before the rest of the panel has rendered on a slow
#: machine, so a shortcut pressed in the editor waits (up to 10 s) for its button to appear
#: and be enabled; pressed in another text box it acts only when the button is there.
#: Installed once per page, in the page's own realm; ``%s``: the code -> selector map, then
#: the editor's selector.
SHORTCUT_COMMIT_JS = """(function () {
  const page = window.parent;
  if (page.__scShortcutCommit) return;
  page.__scShortcutCommit = true;
  const code = `(function () {
    const buttons = %s;
    const editor = %s;
    window.addEventListener("keydown", function (e) {
      if (!(e.ctrlKey || e.metaKey) || !e.shiftKey || e.altKey) return;
      const selector = buttons[e.code];
      if (!selector) return;
      const el = document.activeElement;
      if (!el || (el.tagName !== "TEXTAREA" && el.tagName !== "INPUT")) return;
      if (!document.querySelector(selector) && !el.matches(editor)) return;
      e.preventDefault();
      e.stopImmediatePropagation();
      el.blur();
      let tries = 0;
      (function press() {
        const button = document.querySelector(selector);
        if (button && !button.disabled) {
          button.click();
          el.focus();
        } else if (++tries < 200) {
          setTimeout(press, 50);
        } else {
          el.focus();
        }
      })();
    }, true);
  })();`;
  const s = page.document.createElement("script");
  s.textContent = code;
  page.document.head.appendChild(s);
})();"""


def shortcut_button_key(name: str) -> str:
    """The widget key of shortcut ``name``'s button (see ``SHORTCUT_BUTTONS``)."""
    return SHORTCUT_BUTTONS[name][0]


#: Put the keyboard focus in a text area (``%s``: its CSS selector, as a JSON string).
FOCUS_JS = """(function () {
  const selector = %s;
  let tries = 0;
  function go() {
    const el = window.parent.document.querySelector(selector);
    if (el) { el.focus(); el.setSelectionRange(0, 0); el.scrollTop = 0; return; }
    if (++tries < 40) setTimeout(go, 50);
  }
  go();
})();"""


def editor_keyboard(key: str, *, focus: bool) -> None:
    """Make the keyboard shortcuts act on the text as typed (see ``SHORTCUT_COMMIT_JS``) and,
    with ``focus``, put the focus in the text area with widget ``key`` (Streamlit marks each
    keyed element's container with the class ``st-key-<key>``). One script, in this order: a
    key pressed once the focus is in the box always finds the listener in place (two frames
    loaded in either order, and a shortcut pressed right after the focus came, could miss it)."""
    buttons = {code: f".st-key-{name} button" for name, code in SHORTCUT_BUTTONS.values()}
    script = SHORTCUT_COMMIT_JS % (json.dumps(buttons), json.dumps(f".st-key-{key} textarea"))
    if focus:
        script += "\n" + FOCUS_JS % json.dumps(f".st-key-{key} textarea")
    component_html(f"<script>\n{script}\n</script>", height=0)


def tone_formatter() -> Callable[[str], str]:
    """``Tone: <name>`` for the tone selectbox, in the language of the current run."""
    language = current_language()

    def show(tone: str) -> str:
        name = text(language, TONE_KEYS[tone]) if tone in TONE_KEYS else tone
        return text(language, "tone.option", tone=name)

    return show


def language_name(code: str) -> str:
    """A reply language's name in the interface language (the code when unknown)."""
    key = LANGUAGE_KEYS.get(code)
    return t(key) if key else code


ERROR_ICON = ":material/error:"


_ANCHOR = re.compile(r"\s*\{#[a-z0-9][a-z0-9-]*\}")


_HEADING = re.compile(r"^(#{1,6})\s+", re.MULTILINE)


_TITLE = re.compile(r"^\s*#\s[^\n]*\n?")  # the H1: already shown as the panel's label


CSS = """
<style>
.block-container {padding-top: 2.2rem; padding-bottom: 2rem; max-width: 1400px;}
.sc-header {display: flex; align-items: baseline; gap: .75rem; margin-bottom: .2rem;}
.sc-header h1 {font-size: 1.65rem; margin: 0; padding: 0;}
.sc-sub {color: #5f6b7a; font-size: .92rem; margin-bottom: .8rem;}
.sc-badges {display: flex; flex-wrap: wrap; gap: .4rem; margin: .1rem 0 .6rem 0;}
.sc-badge {display: inline-block; padding: .14rem .65rem; border-radius: 999px;
  font-size: .8rem; font-weight: 600; border: 1px solid transparent; white-space: nowrap;}
.sc-pass {background: #e7f5ec; color: #12703a; border-color: #b7e1c6;}
.sc-block {background: #fdecea; color: #a4161a; border-color: #f5c2bd;}
.sc-neutral {background: #eef2f7; color: #334155; border-color: #d8dee8;}
.sc-warn {background: #fff4e0; color: #8a4b00; border-color: #f4d6a0;}
.sc-muted {color: #6b7280; font-size: .82rem;}
/* narrow windows (900 px with the sidebar, a side panel >= 420 px): rows of buttons wrap
   instead of squeezing a label to "Re…"; the workspace's two columns stack under 1200 px */
[data-testid="stHorizontalBlock"] {flex-wrap: wrap; row-gap: .5rem;}
[data-testid="stColumn"]:has(> [data-testid="stVerticalBlock"] > [data-testid="stElementContainer"]
  > :is([data-testid="stButton"], [data-testid="stFormSubmitButton"])) {min-width: fit-content;}
[data-testid="stColumn"]:has(> [data-testid="stVerticalBlock"] > [data-testid="stElementContainer"]
  > [data-testid="stSelectbox"]) {min-width: min(100%, 9.5rem);}
[data-testid^="stBaseButton"] p {white-space: normal; overflow-wrap: break-word;}
@media (max-width: 1200px) {
  .block-container {padding-left: 1.2rem; padding-right: 1.2rem;}
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stForm"])
    > [data-testid="stColumn"] {flex: 1 1 100%; width: 100%; min-width: 100%;}
}
@media (max-width: 640px) {
  .block-container {padding: 1rem .6rem;}
  .sc-header h1 {font-size: 1.3rem;}
}
</style>
"""


# ---- rendering -------------------------------------------------------------------
def badge(text: str, kind: str = "neutral") -> str:
    """HTML for one pill; ``text`` is escaped."""
    return f'<span class="sc-badge sc-{kind}">{html.escape(text)}</span>'


def show_messages(state: State) -> None:
    """Show (and clear) the pending error and notice."""
    if state["error"]:
        st.error(state["error"], icon=ERROR_ICON)
        state["error"] = None
    if state["notice"]:
        kind, text = state["notice"]
        {"success": st.success, "info": st.info, "warning": st.warning}[kind](text)
        state["notice"] = None


def current_verdict(state: State) -> str:
    """The verdict of the text now in the box: ``pass``, ``reject`` or ``unchecked`` (edited
    since the last check)."""
    result, text = state["result"], str(state["draft_text"])
    check = state["recheck"]
    if check is not None and check["text"] == text:
        return str(check["verdict"])
    if text == result.draft:
        return "reject" if result.blocked else "pass"
    return "unchecked"


def render_status(state: State) -> None:
    """The verdict of the text in the box, language and flags as badges."""
    result = state["result"]
    verdict = current_verdict(state)
    pills = [
        {
            "pass": badge(t("pill.pass"), "pass"),
            "reject": badge(t("pill.blocked"), "block"),
        }.get(verdict, badge(t("pill.unchecked"), "warn")),
        badge(t("pill.language", language=language_name(result.language))),
        badge(t("pill.attempts", attempts=result.attempts)),
    ]
    if result.abstained:
        pills.append(badge(t("pill.no_article"), "warn"))
    st.markdown(f'<div class="sc-badges">{"".join(pills)}</div>', unsafe_allow_html=True)


def render_risk(result: Any) -> None:
    """The risk strip's content: detected topics with their confidence, the emotion level,
    the flag chips (no repeats), and the top source with its score and the passage used."""
    chips = [
        badge(t("risk.topic", topic=topic, p="" if p is None else f" {p:.0%}"))
        for topic, p in risk.topics(result)
    ]
    level = risk.emotion(result)
    if level is not None:
        chips.append(badge(t("chip.emotion", level=level), "warn" if level >= 2 else "neutral"))
    chips += [badge(chip, "warn") for chip in flag_chips(result.flags, emotion=False)]
    if chips:
        st.markdown(f'<div class="sc-badges">{"".join(chips)}</div>', unsafe_allow_html=True)
    top = risk.top_source(result)
    if top is None:
        st.caption(t("risk.no_source"))
        return
    score = "—" if top["score"] is None else f"{top['score']:.0%}"
    key = "risk.source" if top["cited"] else "risk.source_uncited"
    st.caption(t(key, title=top["title"], id=top["id"], score=score))
    if top["passage"]:
        st.caption(f"> {top['passage']}")


def flag_chips(flags: Sequence[Flag], *, emotion: bool = True) -> list[str]:
    """Short labels for the flags an agent must notice before sending (no repeats);
    ``emotion=False`` leaves the emotion level out (shown apart)."""
    chips: list[str] = []
    for f in flags:
        kind, level = f.kind, f.level
        if kind == "emotion" and isinstance(level, int) and level >= 1 and emotion:
            chips.append(t("chip.emotion", level=level))
        elif kind == "escalation":
            chips.append(t("chip.escalation"))
        elif kind == "prompt_injection":
            chips.append(t("chip.injection"))
        elif kind == "pii":
            chips.append(t("chip.pii"))
    return list(dict.fromkeys(chips))


def render_violations(violations: Sequence[Violation], title: str, warn: bool = False) -> None:
    """Each violation's rule, excerpt and fix hint, in one error (or warning) box."""
    if not violations:
        return
    lines = [f"**{title}**"]
    for v in violations:
        line = f"- **{v.rule}** ({v.severity}): {v.message}"
        if v.excerpt:
            line += f"\n  - {t('violation.excerpt')}: “{v.excerpt}”"
        if v.fix:
            line += f"\n  - {t('violation.fix')}: {v.fix}"
        lines.append(line)
    (st.warning if warn else st.error)("\n".join(lines))


def render_recheck(state: State) -> None:
    """The verdict of the last re-check, if it still matches the editor's text."""
    check = state["recheck"]
    if not check:
        return
    if check["text"] != state["draft_text"]:
        st.caption(t("recheck.changed"))
    elif check["verdict"] == "pass":
        st.success(t("recheck.pass"), icon=":material/verified:")
        render_violations(check["violations"], t("draft.warnings_title"), warn=True)
    else:
        render_violations(check["violations"], t("recheck.blocked"))


def render_flags(flags: Sequence[Flag]) -> None:
    """Input and output signals: escalation, emotion, injection, masked personal data…"""
    if not flags:
        st.caption(t("flags.none"))
        return
    for f in flags:
        kind, level = f.kind, f.level
        key = FLAG_LABELS.get(kind)
        label = t(key) if key else kind.replace("_", " ").capitalize()
        if level not in (None, ""):
            label += " · " + t("flags.level", level=level)
        detail = flag_detail(f, current_language())
        line = f"{FLAG_ICONS.get(kind, ':material/flag:')} **{label}**" + (
            f": {detail}" if detail else ""
        )
        warn = kind in ("escalation", "prompt_injection", "blocked") or (
            kind == "emotion" and isinstance(level, int) and level >= 2
        )
        (st.warning if warn else st.info)(line)


def article_markdown(body: str) -> str:
    """An article body for a panel: title and ``{#anchors}`` removed, headings made smaller."""
    text = _TITLE.sub("", _ANCHOR.sub("", body), count=1)
    return _HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + 3) + " ", text).strip()


def render_sources(services: Services, result: Any) -> None:
    """Cited articles with their titles; each expands to the article text."""
    if not result.sources:
        st.caption(t("sources.none"))
        return
    for i, s in enumerate(result.sources, 1):
        with st.expander(f"{i}. {s['title']}  ·  [{s['id']}]  ·  {s.get('language', '')}"):
            article = services.retriever.article(s["id"], s.get("language") or result.language)
            if article is None:
                st.caption(t("sources.not_found"))
            else:
                st.markdown(article_markdown(article.body))


def render_provenance(result: Any) -> None:
    """Backend, model, prompt and KB versions, tokens and latency per stage."""
    rows = [
        (t("provenance.backend"), result.backend),
        (t("provenance.model"), result.model),
        (t("provenance.prompt_version"), result.prompt_version),
        (t("provenance.prompt_sha256"), (result.prompt_sha256 or "")[:16]),
        (t("provenance.kb_version"), result.kb_version),
        (t("provenance.scenario"), getattr(result, "scenario", "")),
        (t("provenance.tokens"), ", ".join(f"{k} {v}" for k, v in (result.tokens or {}).items())),
    ]
    latency = result.latency_ms
    if isinstance(latency, dict):
        rows += [
            (t("provenance.latency_stage", stage=stage), f"{ms:.1f} ms")
            for stage, ms in latency.items()
        ]
    elif isinstance(latency, int | float):
        rows.append((t("provenance.latency"), f"{latency:.1f} ms"))
    table = "| | |\n|---|---|\n" + "\n".join(
        f"| {name} | `{value}` |" for name, value in rows if value not in (None, "")
    )
    st.markdown(table)


def render_kb_hits(services: Services, hits: Sequence[Any]) -> None:
    """KB search results, each expandable to its whole article."""
    for hit in hits:
        where = str(hit.heading_path or hit.section or "")
        match = t("kb.match", score=f"{hit.score:.0%}")
        title = f"{hit.title}  ·  [{hit.article_id}]  ·  {hit.language}  ·  {match}"
        with st.expander(title):
            if where:
                st.caption(where)
            st.markdown(f"> {hit.snippet}" if hit.snippet else "")
            article = services.retriever.article(hit.article_id, hit.language)
            if article is not None:
                st.divider()
                st.markdown(article_markdown(article.body))
