"""The workspace's send path and ticket tools through AppTest on the fake LLM backend: the
override of a blocked text (with a reason), the agent's signature per language, Activity rows
that open the stored draft, and the risk strip with its Escalate action.

Retrieval, the guardrail and the database are real; the fake backend answers every draft with
a fixed, cited reply (``tests/test_ui_pages.py`` sets it up). Each test has its own database.
"""

# ruff: noqa: F811  (the fixtures imported from test_ui_pages are test parameters here)
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from copilot.draft.citations import strip_citations
from copilot.errors import CopilotError
from copilot.store import SqlStore
from copilot.ui.signature import signed
from tests.test_app import BYPASS, EN_MESSAGE, JA_MESSAGE, button, texts
from tests.test_ui_pages import (  # noqa: F401  (fake_app, store_at: fixtures)
    EN_REPLY,
    JA_REPLY,
    draft,
    fake_app,
    start,
    store_at,
)


def labels(at: Any) -> list[str]:
    return [b.label for b in at.button]


# ---- 1. a blocked text leaves only with an override and its reason ----------------------------
def test_a_blocked_edit_is_sent_only_with_an_override_reason(fake_app: str, store_at: Any) -> None:
    at = start()
    at.text_input(key="agent_name").set_value("Mika")
    at = draft(at, EN_MESSAGE)
    draft_id = at.session_state["draft_id"]
    assert "Send anyway" not in labels(at)  # a passing draft offers no override
    bad = at.session_state["result"].draft + BYPASS
    at.text_area(key="draft_text").set_value(bad)
    button(at, "Copy final reply").click()
    at.run()
    assert "Not copied" in texts(at.error) and "credential_request" in texts(at.error)
    assert at.session_state["copied"] is None
    store = store_at(fake_app)
    assert store.get_draft(draft_id)["sent"] == []

    # the override needs a reason: blank (or spaces) is refused with a clear message
    at.text_input(key="override_reason").set_value("   ")
    button(at, "Send anyway").click()
    at.run()
    assert "sending a blocked text needs a reason" in texts(at.error)
    assert at.session_state["copied"] is None and store.get_draft(draft_id)["sent"] == []

    at.text_input(key="override_reason").set_value("compliance approved this wording")
    button(at, "Send anyway").click()
    at.run()
    assert not at.exception
    (sent,) = store.get_draft(draft_id)["sent"]
    assert sent["final_text"] == bad and sent["verdict"] == "reject"
    assert sent["override_reason"] == "compliance approved this wording"
    assert "credential_request" in sent["rules"] and sent["agent"] == "Mika"
    assert at.session_state["copied"] == strip_citations(bad)
    assert "Sent with an override" in texts(at.warning)
    # the pill keeps saying what the guardrail says about the text in the box
    assert "✕ Blocked by guardrail" in texts(at.markdown)
    assert "✓ Guardrail: pass" not in texts(at.markdown)
    assert at.session_state["override_reason"] == ""  # the next override needs its own reason
    table = at.dataframe[0].value
    assert list(table["Override reason"]) == ["compliance approved this wording"]
    assert store.feedback_totals()["overridden"] == 1


def test_send_anyway_on_a_text_that_now_passes_is_a_plain_send(
    fake_app: str, store_at: Any
) -> None:
    at = draft(start(), EN_MESSAGE)
    at.text_area(key="draft_text").set_value(at.session_state["result"].draft + BYPASS)
    button(at, "Re-check edited draft").click()
    at.run()
    at.text_input(key="override_reason").set_value("in a hurry")
    at.text_area(key="draft_text").set_value(at.session_state["result"].draft)  # fixed after all
    button(at, "Send anyway").click()
    at.run()
    (sent,) = store_at(fake_app).get_draft(at.session_state["draft_id"])["sent"]
    assert (sent["verdict"], sent["override_reason"], sent["rules"]) == ("pass", None, [])
    assert "✓ Guardrail: pass" in texts(at.markdown)


# ---- 2. the agent's signature per language --------------------------------------------------------
def test_signed_puts_the_signature_under_a_bare_sign_off_once() -> None:
    sign_off = re.compile(r"^(?:best\s+)?regards,?$", re.I)
    assert signed("Hi,\n\nBody.\n\nBest regards,", "Mika\nSupport", sign_off) == (
        "Hi,\n\nBody.\n\nBest regards,\nMika\nSupport"
    )
    assert signed("Hi,\n\nBody.\n\nCheers,  \n", "Mika") == "Hi,\n\nBody.\n\nCheers,\nMika"
    assert signed("Hi,\n\nBody.", "Mika") == "Hi,\n\nBody.\n\nMika"  # no sign-off: own paragraph
    once = "Hi,\n\nBest regards,\nMika\nSupport"
    assert signed(once, "Mika\nSupport", sign_off) == once
    assert signed(once + "\n", "  Mika \n Support ", sign_off) == once + "\n"
    assert signed("Hi,", "   ") == "Hi," and signed("  ", "Mika") == "  "


