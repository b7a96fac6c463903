"""The library behind the QA and Insights pages and the workspace's restore: eval runs on disk,
golden cases from sent replies, insights from the store, ratings and sends apart, and a
draft's stored form read back. Real SQLite files, real report folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import CopilotError
from copilot.evaluation import golden_add, runs
from copilot.evaluation.cases import aggregate, load_golden
from copilot.store import SqlStore, insights


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqlStore.from_url(f"sqlite:///{tmp_path / 'copilot.db'}")
    yield s
    s.close()


def result(language: str = "en", draft: str = "Hello,\n\nSee [faq/kyc].", **extra: Any) -> Any:
    return {
        "draft": draft,
        "language": language,
        "sources": ["faq/kyc"],
        "verdict": "pass",
        "violations": [],
        "flags": [],
        "blocked": False,
        "abstained": False,
        **extra,
    }


# ---- eval runs -----------------------------------------------------------------------------
def report(scores: dict[str, float], started: str) -> dict[str, Any]:
    cases = [
        {
            "id": cid,
            "language": cid.split("-")[1],
            "category": "kyc",
            "score": s,
            "metrics": {"semantic": s},
        }
        for cid, s in scores.items()
    ]
    return {
        "meta": {"started_at": started, "backend": "offline", "model": ""},
        "aggregates": aggregate(cases),
        "cases": cases,
    }


def test_runs_are_found_newest_first_and_broken_ones_named(tmp_path: Path) -> None:
    for name, started, scores in (
        ("a", "2026-01-01T00:00:00+00:00", {"g-en-1": 0.9, "g-ja-1": 0.5}),
        ("deep/b", "2026-02-01T00:00:00+00:00", {"g-en-1": 0.7, "g-zh-1": 0.6}),
    ):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "report.json").write_text(json.dumps(report(scores, started)))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text('{"cases": 3}')
    (tmp_path / "x" / "y" / "z" / "w").mkdir(parents=True)  # deeper than MAX_DEPTH
    (tmp_path / "x" / "y" / "z" / "w" / "report.json").write_text("{}")
    found = runs.find_runs(tmp_path)
    assert [r.name for r in found] == ["deep/b", "a", "bad"]
    assert found[0].cases == 2 and found[0].score == pytest.approx(0.65)
    assert found[2].problem is not None and "no 'cases' list" in found[2].problem
    assert runs.find_runs(tmp_path / "missing") == []

    rows = runs.aggregate_rows(runs.load_run(tmp_path / "a"), "by_language")
    assert [(r["group"], r["n"], r["score"]) for r in rows] == [("en", 1, 0.9), ("ja", 1, 0.5)]
    with pytest.raises(CopilotError, match="by_language or by_category"):
        runs.aggregate_rows({}, "by_day")
    diff = runs.diff_runs(runs.load_run(tmp_path / "deep/b"), runs.load_run(tmp_path / "a"))
    assert diff["regressions"] == ["g-en-1"] and diff["added"] == ["g-zh-1"]
    assert diff["removed"] == ["g-ja-1"]
    assert diff["aggregates"]["overall"]["score"]["baseline"] == pytest.approx(0.7)
    with pytest.raises(CopilotError, match=r"no report\.json"):
        runs.load_run(tmp_path / "x")


# ---- golden cases from sent replies -------------------------------------------------------
def stored_draft() -> dict[str, Any]:
    return {
        "id": "d1",
        "result": result("ja", sources=["faq/kyc", "faq/fees"]),
        "request": {"customer_message": "本人確認はどのくらいかかりますか？"},
    }


def test_a_golden_case_is_validated_and_written_to_a_new_file(tmp_path: Path) -> None:
    case = golden_add.golden_case(
        stored_draft(),
        "本人確認は通常1営業日です [faq/kyc]",
        case_id=" ja-kyc-1 ",
        category="kyc",
        must_include=["1営業日", " "],
    )
    path = golden_add.write_golden_case(case, tmp_path / "golden")
    assert path == tmp_path / "golden" / "ja-kyc-1.jsonl"
    (loaded,) = load_golden(path).cases
    assert (loaded.id, loaded.language, loaded.must_include) == ("ja-kyc-1", "ja", ("1営業日",))
    assert loaded.expected_sources == ("faq/kyc", "faq/fees")
    assert [p.name for p in path.parent.iterdir()] == ["ja-kyc-1.jsonl"]  # no temporary left

    before = path.read_bytes()
    with pytest.raises(CopilotError, match="already exists: golden files are never overwritten"):
        golden_add.write_golden_case(case, tmp_path / "golden")
    assert path.read_bytes() == before
    # the same id under another file name: refused too
    (tmp_path / "golden" / "ja-kyc-1.jsonl").rename(tmp_path / "golden" / "older.jsonl")
    with pytest.raises(CopilotError, match=r"'ja-kyc-1' is already used in .*older\.jsonl"):
        golden_add.write_golden_case(case, tmp_path / "golden")
    bad = dict(case, id="ja kyc", category="")
    with pytest.raises(CopilotError, match="not a valid golden case: field 'category'"):
        golden_add.write_golden_case(bad, tmp_path / "golden")
    long = dict(case, id="long-1", golden_reply="x" * 50)
    with pytest.raises(CopilotError, match="COPILOT_MAX_GOLDEN_CHARS"):
        golden_add.write_golden_case(long, tmp_path / "golden", max_reply_chars=10)
    assert sorted(p.name for p in (tmp_path / "golden").iterdir()) == ["older.jsonl"]


def test_a_golden_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    case = golden_add.golden_case(stored_draft(), "text", case_id="a-1", category="kyc")
    with pytest.raises(CopilotError, match="cannot create golden folder"):
        golden_add.write_golden_case(case, tmp_path / "file" / "golden")


# ---- ratings and sends apart -------------------------------------------------------------
def test_activity_keeps_rating_send_and_edit_distance_apart(store: SqlStore) -> None:
    first = store.save_draft(result(), {"customer_message": "kyc?"}, origin="ui")
    second = store.save_draft(result(draft="Hi"), {"customer_message": "hi"}, origin="cli")
    store.save_rating(first, "down", agent="mika", reason="too long")
    store.save_rating(first, "up", agent="mika")  # a switch replaces it
    store.save_rating(first, "down", agent="ken", reason="wrong fee")
    store.save_sent(first, "Hello,\n\nSee [faq/kyc]!", verdict="pass", agent="mika")
    rows = store.activity(10)
    assert [r["id"] for r in rows] == [second, first]
    assert rows[0]["rating"] is None and rows[0]["sent"] == 0 and rows[0]["edit_distance"] is None
    row = rows[1]
    assert (row["rating"], row["rating_reason"], row["ratings"]) == ("down", "wrong fee", 2)
    assert (row["sent"], row["sent_verdict"], row["edit_distance"]) == (1, "pass", 1)
    assert store.activity(0) == []
    totals = store.feedback_totals()
    assert (totals["up"], totals["down"], totals["approval_rate"]) == (1, 1, 0.5)
    assert (totals["sent"], totals["sent_drafts"], totals["median_edit_distance"]) == (1, 1, 1.0)
    store.save_sent(second, "Hi there", verdict="reject", override_reason="ok'd", agent="ken")
    totals = store.feedback_totals()
    assert (totals["sent"], totals["overridden"], totals["median_edit_distance"]) == (2, 1, 3.5)


def test_feedback_totals_on_an_empty_store(store: SqlStore) -> None:
    assert store.feedback_totals() == {
        "up": 0,
        "down": 0,
        "approval_rate": None,
        "sent": 0,
        "sent_drafts": 0,
        "overridden": 0,
        "median_edit_distance": None,
    }
    assert store.insight_rows() == [] and store.insight_rows(0) == []


# ---- insights ------------------------------------------------------------------------------
def test_insights_from_the_store(store: SqlStore) -> None:
    gap = store.save_draft(
        result("zh", abstained=True, sources=[], retrieval=[{"id": "faq/fees", "score": 0.05}]),
        {"customer_message": "手续费多少？我的电话 13812345678"},
    )
    fine = store.save_draft(
        result(retrieval=[{"id": "faq/kyc", "score": 0.95}]), {"customer_message": "kyc?"}
    )
    old = store.save_draft(result(sources=[]), {"customer_message": "made before 0.2"})
    edited = store.save_draft(
        result(
            verdict="reject",
            violations=[{"rule": "investment_advice", "severity": "block"}, {"rule": ""}],
            retrieval=[{"id": "faq/kyc", "score": 0.8}],
        ),
        {"customer_message": "should I buy?"},
    )
    store.save_sent(fine, "Hello,\n\nSee [faq/kyc].", verdict="pass")
    store.save_sent(
        edited,
        "Something else entirely, written by hand.",
        verdict="reject",
        rules=["investment_advice", "investment_advice"],
        override_reason="compliance said fine",
        agent="ken",
    )
    rows = store.insight_rows()
    assert [r["id"] for r in rows] == [edited, old, fine, gap]
    assert insights.gap_reasons(rows[0]) == ["heavily_edited"]
    assert insights.gap_reasons(rows[1]) == []  # no retrieval stored, never sent
    assert insights.gap_reasons(rows[2]) == []  # sent as drafted
    assert insights.gap_reasons(rows[3]) == ["abstained"]
    assert insights.topic_of(rows[1]["result"]) == insights.NO_TOPIC
    assert insights.topic_of({"sources": ["faq/x"]}) == "faq/x"
    assert insights.top_score({"retrieval": [{"id": "a"}]}) is None

    gaps = insights.knowledge_gaps(rows)
    assert [(g["topic"], g["language"], g["drafts"]) for g in gaps] == [
        ("faq/fees", "zh", 1),
        ("faq/kyc", "en", 1),
    ]
    assert gaps[0]["mean_score"] == 0.05 and "13812345678" not in gaps[0]["examples"][0]
    assert [g["topic"] for g in insights.knowledge_gaps(rows, heavy_edit=100.0)] == ["faq/fees"]

    hits = insights.guardrail_hits(rows)
    assert [(h["rule"], h["drafts"], h["sent"]) for h in hits] == [("investment_advice", 1, 1)]
    (override,) = insights.overrides(rows)
    assert (override["agent"], override["reason"], override["draft_id"]) == (
        "ken",
        "compliance said fine",
        edited,
    )


# ---- a draft's stored form read back (restore after a reload) ------------------------------
def test_a_stored_draft_reads_back_into_the_objects_the_page_uses(offline_copilot: Any) -> None:
    from copilot.draft.types import DraftRequest, Turn
    from copilot.store.recording import request_dict
    from copilot.ui import restore

    request = DraftRequest(
        "I lost my 2FA phone, I'm furious", customer_name="Sam", history=[Turn("agent", "hi")]
    )
    drafted = offline_copilot.draft(request)
    back = restore.result_from_dict(json.loads(json.dumps(drafted.to_dict())))
    assert back.draft == drafted.draft and back.verdict == drafted.verdict
    assert back.violations == drafted.violations and back.flags == drafted.flags
    assert [s["id"] for s in back.sources] == [s["id"] for s in drafted.sources]
    assert back.retrieval == drafted.retrieval and back.retrieval
    assert back.retrieval[0]["score"] == pytest.approx(drafted.retrieval[0]["score"])
    assert restore.request_from_dict(request_dict(request)) == request
    assert restore.result_from_dict({}).language == "en"


def test_ticket_state_round_trip_and_url(store: SqlStore) -> None:
    from copilot.guard.types import Violation
    from copilot.ui import restore
    from copilot.ui.state import DEFAULTS

    draft_id = store.save_draft(
        result(), {"customer_message": "kyc?", "history": [{"role": "customer", "text": "hi"}]}
    )
    state: dict[str, Any] = dict(DEFAULTS, ui_language="zh", agent_name="Li", draft_id=draft_id)
    state["result"] = restore.result_from_dict(result())
    state["draft_text"] = "edited"
    state["recheck"] = {
        "text": "edited",
        "verdict": "reject",
        "violations": [Violation("r", "block", (0, 2), "ed", "m", "f")],
    }
    query: dict[str, Any] = {"stale": "1"}
    restore.remember(store, state, query, "save", record=True)
    assert query == {"stale": "1", "lang": "zh", "agent": "Li", "draft": draft_id}
    assert store.get_ticket_state(draft_id)["state"]["draft_text"] == "edited"
    assert store.get_agent_settings("Li")["ui_language"] == "zh"
    state["agent_name"] = ""
    restore.remember(store, state, query, "save", record=True)
    assert "agent" not in query

    fresh: dict[str, Any] = dict(DEFAULTS, ui_language="en")
    restore.from_query(store, fresh, {"draft": draft_id, "agent": "Li"}, "restore")
    assert (fresh["ui_language"], fresh["agent_name"], fresh["draft_text"]) == (
        "zh",
        "Li",
        "edited",
    )
    assert fresh["thread"] == "" and fresh["error"] is None  # the saved widget value wins
    assert fresh["recheck"]["violations"] == state["recheck"]["violations"]
    other = store.save_draft(
        result(), {"customer_message": "kyc?", "history": [{"role": "customer", "text": "hi"}]}
    )
    restore.from_query(store, fresh, {"draft": other}, "restore")  # no ticket state saved yet
    assert fresh["thread"] == "Customer: hi" and fresh["draft_text"] == result()["draft"]
    assert fresh["recheck"] is None
    restore.from_query(store, fresh, {"draft": "missing", "lang": "ja"}, "restore")
    assert fresh["ui_language"] == "ja"
    # the error is worded in the interface language the URL asked for
    assert fresh["error"] == "restoreできませんでした: no saved draft with id 'missing'"


def test_the_ui_language_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.errors import SettingsError
    from copilot.settings import Settings

    assert Settings.load(env={}).ui_language == "en"
    assert Settings.load(env={"COPILOT_UI_LANGUAGE": "zh"}).ui_language == "zh"
    with pytest.raises(SettingsError, match="COPILOT_UI_LANGUAGE: 'de' is not allowed"):
        Settings.load(env={"COPILOT_UI_LANGUAGE": "de"})
    s = Settings.load(env={"COPILOT_DATA_DIR": "/tmp/d"})
    assert s.eval_reports_path == Path("/tmp/d") and s.golden_path == Path("/tmp/d/golden")
