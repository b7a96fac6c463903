"""The message catalogues: complete in every language, and every label in code comes from them.

* each catalogue has the same keys as English and the same ``{placeholders}`` per key;
* every key the UI code names (``t("key")``, ``text(lang, "key")``, or a ``"area.name"``
  literal in a key table) is in the catalogues;
* no streamlit call in ``copilot/ui`` is given a hard-coded label (a text literal with words).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from copilot.files import ConfigError
from copilot.ui import i18n

ROOT = Path(__file__).resolve().parent.parent
UI = ROOT / "copilot" / "ui"

# streamlit calls whose first argument is shown to the agent
LABELLED = {
    "button",
    "caption",
    "checkbox",
    "download_button",
    "error",
    "expander",
    "form_submit_button",
    "header",
    "info",
    "markdown",
    "metric",
    "multiselect",
    "radio",
    "selectbox",
    "spinner",
    "subheader",
    "success",
    "tabs",
    "text_area",
    "text_input",
    "title",
    "toggle",
    "warning",
    "write",
}
KEY_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$")
WORDS = re.compile(r"[A-Za-z]{2,}|[\u3040-\u30ff\u4e00-\u9fff]")
TAGS = re.compile(r"<[^>]*>|:material/[a-z_]+:|\*\*|#+")


def ui_sources() -> list[Path]:
    return sorted(p for p in UI.rglob("*.py") if "__pycache__" not in p.parts)


def keys_used(tree: ast.AST, prefixes: set[str]) -> set[str]:
    """Catalogue keys the code names."""
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            args = node.args
            arg = args[0] if name == "t" and args else args[1] if name == "text" else None
            if arg is not None and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                used.add(arg.value)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and KEY_RE.match(node.value)
            and node.value.split(".")[0] in prefixes
        ):
            used.add(node.value)
    return used


def hard_coded_labels(path: Path) -> list[str]:
    """``st.xxx("Some words")`` / ``col.xxx(f"Words {x}")`` calls with words in a literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in LABELLED or not node.args:
            continue
        if getattr(node.func.value, "id", "") in ("log", "logger", "logging"):
            continue
        first = node.args[0]
        parts: list[str] = []
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            parts = [first.value]
        elif isinstance(first, ast.JoinedStr):
            parts = [v.value for v in first.values if isinstance(v, ast.Constant)]
        elif isinstance(first, ast.List | ast.Tuple):
            parts = [e.value for e in first.elts if isinstance(e, ast.Constant)]
        shown = TAGS.sub(" ", " ".join(str(p) for p in parts))
        if WORDS.search(shown):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {shown.strip()[:60]!r}")
    return found


def test_every_language_has_every_key_with_the_same_placeholders() -> None:
    english = i18n.catalogue("en")
    assert len(english) > 100
    for language in i18n.UI_LANGUAGES:
        messages = i18n.catalogue(language)
        assert sorted(set(english) - set(messages)) == [], f"missing in {language}.yaml"
        assert sorted(set(messages) - set(english)) == [], f"not in en.yaml ({language})"
        for key, template in english.items():
            assert i18n.fields_of(messages[key]) == i18n.fields_of(template), (language, key)


def test_every_key_the_code_uses_is_in_the_catalogues() -> None:
    english = i18n.catalogue("en")
    prefixes = {k.split(".")[0] for k in english}
    used: set[str] = set()
    for path in ui_sources():
        used |= keys_used(ast.parse(path.read_text(encoding="utf-8")), prefixes)
    assert len(used) > 100, "the scan found too few keys: is it still reading the UI?"
    assert sorted(used - set(english)) == []


def test_no_label_is_hard_coded_in_the_pages() -> None:
    found = [line for path in ui_sources() for line in hard_coded_labels(path)]
    assert found == []


