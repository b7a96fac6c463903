"""The Streamlit workspace through AppTest: real copilot over the session's ingested KB.

Services are cached per settings by ``@st.cache_resource`` (process-wide), so
tests that share a database URL share one copilot; tests that need their own
backend use their own URL. Assertions read rendered elements, session state and
the database the app wrote.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from copilot.draft.citations import strip_citations
from copilot.store import SqlStore

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 120  # first run loads the index and the embedding model
KANA = re.compile(r"[\u3040-\u30ff]")

JA_MESSAGE = "出金申請をしてから2日経ちますが、まだ着金していません。状況を確認してもらえますか？"
EN_MESSAGE = "I reset my phone and lost my authenticator app. How do I reset 2FA on my account?"


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database (and so one cached copilot) for the tests of this module that share it."""
    return f"sqlite:///{tmp_path_factory.mktemp('app-db') / 'copilot.db'}"


@pytest.fixture
def app_env(use_kb_store: Path, shared_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Offline backend over the ingested KB, writing to the shared database; returns its URL."""
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_LLM_BACKEND", "offline")
    monkeypatch.setenv("COPILOT_DATABASE_URL", shared_db)
    get_settings.cache_clear()
    return shared_db


@pytest.fixture
def own_db(use_kb_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private database URL (so a private cached copilot); the caller sets the backend."""
    from copilot.settings import get_settings

    url = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
    monkeypatch.setenv("COPILOT_DATABASE_URL", url)
    get_settings.cache_clear()
    return url


@pytest.fixture
def store_of() -> Iterator[Any]:
    """Open stores on the app's database; closed afterwards."""
    opened: list[SqlStore] = []

    def open_store(url: str) -> SqlStore:
        opened.append(SqlStore.from_url(url))
        return opened[-1]

    yield open_store
    for s in opened:
        s.close()


def start() -> AppTest:
    """A fresh session of the app, run once."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str) -> Any:
    """The (form submit) button with this label."""
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; have {[b.label for b in at.button]}"
    return found[0]


def draft(at: AppTest, message: str, **fields: str) -> AppTest:
    """Fill the form and click "Draft reply"."""
    at.text_area(key="customer_message").set_value(message)
    for key, value in fields.items():
        (at.selectbox if key in ("channel", "language_choice") else at.text_input)(
            key=key
        ).set_value(value)
    button(at, "Draft reply").click()
    at.run()
    assert not at.exception, at.exception
    return at


def editor(at: AppTest) -> str:
    """The text of the editable draft."""
    return str(at.text_area(key="draft_text").value or "")


def texts(elements: Any) -> str:
    """All values of a list of rendered elements, joined."""
    return "\n".join(str(e.value) for e in elements)


def test_first_render_shows_the_empty_workspace(app_env: str) -> None:
    at = start()
    assert "Paste a customer message" in texts(at.info)
    assert [t.label for t in at.tabs] == ["Reply workspace", "Knowledge base", "Activity"]
    assert at.text_area(key="customer_message").value == ""
    assert at.session_state["result"] is None
    assert not at.error


def test_empty_message_is_an_error_not_a_traceback(app_env: str) -> None:
    at = draft(start(), "   ")
    assert "message is empty" in texts(at.error)
    assert at.session_state["result"] is None


def test_japanese_draft_is_rendered_cited_checked_and_stored(app_env: str, store_of: Any) -> None:
    at = start()
    at.text_area(key="thread").set_value(
        "Customer: 出金したい\nAgent: 承知しました。\n少々お待ちください。"
    )
    draft(at, JA_MESSAGE, customer_name="山田")

    result = at.session_state["result"]
    shown = editor(at)
    assert shown == result.draft and shown.strip()
    assert KANA.search(shown), shown
    assert result.language == "ja"
    badges = texts(at.markdown)
    assert "Language: Japanese" in badges
    # the offline drafter's reply is grounded in the KB and within the policy
    assert result.verdict == "pass" and not result.blocked, result.violations
    assert "Guardrail: pass" in badges and "Blocked by guardrail" not in badges
    assert result.sources, "a withdrawal question should be grounded in the KB"
    labels = [e.label for e in at.expander]
    for s in result.sources:
        assert any(f"[{s['id']}]" in label and s["title"] in label for label in labels)
    assert "Provenance" in labels
    assert f"`{result.backend}`" in badges and f"`{result.kb_version}`" in badges

    stored = store_of(app_env).get_draft(at.session_state["draft_id"])
    assert stored is not None
    assert stored["result"]["draft"] == shown
    assert stored["request"]["customer_message"] == JA_MESSAGE
    assert stored["request"]["customer_name"] == "山田"
    assert stored["request"]["history"] == [
        {"role": "customer", "text": "出金したい"},
        {"role": "agent", "text": "承知しました。\n少々お待ちください。"},
    ]


def test_thumbs_up_stores_a_rating_with_agent_and_note(app_env: str, store_of: Any) -> None:
    at = start()
    at.text_input(key="agent_name").set_value("Mika")
    draft(at, EN_MESSAGE)
    edited = editor(at) + "\n\nP.S. Edited by the agent."
    at.text_area(key="draft_text").set_value(edited)
    at.text_input(key="feedback_note").set_value("good facts")
    button(at, "Helpful").click()
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert "feedback saved" in texts(at.success)

    stored = store_of(app_env).get_draft(at.session_state["draft_id"])
    assert stored is not None
    # a rating only: one per agent, with the note as its reason; the edited text is not a
    # send (nothing was copied) and no legacy feedback row mixes the two
    assert [(r["agent"], r["rating"], r["reason"]) for r in stored["ratings"]] == [
        ("Mika", "up", "good facts")
    ]
    assert stored["sent"] == [] and stored["feedback"] == []
    assert at.session_state["draft_text"] == edited
    row = store_of(app_env).recent(1)[0]
    assert (row["id"], row["origin"]) == (at.session_state["draft_id"], "ui")


def test_thumbs_down_and_copy_final_reply(app_env: str, store_of: Any) -> None:
    at = draft(start(), EN_MESSAGE)
    assert not at.session_state["result"].blocked, "the 2FA draft must pass to be sendable"
    button(at, "Needs work").click()
    at.run()
    button(at, "Copy final reply").click()
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    final = editor(at)
    # what the agent copies is customer-ready: no citation markers; the record keeps them
    assert "[faq/" in final and "[faq/" not in at.code[0].value
    assert at.code[0].value == strip_citations(final)
    stored = store_of(app_env).get_draft(at.session_state["draft_id"])
    assert stored is not None
    # copying is a send, not a rating: the "needs work" rating stays the only one
    assert [r["rating"] for r in stored["ratings"]] == ["down"]
    (sent,) = stored["sent"]
    assert (sent["final_text"], sent["edited"], sent["verdict"]) == (final, False, "pass")
    assert sent["override_reason"] is None


BYPASS = (
    "\n\nTo speed this up, reply with your 2FA code and your 12-word seed phrase. "
    "Our VIP members also earn a guaranteed 20% profit every month."
)


def test_a_blocked_edit_cannot_be_copied_and_the_pill_follows_the_box(
    app_env: str, store_of: Any
) -> None:
    at = draft(start(), EN_MESSAGE)
    assert "✓ Guardrail: pass" in texts(at.markdown)
    at.text_area(key="draft_text").set_value(editor(at) + BYPASS)
    at.run()
    assert "Edited: not checked yet" in texts(at.markdown)
    assert "✓ Guardrail: pass" not in texts(at.markdown)

    button(at, "Copy final reply").click()
    at.run()
    assert not at.exception
    assert "Not copied" in texts(at.error) and "credential_request" in texts(at.error)
    assert at.session_state["copied"] is None and not at.code
    assert "✕ Blocked by guardrail" in texts(at.markdown)
    assert at.session_state["recheck"]["verdict"] == "reject"
    stored = store_of(app_env).get_draft(at.session_state["draft_id"])
    assert stored is not None and stored["sent"] == [] and stored["feedback"] == []

    # undo the edit: the pill follows the text again, and copying works
    at.text_area(key="draft_text").set_value(at.session_state["result"].draft)
    at.run()
    assert "✓ Guardrail: pass" in texts(at.markdown)
    button(at, "Copy final reply").click()
    at.run()
    assert not at.error, texts(at.error)
    stored = store_of(app_env).get_draft(at.session_state["draft_id"])
    assert stored is not None and [x["verdict"] for x in stored["sent"]] == ["pass"]


def test_recheck_blocks_an_edited_draft_that_breaks_the_policy(app_env: str) -> None:
    at = draft(start(), EN_MESSAGE)
    button(at, "Re-check edited draft").click()
    at.run()
    # Unedited, the re-check agrees with the check made when drafting.
    assert at.session_state["recheck"]["verdict"] == at.session_state["result"].verdict
    if at.session_state["result"].verdict == "pass":
        assert "passes the guardrail" in texts(at.success)
    bad = (
        editor(at)
        + "\n\nPlease reply with your password and the 6-digit 2FA code so we can fix it."
    )
    at.text_area(key="draft_text").set_value(bad)
    button(at, "Re-check edited draft").click()
    at.run()
    assert not at.exception
    check = at.session_state["recheck"]
    assert check["verdict"] == "reject" and check["violations"]
    shown = texts(at.error)
    assert "Re-check: the edited draft is blocked" in shown
    for v in check["violations"]:
        assert v.rule in shown and v.fix in shown


def test_tone_rewrite_is_hidden_offline_with_the_reason(app_env: str) -> None:
    at = draft(start(), EN_MESSAGE)
    assert "Rewrite tone" not in [b.label for b in at.button]
    assert not [s for s in at.selectbox if s.key == "tone"]
    assert "Tone rewrite is hidden: the offline backend cannot rewrite" in texts(at.caption)
    assert "Re-check edited draft" in [b.label for b in at.button]


def test_each_shortcut_button_has_the_key_the_page_listener_clicks(app_env: str) -> None:
    """The page's shortcut listener finds each button by its widget key (SHORTCUT_BUTTONS);
    a button without it would leave that shortcut to Streamlit's own handler."""
    from copilot.ui.widgets import SHORTCUT_BUTTONS, SHORTCUTS

    at = draft(start(), EN_MESSAGE)
    by_key = {b.key: b for b in at.button}
    for name, (key, _code) in SHORTCUT_BUTTONS.items():
        assert key in by_key, (name, sorted(k for k in by_key if k))
        assert by_key[key].proto.shortcut == SHORTCUTS[name].lower()


def test_too_long_message_is_an_error(own_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_MAX_MESSAGE_CHARS", "200")
    get_settings.cache_clear()
    at = draft(start(), "Where is my deposit? " * 20)
    assert "over the limit of 200" in texts(at.error)
    assert at.session_state["result"] is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backend_down_is_an_error(own_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_LLM_BACKEND", "openai")
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("COPILOT_LLM_TIMEOUT_S", "2")
    get_settings.cache_clear()
    at = draft(start(), EN_MESSAGE)
    assert "Could not draft a reply" in texts(at.error)
    assert at.session_state["result"] is None


def test_fake_llm_draft_and_tone_rewrite(
    own_db: str, monkeypatch: pytest.MonkeyPatch, store_of: Any
) -> None:
    """With an LLM backend the rewrite replaces the editor text; the fake is reached via the seam."""
    from copilot.settings import get_settings
    from copilot.ui import workspace as ui

    monkeypatch.setenv("COPILOT_LLM_BACKEND", "fake")
    get_settings.cache_clear()
    built: list[ui.Services] = []
    real = ui.build_services

    def build(settings: Any) -> ui.Services:
        svc = real(settings)
        svc.copilot.backend.enqueue(  # type: ignore[attr-defined]
            "Hi there,\n\nYou can reset 2FA from the login page [faq/2fa-reset].\n\nBest regards,",
            "Hello,\n\nReset 2FA from the login page [faq/2fa-reset].\n\nKind regards,",
        )
        built.append(svc)
        return svc

    monkeypatch.setattr(ui, "build_services", build)
    at = draft(start(), EN_MESSAGE)
    assert built, "the app did not build its services through copilot.ui.workspace.build_services"
    result = at.session_state["result"]
    assert result.backend == "fake"
    assert "reset 2FA from the login page" in editor(at)
    assert [s["id"] for s in result.sources] == ["faq/2fa-reset"]

    at.selectbox(key="tone").set_value("concise")
    button(at, "Rewrite tone").click()
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert editor(at).startswith("Hello,\n\nReset 2FA")
    assert "Rewritten: Concise tone" in texts(at.success)
    fake = built[0].copilot.backend
    assert len(fake.history) == 2  # type: ignore[attr-defined]
    assert "You can reset 2FA from the login page" in fake.last_prompt  # type: ignore[attr-defined]


def test_knowledge_base_search_lists_articles(app_env: str) -> None:
    at = start()
    at.text_input(key="kb_query").set_value("2FA reset lost phone")
    button(at, "Search").click()
    at.run()
    assert not at.exception and not at.error
    query, hits, _ = at.session_state["kb_results"]
    assert query == "2FA reset lost phone" and hits
    labels = [e.label for e in at.expander]
    assert any("[faq/2fa-reset]" in label for label in labels)
    assert any("result(s) for" in c.value for c in at.caption)


def test_activity_tab_shows_totals(own_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_LLM_BACKEND", "offline")
    get_settings.cache_clear()
    at = start()
    assert {m.label: m.value for m in at.metric}["Drafts"] == "0"  # a fresh database
    at = draft(at, EN_MESSAGE)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Drafts"] == "1"
    assert "Helpful / needs work" in metrics
    at = draft(at, JA_MESSAGE)
    assert {m.label: m.value for m in at.metric}["Drafts"] == "2"
    # the table's number columns hold numbers only (text mixed in makes Arrow warn and
    # fall back on every render)
    table = at.dataframe[0].value
    assert list(table["Sent"]) == [0, 0]
    assert str(table["Sent"].dtype).startswith("int")
    assert table["Edit distance"].isna().all()


def test_no_password_or_key_reaches_the_page(own_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An LLM URL with credentials and a key, a database URL with a password: every error
    box names the server, none shows the secret."""
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_LLM_BACKEND", "openai")
    monkeypatch.setenv(
        "COPILOT_LLM_BASE_URL",
        f"http://bot:hunter2@127.0.0.1:{_closed_port()}/v1?api-key=k3y-0123456789",
    )
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv(
        "COPILOT_DATABASE_URL",
        f"postgresql://agent:s3cret@127.0.0.1:{_closed_port()}/copilot?connect_timeout=2",
    )
    monkeypatch.setenv("COPILOT_MAX_QUERY_CHARS", "30")
    get_settings.cache_clear()
    at = draft(start(), EN_MESSAGE)
    shown = texts(at.error)
    assert "Could not draft a reply: cannot reach the LLM endpoint http://bot:***@" in shown
    assert "Could not read the database: cannot connect to database" in shown
    assert "postgresql://agent:***@127.0.0.1" in shown
    at.text_input(key="kb_query").set_value("where is my withdrawal, it has been two days")
    button(at, "Search").click()
    at.run()
    shown = texts(at.error) + texts(at.markdown) + texts(at.caption)
    assert "over the limit of 30 (COPILOT_MAX_QUERY_CHARS)" in shown
    for secret in ("hunter2", "k3y-0123456789", "s3cret"):
        assert secret not in shown


def test_a_bad_setting_stops_the_page_without_its_password(
    use_kb_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_DATABASE_URL", "mysql://root:s3cret@db/copilot")
    get_settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    shown = texts(at.error)
    assert "Support Copilot cannot start: COPILOT_DATABASE_URL" in shown
    assert "mysql://root:***@db/copilot" in shown and "s3cret" not in shown


# ---- the helpers behind the page ---------------------------------------------------------
def test_parse_thread_roles_and_continuations() -> None:
    from copilot.ui.state import parse_thread

    turns = parse_thread(
        "hello, my deposit\nis missing\n\nAgent: which coin?\nCUSTOMER： USDT\nsupport: thanks"
    )
    assert [(t.role, t.text) for t in turns] == [
        ("customer", "hello, my deposit\nis missing"),
        ("agent", "which coin?"),
        ("customer", "USDT"),
        ("agent", "thanks"),
    ]
    assert parse_thread("  \n") == []
    assert parse_thread("Agent:\nCustomer: hi") == [parse_thread("Customer: hi")[0]]


def test_init_state_sets_defaults_once() -> None:
    from copilot.ui.state import DEFAULTS, init_state

    state: dict[str, Any] = {"customer_message": "kept"}
    init_state(state)
    assert state["customer_message"] == "kept"
    assert set(DEFAULTS) <= set(state)
    state["tone"] = "formal"
    init_state(state)
    assert state["tone"] == "formal"


def test_reported_turns_failures_into_messages() -> None:
    from copilot.errors import CopilotError
    from copilot.ui.state import reported

    state: dict[str, Any] = {}
    with reported(state, "do it"):
        raise CopilotError("backend down")
    assert state["error"] == "Could not do it: backend down"
    with reported(state, "do it", key="kb_error"):
        raise KeyError("boom")
    assert state["kb_error"].startswith("Could not do it: unexpected KeyError")


def test_flag_chips_and_article_markdown() -> None:
    from copilot.ui.widgets import article_markdown, flag_chips
    from copilot.understand.signals import Flag

    flags = [
        Flag("emotion", None, "angry", 2),
        Flag("emotion", None, "", 0),
        Flag("pii", (0, 3), "EMAIL"),
        Flag("pii", (5, 9), "EMAIL"),
        Flag("prompt_injection", (0, 4), "instruction override"),
        Flag("escalation", (0, 6), "legal"),
    ]
    assert flag_chips(flags) == [
        "Emotion 2/3",
        "Personal data masked",
        "Injection attempt",
        "Escalation",
    ]
    body = "# Title\n\n## Key facts {#key-facts}\n\n- a\n\n### Deep {#deep}\ntext"
    assert article_markdown(body) == "##### Key facts\n\n- a\n\n###### Deep\ntext"