def test_the_sent_reply_ends_with_the_signature_for_its_language(
    fake_app: str, store_at: Any
) -> None:
    at = start()
    at.text_input(key="agent_name").set_value("Mika")
    at.text_area(key="signature_en").set_value("Mika Tanaka\nSupport Team")
    at.text_area(key="signature_ja").set_value("サポート担当 田中")
    at = draft(at, EN_MESSAGE)
    assert at.session_state["result"].draft.endswith("Best regards,")
    button(at, "Copy final reply").click()
    at.run()
    assert not at.error, texts(at.error)
    final = EN_REPLY + "\nMika Tanaka\nSupport Team"
    store = store_at(fake_app)
    draft_id = at.session_state["draft_id"]
    (sent,) = store.get_draft(draft_id)["sent"]
    assert sent["final_text"] == final and sent["verdict"] == "pass"
    assert at.session_state["copied"] == strip_citations(final)
    # the box shows what was checked and sent; the check ran on that final text
    assert at.session_state["draft_text"] == final
    assert at.session_state["recheck"]["text"] == final
    assert "✓ Guardrail: pass" in texts(at.markdown)
    button(at, "Copy final reply").click()  # again: the signature is not added twice
    at.run()
    assert [s["final_text"] for s in store.get_draft(draft_id)["sent"]] == [final, final]

    at = draft(at, JA_MESSAGE)
    button(at, "Copy final reply").click()
    at.run()
    (ja,) = store.get_draft(at.session_state["draft_id"])["sent"]
    assert ja["final_text"] == JA_REPLY + "\nサポート担当 田中"
    saved = store.get_agent_settings("Mika")
    assert saved["signatures"] == {"en": "Mika Tanaka\nSupport Team", "ja": "サポート担当 田中"}

    # a reload with the agent's name brings the signatures back
    again = start({"agent": "Mika"})
    assert again.text_area(key="signature_en").value == "Mika Tanaka\nSupport Team"
    assert again.text_area(key="signature_ja").value == "サポート担当 田中"
    assert again.text_area(key="signature_zh").value == ""


def test_a_signature_that_breaks_the_policy_is_refused_as_sent(
    fake_app: str, store_at: Any
) -> None:
    """The re-check reads the signed text: a signature asking for a 2FA code blocks the send."""
    at = start()
    at.text_area(key="signature_en").set_value("Mika. Reply with your 2FA code to verify.")
    at = draft(at, EN_MESSAGE)
    button(at, "Copy final reply").click()
    at.run()
    assert "Not copied" in texts(at.error) and "credential_request" in texts(at.error)
    assert store_at(fake_app).get_draft(at.session_state["draft_id"])["sent"] == []
    assert "✕ Blocked by guardrail" in texts(at.markdown)


# ---- 3. Activity rows open the stored draft ----------------------------------------------------
def test_an_activity_row_opens_the_stored_draft_with_personal_data_masked(
    fake_app: str, store_at: Any
) -> None:
    message = EN_MESSAGE + " My email is ken.sato@example.org, TXID 0x" + "ab12" * 16 + "."
    at = start()
    at.text_input(key="agent_name").set_value("Mika")
    at = draft(at, message)
    draft_id = at.session_state["draft_id"]
    at.text_input(key="feedback_note").set_value("facts were right")
    button(at, "Helpful").click()
    at.run()
    button(at, "Copy final reply").click()
    at.run()
    assert not at.error, texts(at.error)
    table = at.dataframe[0].value
    (shown,) = list(table["Customer message"])
    assert "ken.sato@example.org" not in shown and list(table["Agent"]) == ["Mika"]

    picker = at.selectbox(key="activity_pick")
    assert picker.value is None and len(picker.options) == 1
    picker.set_value(draft_id)
    at.run()
    assert not at.exception, at.exception
    shown = texts(at.markdown)
    assert "agent: Mika" in shown and "Verdict: **pass**" in shown
    assert "Rating by Mika: Helpful · note: facts were right" in shown
    assert "Sent " in shown and "by Mika · verdict pass" in shown
    codes = [c.value for c in at.code]
    assert any("[EMAIL_1]" in c and "ken.sato@example.org" not in c for c in codes)
    assert not any("ab12ab12" in c for c in codes)
    assert at.session_state["result"].draft in codes


# ---- 4. the risk strip and Escalate ---------------------------------------------------------------
THREAT = (
    "I reset my phone and lost my authenticator app. How do I reset 2FA on my account? "
    "If this is not fixed today I will contact my lawyer. Write to ken.sato@example.org."
)