def test_the_scans_catch_a_missing_key_and_a_hard_coded_label(tmp_path: Path) -> None:
    page = tmp_path / "page.py"
    page.write_text(
        'import streamlit as st\nst.button(t("form.submit"))\nst.caption(t("form.nowhere"))\n'
        'st.error(f"Could not {x}")\nst.markdown(f\'<div class="a">{y}</div>\')\n',
        encoding="utf-8",
    )
    prefixes = {k.split(".")[0] for k in i18n.catalogue("en")}
    used = keys_used(ast.parse(page.read_text(encoding="utf-8")), prefixes)
    assert used - set(i18n.catalogue("en")) == {"form.nowhere"}
    monkey_root = hard_coded_labels.__globals__["ROOT"]
    try:
        hard_coded_labels.__globals__["ROOT"] = tmp_path
        assert [x.split(": ", 1)[1] for x in hard_coded_labels(page)] == ["'Could not'"]
    finally:
        hard_coded_labels.__globals__["ROOT"] = monkey_root


def test_a_catalogue_missing_a_key_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "i18n"
    folder.mkdir()
    for language in i18n.UI_LANGUAGES:
        shutil.copy(i18n.FOLDER / f"{language}.yaml", folder / f"{language}.yaml")
    ja = folder / "ja.yaml"
    ja.write_text(
        "\n".join(
            line
            for line in ja.read_text(encoding="utf-8").splitlines()
            if not line.strip().startswith("form.submit:")
        ),
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "FOLDER", folder)
    i18n.catalogue.cache_clear()
    try:
        with pytest.raises(AssertionError, match=r"missing in ja\.yaml"):
            test_every_language_has_every_key_with_the_same_placeholders()
        # at run time the page falls back to English rather than failing
        assert i18n.text("ja", "form.submit") == "Draft reply"
    finally:
        i18n.catalogue.cache_clear()


def test_text_fills_placeholders_and_falls_back() -> None:
    assert i18n.text("ja", "pill.attempts", attempts=2) == "試行: 2"
    assert i18n.text("zh", "form.submit") == "起草回复"
    assert i18n.text("fr", "form.submit") == "Draft reply"
    assert i18n.text("en", "no.such_key") == "no.such_key"
    assert i18n.text("en", "pill.attempts", wrong=1) == "Attempts: {attempts}"
    assert i18n.t("form.submit") == "Draft reply"  # outside a page run: English


def test_a_malformed_catalogue_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "i18n"
    folder.mkdir()
    (folder / "en.yaml").write_text(
        'version: 1\nmessages:\n  a.b: "ok"\n  a.c: ""\n', encoding="utf-8"
    )
    monkeypatch.setattr(i18n, "FOLDER", folder)
    i18n.catalogue.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"en\.yaml: line 4: 'a\.c': must be non-empty"):
            i18n.catalogue("en")
        with pytest.raises(ConfigError, match="not one of en, ja, zh"):
            i18n.catalogue("fr")
    finally:
        i18n.catalogue.cache_clear()


@pytest.mark.parametrize("language", ["ja", "zh"])
def test_flag_details_from_the_understanding_layer_are_shown_in_the_interface_language(
    language: str,
) -> None:
    """Emotion levels, escalation cues and injection kinds come from the understanding layer
    in English; each has a catalogue entry, so a Japanese or Chinese page shows no English."""
    from copilot.ui.widgets import flag_detail
    from copilot.understand import signals
    from copilot.understand.signals import Flag

    english = i18n.catalogue("en")
    flags = [
        Flag("emotion", None, name, level)
        for level, name in enumerate(("slightly unhappy", "angry", "very agitated"), 1)
    ]
    flags += [Flag("escalation", (0, 1), d) for d, _ in signals.ESCALATION_CUES]
    flags += [Flag("prompt_injection", (0, 1), d) for d, _ in signals.INJECTION_CUES]
    for flag in flags:
        shown = flag_detail(flag, language)
        assert shown != flag.detail, f"{flag.kind} {flag.detail!r} is not translated"
        assert shown not in english.values(), shown
    # a detail without an entry (an article id) shows as given
    assert flag_detail(Flag("citation_removed", None, "[3] removed"), language) == "[3] removed"


def test_the_emotion_detail_follows_the_level_not_the_english_name() -> None:
    from copilot.ui.widgets import flag_detail
    from copilot.understand.signals import Flag

    assert flag_detail(Flag("emotion", None, "slightly unhappy", 1), "ja") == "やや不満"
    assert flag_detail(Flag("emotion", None, "anything", 3), "zh") == "非常激动"
