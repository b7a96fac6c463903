"""The workspace's labels in English, Japanese and Chinese: one message catalogue per language
(``copilot/ui/i18n/{en,ja,zh}.yaml``), read once with :func:`copilot.files.read_versioned`.

Every label the pages show goes through :func:`t` (the current session's interface language)
or :func:`text` (a given language). Placeholders are ``{name}`` (``str.format``). A key missing
in a language falls back to English at run time and is logged; ``tests/test_i18n.py`` fails on
it, on differing placeholders, and on a key the code uses that no catalogue has.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from copilot.errors import Problem
from copilot.files import ConfigError, line_of, read_versioned

log = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent
UI_LANGUAGES = ("en", "ja", "zh")
DEFAULT = "en"


@cache
def catalogue(language: str) -> dict[str, str]:
    """The messages of ``language`` (``en``, ``ja`` or ``zh``); :class:`ConfigError` naming the
    file and line of anything malformed."""
    if language not in UI_LANGUAGES:
        raise ConfigError(
            Problem(str(FOLDER), 1, f"UI language {language!r} is not one of en, ja, zh")
        )
    path = FOLDER / f"{language}.yaml"
    data = read_versioned(path, "message catalogue").data
    messages = data.get("messages")
    if not isinstance(messages, dict):
        raise ConfigError(Problem(str(path), line_of(data), "'messages:' must be a mapping"))
    out: dict[str, str] = {}
    for key, value in messages.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            raise ConfigError(
                Problem(str(path), line_of(messages, key), f"{key!r}: must be non-empty text")
            )
        out[key] = value
    return out


def fields_of(template: str) -> set[str]:
    """The ``{name}`` placeholders of a message."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def text(language: str, key: str, /, **values: Any) -> str:
    """The message ``key`` in ``language`` (English when that language lacks it; the key
    itself when no catalogue has it), filled with ``values``."""
    lang = language if language in UI_LANGUAGES else DEFAULT
    template = catalogue(lang).get(key)
    if template is None:
        log.warning("message %r missing in the %s catalogue", key, lang)
        template = catalogue(DEFAULT).get(key, key)
    if not values:
        return template
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        log.warning("message %r in %s: placeholders do not match %s", key, lang, sorted(values))
        return template


def current_language() -> str:
    """The interface language of the running session (English outside a page run)."""
    try:
        import streamlit as st
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        if get_script_run_ctx(suppress_warning=True) is None:
            return DEFAULT
        lang = st.session_state.get("ui_language")
    except Exception:  # no session (plain import, a unit test)
        return DEFAULT
    return str(lang) if lang in UI_LANGUAGES else DEFAULT


def t(key: str, /, **values: Any) -> str:
    """The message ``key`` in the session's interface language."""
    return text(current_language(), key, **values)


def formatter(keys: Mapping[str, str], **values: Any) -> Callable[[str], str]:
    """A ``format_func`` for a selectbox or radio: each option's message from ``keys`` in the
    language of the current run (bound now: streamlit may call it outside the run)."""
    language = current_language()
    return lambda option: text(language, keys[option], **values) if option in keys else option