def test_the_risk_strip_shows_topic_source_and_passage_and_escalates(
    fake_app: str, store_at: Any
) -> None:
    at = start()
    at.text_input(key="agent_name").set_value("Mika")
    at = draft(at, THREAT)
    result = at.session_state["result"]
    assert any(f.kind == "escalation" for f in result.flags)
    shown = texts(at.markdown)
    assert "Topic: " in shown and "Escalation" in shown
    assert shown.count(">Escalation<") == 1  # one chip, however many cues fired
    captions = texts(at.caption)
    top = result.retrieval[0]
    assert "Top source: " in captions and "[faq/2fa-reset] · match" in captions
    assert top["snippet"] and f"> {top['snippet']}" in captions  # the passage, not the article
    assert "Escalate" in labels(at)

    button(at, "Escalate").click()
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Escalation recorded" in texts(at.success)
    note = at.session_state["escalation"]
    assert note in [c.value for c in at.code]
    assert note.startswith("ESCALATION · internal hand-over")
    assert "ken.sato@example.org" not in note and "[EMAIL_1]" in note
    assert "Agent: Mika" in note and "lawyer" in note.lower()
    (recorded,) = store_at(fake_app).get_draft(at.session_state["draft_id"])["escalations"]
    assert (recorded["agent"], recorded["note"]) == ("Mika", note)
    assert store_at(fake_app).activity(1)[0]["escalations"] == 1

    at.selectbox(key="ui_language").set_value("ja")
    at.run()
    button(at, "エスカレーション").click()
    at.run()
    assert at.session_state["escalation"].startswith("【エスカレーション】社内引き継ぎメモ")


def test_a_calm_message_offers_no_escalation(fake_app: str) -> None:
    at = draft(start(), EN_MESSAGE)
    assert "Escalate" not in labels(at)
    assert at.session_state["escalation"] is None


# ---- the store's escalations -----------------------------------------------------------------
def test_an_escalation_needs_a_note_and_a_known_draft(tmp_path: Any) -> None:
    with SqlStore.from_url(f"sqlite:///{tmp_path / 'e.db'}") as store:
        draft_id = store.save_draft(
            {"draft": "Hi", "language": "en", "verdict": "pass"}, {"customer_message": "help"}
        )
        with pytest.raises(CopilotError, match="hand-over note"):
            store.save_escalation(draft_id, "  ")
        with pytest.raises(CopilotError, match="no draft with id 'nope'"):
            store.save_escalation("nope", "note")
        store.save_escalation(draft_id, "first", agent=" ")
        store.save_escalation(draft_id, "second", agent="Ken")
        got = store.get_draft(draft_id)["escalations"]
        assert [(e["note"], e["agent"]) for e in got] == [("first", None), ("second", "Ken")]
        assert store.activity(5)[0]["escalations"] == 2


# ---- 5. keyboard flow ---------------------------------------------------------------------------
def test_the_draft_panel_buttons_have_shortcuts_named_in_their_help(fake_app: str) -> None:
    at = draft(start(), EN_MESSAGE)
    wanted = {
        "Re-check edited draft": "Ctrl+Shift+K",
        "Copy final reply": "Ctrl+Shift+Enter",
        "Helpful": "Ctrl+Shift+Up",
        "Needs work": "Ctrl+Shift+Down",
    }
    for label, keys in wanted.items():
        found = button(at, label)
        assert found.proto.shortcut == keys.lower(), label
        assert keys in found.help, label
    submit = button(at, "Draft reply")
    assert "Ctrl+Enter in the message box" in submit.help
    assert not submit.proto.shortcut  # a global Ctrl+Enter would redraft from the editor
    button(at, "Copy final reply").click()  # what the shortcut triggers: the same action
    at.run()
    assert at.session_state["copied"] is not None


# ---- the hand-over template -----------------------------------------------------------------
def test_a_bad_handover_template_names_its_file_and_line(tmp_path: Any) -> None:
    from copilot.files import ConfigError
    from copilot.ui.handover import templates

    path = tmp_path / "handover.yaml"
    path.write_text("version: 1\nnote:\n  ja: |\n    メモ\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"handover.yaml.*'note:' needs an 'en' text"):
        templates(path)
    path.write_text("version: 1\nnote:\n  en: hi\n  ja: ''\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"handover.yaml.*line 4.*'ja': must be text"):
        templates(path)
    shipped = templates(Path(__file__).resolve().parents[1] / "prompts" / "handover.yaml")
    assert set(shipped) == {"en", "ja", "zh"}
    for body in shipped.values():
        assert {"{{message}}", "{{draft}}", "{{topic}}", "{{flags}}"} <= set(
            re.findall(r"\{\{\w+\}\}", body)
        )
