"""The workspace's pages through AppTest on the fake LLM backend: interface language, feedback,
restore after a reload, the QA page and the Insights page.

The fake backend answers every draft with a fixed, cited reply (the seam is
``copilot.ui.workspace.build_services``); retrieval, the guardrail and the database are real.
Each test has its own database, so its own cached services.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from copilot.draft.citations import strip_citations
from copilot.store import SqlStore
from tests.test_app import APP, EN_MESSAGE, JA_MESSAGE, TIMEOUT, button, texts

EN_REPLY = (
    "Hello,\n\nYou can reset 2FA from the login page: choose Lost 2FA device and follow "
    "the identity check [faq/2fa-reset].\n\nBest regards,"
)
JA_REPLY = (
    "お問い合わせありがとうございます。\n\n出金は通常24時間以内に処理されます"
    "[faq/withdrawal]。\n\nよろしくお願いいたします。"
)


def _reply(messages: list[Any]) -> str:
    """The fake model's answer: Japanese for a Japanese prompt, else English."""
    last = messages[-1].content if messages else ""
    return JA_REPLY if "出金" in last else EN_REPLY


@pytest.fixture
def fake_app(use_kb_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fake backend over the ingested KB with a private database; returns its URL."""
    from copilot.settings import get_settings
    from copilot.ui import workspace as ui

    url = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
    monkeypatch.setenv("COPILOT_LLM_BACKEND", "fake")
    monkeypatch.setenv("COPILOT_DATABASE_URL", url)
    monkeypatch.setenv("COPILOT_EVAL_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("COPILOT_GOLDEN_DIR", str(tmp_path / "golden"))
    get_settings.cache_clear()
    real = ui.build_services

    def build(settings: Any) -> Any:
        svc = real(settings)
        svc.copilot.backend.default = _reply
        return svc

    monkeypatch.setattr(ui, "build_services", build)
    return url


@pytest.fixture
def store_at() -> Iterator[Any]:
    opened: list[SqlStore] = []

    def open_store(url: str) -> SqlStore:
        opened.append(SqlStore.from_url(url))
        return opened[-1]

    yield open_store
    for s in opened:
        s.close()


def start(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def draft(at: AppTest, message: str, submit: str = "Draft reply") -> AppTest:
    at.text_area(key="customer_message").set_value(message)
    button(at, submit).click()
    at.run()
    assert not at.exception, at.exception
    return at


# ---- 1. interface language -------------------------------------------------------------------
def test_interface_language_defaults_from_the_setting_and_switches_in_the_sidebar(
    fake_app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_UI_LANGUAGE", "ja")
    get_settings.cache_clear()
    at = start()
    assert at.session_state["ui_language"] == "ja"
    assert [t.label for t in at.tabs] == ["返信ワークスペース", "ナレッジベース", "履歴"]
    assert "返信を下書き" in [b.label for b in at.button]
    assert at.text_area(key="customer_message").label == "お客様のメッセージ"

    at.selectbox(key="ui_language").set_value("zh")
    at.run()
    assert [t.label for t in at.tabs] == ["回复工作台", "知识库", "记录"]
    at = draft(at, EN_MESSAGE, submit="起草回复")
    shown = texts(at.markdown)
    assert "✓ 护栏：通过" in shown and "语言：英语 · English" in shown
    assert {"有帮助", "需改进", "复制最终回复"} <= {b.label for b in at.button}
    assert "Guardrail: pass" not in shown and "Draft reply" not in [b.label for b in at.button]

    at.selectbox(key="ui_language").set_value("en")
    at.run()
    assert "✓ Guardrail: pass" in texts(at.markdown)


def test_choices_survive_a_switch_of_the_interface_language(fake_app: str) -> None:
    """Switching the interface language relabels every drop-down; what the agent chose in
    the form (channel, reply language) stays chosen, through two switches."""
    at = start()
    at.text_area(key="customer_message").set_value(EN_MESSAGE)
    at.selectbox(key="channel").set_value("email")
    at.selectbox(key="language_choice").set_value("ja")
    button(at, "Draft reply").click()  # form widgets take their values on submit
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="channel").value == "email"
    for language in ("ja", "zh"):
        at.selectbox(key="ui_language").set_value(language)
        at.run()
        assert not at.exception, at.exception
        assert at.selectbox(key="channel").value == "email", language
        assert at.selectbox(key="language_choice").value == "ja", language


def test_a_bad_ui_language_setting_stops_the_page(
    use_kb_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_UI_LANGUAGE", "fr")
    get_settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert "COPILOT_UI_LANGUAGE: 'fr' is not allowed" in texts(at.error)


def test_errors_are_shown_in_the_interface_language(fake_app: str) -> None:
    at = start()
    at.selectbox(key="ui_language").set_value("ja")
    at.run()
    at = draft(at, "   ", submit="返信を下書き")
    assert "メッセージが空です" in texts(at.error)
    assert at.session_state["result"] is None
    assert JA_MESSAGE  # the Japanese ticket is drafted in the restore test below


# ---- 2. feedback that means what it says ------------------------------------------------------
def test_a_rating_switch_replaces_it_and_a_send_is_apart_with_its_edit_distance(
    fake_app: str, store_at: Any
) -> None:
    at = start()
    at.text_input(key="agent_name").set_value("Mika")
    at = draft(at, EN_MESSAGE)
    draft_id = at.session_state["draft_id"]
    at.text_input(key="feedback_note").set_value("too long")
    button(at, "Needs work").click()
    at.run()
    assert "Your rating: Needs work" in texts(at.caption)
    at.text_input(key="feedback_note").set_value("")
    button(at, "Helpful").click()
    at.run()
    assert "Your rating: Helpful" in texts(at.caption)
    store = store_at(fake_app)
    stored = store.get_draft(draft_id)
    assert [(r["agent"], r["rating"], r["reason"]) for r in stored["ratings"]] == [
        ("Mika", "up", None)
    ]
    assert stored["feedback"] == [] and stored["sent"] == []  # a rating is not a send

    edited = at.session_state["result"].draft.replace("Hello,", "Hello Sam,", 1)
    at.text_area(key="draft_text").set_value(edited)
    button(at, "Copy final reply").click()
    at.run()
    assert not at.error, texts(at.error)
    (sent,) = store.get_draft(draft_id)["sent"]
    assert (sent["final_text"], sent["edit_distance"], sent["agent"]) == (edited, 4, "Mika")
    assert "4 character(s) changed" in texts(at.caption)
    (row,) = store.activity(5)
    assert (row["rating"], row["sent"], row["edit_distance"]) == ("up", 1, 4)
    totals = store.feedback_totals()
    assert (totals["up"], totals["down"], totals["sent"]) == (1, 0, 1)
    assert store.get_draft(draft_id)["ratings"][0]["rating"] == "up"  # sending kept the rating

    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Helpful / needs work"], metrics["Sent"]) == ("1 / 0", "1")
    table = at.dataframe[0].value
    assert list(table["Rating"]) == ["Helpful"] and list(table["Edit distance"]) == [4]


# ---- 3. nothing lost ----------------------------------------------------------------------------
def test_the_ticket_is_restored_after_a_reload_from_the_url(fake_app: str, store_at: Any) -> None:
    at = start()
    at.text_input(key="agent_name").set_value("Aiko")
    at.selectbox(key="ui_language").set_value("ja")
    at.run()
    at.text_area(key="thread").set_value("Customer: 出金したい")
    at.text_input(key="customer_name").set_value("山田")
    at = draft(at, JA_MESSAGE, submit="返信を下書き")
    draft_id = at.session_state["draft_id"]
    edited = at.session_state["result"].draft + "\n\n担当: Aiko"
    at.text_area(key="draft_text").set_value(edited)
    at.run()
    assert at.query_params["draft"] == [draft_id] or at.query_params["draft"] == draft_id
    saved = store_at(fake_app).get_ticket_state(draft_id)
    assert saved is not None and saved["state"]["draft_text"] == edited

    # a reload: a new session with only the URL
    again = start({"draft": draft_id, "agent": "Aiko", "lang": "ja"})
    state = again.session_state
    assert state["draft_id"] == draft_id and state["agent_name"] == "Aiko"
    assert again.text_area(key="draft_text").value == edited
    assert again.text_area(key="customer_message").value == JA_MESSAGE
    assert again.text_input(key="customer_name").value == "山田"
    assert again.text_area(key="thread").value == "Customer: 出金したい"
    assert state["ui_language"] == "ja" and "返信を下書き" in [b.label for b in again.button]
    assert "編集済み: 未確認" in texts(again.markdown)  # the pill follows the restored text

    # the agent's language persists: a link with only the agent's name opens in Japanese
    fresh = start({"agent": "Aiko"})
    assert fresh.session_state["ui_language"] == "ja"
    assert store_at(fake_app).get_agent_settings("Aiko")["ui_language"] == "ja"


def test_an_unknown_draft_in_the_url_is_a_clear_error(fake_app: str) -> None:
    at = start({"draft": "nope"})
    assert "no saved draft with id 'nope'" in texts(at.error)
    assert at.session_state["result"] is None


# ---- 4. the QA page -----------------------------------------------------------------------------
def write_run(folder: Path, started: str, scores: dict[str, float]) -> Path:
    """A report folder as ``eval --report`` writes it (report.json with cases and aggregates)."""
    import json

    from copilot.evaluation.cases import aggregate

    cases = [
        {
            "id": cid,
            "language": cid.split("-")[1],
            "category": "withdrawal" if cid.endswith("1") else "2fa",
            "score": score,
            "metrics": {"semantic": score, "chrf": 40.0, "citations": 1.0, "verdict": 1.0},
            "meta": {"backend": "offline"},
        }
        for cid, score in scores.items()
    ]
    folder.mkdir(parents=True)
    report = {
        "meta": {"started_at": started, "backend": "offline", "run_key": folder.name},
        "aggregates": aggregate(cases),
        "cases": cases,
    }
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return folder


def test_qa_page_lists_runs_charts_them_and_highlights_regressions(
    fake_app: str, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    write_run(reports / "ci" / "old", "2026-12-01T10:00:00+00:00", {"g-en-1": 0.8, "g-ja-2": 0.7})
    write_run(reports / "ci" / "new", "2026-12-05T10:00:00+00:00", {"g-en-1": 0.6, "g-ja-2": 0.72})
    (reports / "broken").mkdir()
    (reports / "broken" / "report.json").write_text("{not json", encoding="utf-8")
    at = start()
    at.radio(key="page").set_value("qa")
    at.run()
    assert not at.exception, at.exception
    runs = at.dataframe[0].value
    assert list(runs["Run"]) == ["ci/new", "ci/old"]
    assert "broken: cannot be used" in texts(at.warning)
    assert at.selectbox(key="qa_run").value == "ci/new"
    assert at.selectbox(key="qa_baseline").value == "ci/old"
    assert len(at.get("vega_lite_chart")) == 2  # per language, per category
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Regressions"], metrics["Improvements"]) == ("1", "0")
    assert "Regressed: g-en-1" in texts(at.error)
    diff = at.dataframe[-1].value
    assert list(diff["Case"]) == ["g-en-1", "g-ja-2"]
    assert list(diff["Status"]) == ["regression", ""]
    # the highlighting's helper columns are not shown
    columns = json.loads(at.dataframe[-1].proto.columns)
    assert columns["_regression"] == columns["_improvement"] == {"hidden": True}, columns

    at.number_input(key="qa_threshold").set_value(0.5)
    at.run()
    assert {m.label: m.value for m in at.metric}["Regressions"] == "0"
    at.selectbox(key="ui_language").set_value("zh")
    at.run()
    assert "回退：g-en-1" not in texts(at.error)  # threshold 0.5: nothing regressed
    assert {m.label for m in at.metric} >= {"回退", "改进"}


def test_qa_page_adds_a_sent_reply_to_a_new_golden_file(fake_app: str, tmp_path: Path) -> None:
    from copilot.evaluation.cases import load_golden

    at = draft(start(), EN_MESSAGE)
    button(at, "Copy final reply").click()
    at.run()
    assert not at.error, texts(at.error)
    # the golden case takes the sent reply as stored (citations kept: they are its sources);
    # what the agent copied is the same text without the markers
    sent_text = at.session_state["draft_text"]
    assert at.session_state["copied"] == strip_citations(sent_text) != sent_text
    at.radio(key="page").set_value("qa")
    at.run()
    assert "No eval run in" in texts(at.info)
    at.text_input(key="qa_case_id").set_value("sent-2fa-1")
    at.text_input(key="qa_category").set_value("2fa")
    at.text_input(key="qa_must_include").set_value("login page, 2FA")
    button(at, "Add to golden set").click()
    at.run()
    assert not at.error, texts(at.error)
    path = tmp_path / "golden" / "sent-2fa-1.jsonl"
    assert f"Golden case written to {path}" in texts(at.success)
    (case,) = load_golden(path).cases
    assert (case.id, case.language, case.category) == ("sent-2fa-1", "en", "2fa")
    assert case.customer_message == EN_MESSAGE and case.golden_reply == sent_text
    assert case.must_include == ("login page", "2FA")
    before = path.read_bytes()

    button(at, "Add to golden set").click()  # the same id again: refused, nothing overwritten
    at.run()
    assert "already exists: golden files are never overwritten" in texts(at.error)
    assert path.read_bytes() == before
    at.text_input(key="qa_case_id").set_value("sent 2fa")  # the loader's own check
    at.text_input(key="qa_category").set_value("")
    button(at, "Add to golden set").click()
    at.run()
    shown = texts(at.error)
    assert "not a valid golden case" in shown and "field 'category'" in shown
    assert sorted(p.name for p in path.parent.iterdir()) == ["sent-2fa-1.jsonl"]


# ---- 5. the Insights page -------------------------------------------------------------------------
def _stored_result(language: str, **extra: Any) -> dict[str, Any]:
    return {
        "draft": "Hello,\n\nPlease see the article.\n\nBest regards,",
        "language": language,
        "sources": [],
        "verdict": "pass",
        "violations": [],
        "flags": [],
        "blocked": False,
        "abstained": False,
        **extra,
    }


def test_insights_page_shows_gaps_guardrail_hits_and_overrides(
    fake_app: str, store_at: Any
) -> None:
    store = store_at(fake_app)
    abstained = store.save_draft(
        _stored_result("ja", abstained=True, retrieval=[{"id": "faq/staking", "score": 0.1}]),
        {"customer_message": "ステーキングの利回りは？ mail me at taro@example.jp"},
        origin="ui",
    )
    low = store.save_draft(
        _stored_result("ja", retrieval=[{"id": "faq/staking", "score": 0.3}]),
        {"customer_message": "ステーキングを解除したい"},
        origin="ui",
    )
    rejected = _stored_result(
        "en",
        verdict="reject",
        blocked=True,
        violations=[
            {
                "rule": "credential_request",
                "severity": "block",
                "span": None,
                "excerpt": "2FA",
                "message": "asks for a code",
                "fix": "never ask",
            }
        ],
        retrieval=[{"id": "faq/2fa-reset", "score": 0.9}],
    )
    overridden = store.save_draft(rejected, {"customer_message": "reset my 2FA"}, origin="ui")
    store.save_sent(
        overridden,
        "Completely rewritten reply text by the agent, nothing like the draft at all.",
        verdict="reject",
        rules=["credential_request"],
        override_reason="legal approved the wording",
        agent="Mika",
    )
    assert abstained and low
    at = start()
    at.radio(key="page").set_value("insights")
    at.run()
    assert not at.exception, at.exception
    gaps = at.dataframe[0].value
    assert list(gaps["Topic (closest article)"]) == ["faq/staking", "faq/2fa-reset"]
    assert list(gaps["Drafts"]) == [2, 1]
    assert list(gaps["Abstained"]) == [1, 0] and list(gaps["Low score"]) == [1, 0]
    assert list(gaps["Heavily edited"]) == [0, 1]
    examples = " ".join(gaps["Examples (masked)"])
    assert "taro@example.jp" not in examples and "ステーキング" in examples
    hits = at.dataframe[1].value
    assert list(hits["Rule"]) == ["credential_request"]
    assert (list(hits["Drafts"]), list(hits["Sent texts"])) == ([1], [1])
    overrides = at.dataframe[2].value
    assert list(overrides["Reason"]) == ["legal approved the wording"]
    assert list(overrides["Agent"]) == ["Mika"]
    assert len(at.get("vega_lite_chart")) == 2

    at.slider(key="insights_low").set_value(0.2)  # 0.3 is no longer low
    at.run()
    assert list(at.dataframe[0].value["Drafts"]) == [1, 1]


def test_insights_page_on_an_empty_database(fake_app: str) -> None:
    at = start()
    at.radio(key="page").set_value("insights")
    at.run()
    assert not at.exception and "No drafts in the database yet." in texts(at.info)


def test_the_shortcut_listener_comes_before_the_focus_in_one_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shortcut pressed as soon as the focus is in the new draft must find the listener: both
    are one script, listener first; each shortcut's button is found by its widget key."""
    from copilot.ui import widgets

    shown: list[str] = []
    monkeypatch.setattr(widgets, "component_html", lambda body, height: shown.append(body))
    widgets.editor_keyboard("draft_text", focus=True)
    widgets.editor_keyboard("draft_text", focus=False)
    first, later = shown
    assert first.index("__scShortcutCommit") < first.index("setSelectionRange")
    assert "setSelectionRange" not in later and "__scShortcutCommit" in later
    for name, (key, code) in widgets.SHORTCUT_BUTTONS.items():
        assert f'"{code}": ".st-key-{key} button"' in first
        assert widgets.SHORTCUTS[name].split("+")[-1] in code  # K/KeyK, Enter, Up/ArrowUp...
