"""``copilot draft``: one message, a JSONL file with good and bad lines, and a dead endpoint.

Runs the real pipeline (offline backend, shipped KB ingested once per session,
real retrieval and guardrail) through ``copilot.cli.main.main``; one test runs the
module as a subprocess to prove no traceback reaches the user.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from copilot.cli.main import main
from tests.llm_server import free_port

ROOT = Path(__file__).resolve().parent.parent
OUT_KEYS = {
    "id",
    "draft",
    "language",
    "sources",
    "verdict",
    "violations",
    "flags",
    "attempts",
    "backend",
    "prompt_version",
    "kb_version",
    "latency_ms",
}


def lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_draft_one_message(use_kb_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "draft",
            "--text",
            "How long does a withdrawal take? It has been an hour.",
            "--name",
            "Ken",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("Hi Ken,\n")
    assert "[faq/withdrawal]" in out and "Sources:\n  [faq/withdrawal] Withdrawals" in out
    assert "Verdict: pass after 1 attempt(s)" in out
    assert "Backend: offline (kb-templates), prompts offline_phrases@10" in out


def test_draft_one_message_as_json(use_kb_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draft", "--text", "出金が届きません", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert OUT_KEYS - {"id"} <= set(data)
    assert data["language"] == "ja" and data["draft"].startswith("お客様")
    assert data["backend"] == "offline" and data["verdict"] == "pass"


def test_draft_file_goes_on_after_bad_lines(
    use_kb_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    rows = [
        {
            "id": "a",
            "customer_message": "I lost my 2FA phone, how do I get back in?",
            "customer_name": "Sarah",
        },
        {"id": "b", "customer_message": "我的身份认证被拒绝了，怎么重新提交？", "language": "zh"},
        {
            "id": "c",
            "customer_message": "any news?",
            "language": "en",
            "history": [
                {"role": "customer", "text": "my BTC withdrawal is stuck"},
                {"role": "agent", "text": "I'm checking"},
            ],
        },
        {"id": "d"},
        {"id": "e", "customer_message": "hi", "language": "fr"},
        {"id": "f", "customer_message": "x" * 9000},
        {"id": "g", "customer_message": "hi", "history": [{"role": "bot", "text": "x"}]},
        {"id": "h", "customer_message": "hi", "agent_note": 5},
        {"customer_message": "no id"},
    ]
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:3]) + "\n{not json\n\n"
    text += "\n".join(json.dumps(r) for r in rows[3:]) + "\n"
    src.write_text(text, encoding="utf-8")
    dst = tmp_path / "out.jsonl"
    rc = main(["draft", "--input", str(src), "--output", str(dst)])
    err = capsys.readouterr().err
    assert rc == 1
    out = lines(dst)
    assert [o.get("id") for o in out] == ["a", "b", "c", None, "d", "e", "f", "g", "h", None]
    good = out[:3]
    for o in good:
        assert set(o) >= OUT_KEYS and o["verdict"] == "pass" and o["sources"]
    assert good[0]["draft"].startswith("Hi Sarah,") and "faq/2fa-reset" in good[0]["sources"]
    assert good[1]["language"] == "zh" and "faq/kyc" in good[1]["sources"]
    assert "faq/withdrawal" in good[2]["sources"]
    errors = {o.get("id"): o["error"] for o in out[3:]}
    assert "line 4: not valid JSON" in out[3]["error"]
    assert "field 'customer_message': missing" in errors["d"]
    assert "field 'language': 'fr'" in errors["e"]
    assert "customer_message: 9000 characters is over the limit of 8000" in errors["f"]
    assert "field 'history[0]'" in errors["g"]
    assert "field 'agent_note': must be non-empty text, got 5" in errors["h"]
    assert "field 'id': missing" in out[-1]["error"]
    assert "3 drafted (0 blocked), 7 failed" in err and "Traceback" not in err


def test_a_file_line_passes_its_agent_note(
    use_kb_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``agent_note`` on an input line reaches the copilot like ``--note`` does."""
    from copilot.draft.pipeline import Copilot

    seen: list[str | None] = []
    real = Copilot.draft

    def spy(self: Copilot, request: object) -> object:
        seen.append(getattr(request, "agent_note", None))
        return real(self, request)  # type: ignore[arg-type]

    monkeypatch.setattr(Copilot, "draft", spy)
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [
        {"id": "a", "customer_message": "any update?", "agent_note": "BTC withdrawal W1 in review"},
        {"id": "b", "customer_message": "any update?"},
    ]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert main(["draft", "--input", str(src), "--output", str(dst), "--no-record"]) == 0
    assert seen == ["BTC withdrawal W1 in review", None]


def test_input_needs_output(
    use_kb_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["draft", "--input", str(tmp_path / "x.jsonl")]) == 2
    assert "--input needs --output" in capsys.readouterr().err


def test_missing_input_file_is_a_clear_error(
    use_kb_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["draft", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o.jsonl")]
    )
    assert rc == 2 and "cannot read file" in capsys.readouterr().err


def test_endpoint_down_fails_each_line_without_traceback(
    use_kb_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": 1, "customer_message": "where is my withdrawal?"}\n'
        '{"id": 2, "customer_message": "fees?"}\n',
        encoding="utf-8",
    )
    dst = tmp_path / "out.jsonl"
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.setenv("COPILOT_LLM_MODEL", "smollm2")
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "0")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "copilot",
            "draft",
            "--input",
            str(src),
            "--output",
            str(dst),
            "--backend",
            "openai",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    out = lines(dst)
    assert [o["id"] for o in out] == [1, 2]
    assert all("cannot reach the LLM endpoint" in o["error"] for o in out)
    single = subprocess.run(
        [sys.executable, "-m", "copilot", "draft", "--text", "hi", "--backend", "openai"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert single.returncode == 1 and "Traceback" not in single.stderr
    assert single.stderr.startswith("error: cannot reach the LLM endpoint")


# ---- every draft recorded ----------------------------------------------------------------------
def stored(url: str) -> Any:
    from copilot.store import SqlStore

    return SqlStore.from_url(url)


def test_a_cli_draft_is_recorded_with_its_provenance(
    use_kb_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    url = os.environ["COPILOT_DATABASE_URL"]
    assert main(["draft", "--text", "出金が届きません", "--json", "--agent", "mika"]) == 0
    data = json.loads(capsys.readouterr().out)
    with stored(url) as store:
        row = store.get_draft(data["draft_id"])
        assert row is not None and (row["origin"], row["agent"]) == ("cli", "mika")
        assert row["result"]["draft"] == data["draft"]
        assert row["request"]["customer_message"] == "出金が届きません"
        (summary,) = store.recent(5)
        assert summary["backend"] == "offline" and summary["verdict"] == "pass"
        assert summary["prompt_version"] == data["prompt_version"]
        assert summary["kb_version"] == data["kb_version"] and summary["kb_version"]
        assert summary["latency_ms"] == pytest.approx(data["latency_ms"]["total"])
    # --no-record and the setting keep it out of the database
    assert main(["draft", "--text", "出金が届きません", "--json", "--no-record"]) == 0
    assert "draft_id" not in json.loads(capsys.readouterr().out)
    os.environ["COPILOT_RECORD_DRAFTS"] = "false"
    try:
        from copilot.settings import get_settings

        get_settings.cache_clear()
        assert main(["draft", "--text", "where is my deposit?"]) == 0
    finally:
        del os.environ["COPILOT_RECORD_DRAFTS"]
        get_settings.cache_clear()
    with stored(url) as store:
        assert store.stats()["drafts"] == 1


def test_a_store_error_is_reported_and_the_draft_still_printed(
    use_kb_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_DATABASE_URL", "sqlite:////proc/copilot-no-such/copilot.db")
    get_settings.cache_clear()
    rc = main(["draft", "--text", "How long does a withdrawal take?", "--name", "Ken"])
    captured = capsys.readouterr()
    assert rc == 0
    assert captured.out.startswith("Hi Ken,\n") and "Verdict: pass" in captured.out
    assert "warning: the draft was not recorded: cannot open database" in captured.err
    assert "/proc/copilot-no-such/copilot.db" in captured.err


def test_a_file_run_records_every_draft_and_reports_a_store_failure_once(
    use_kb_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    from copilot.settings import get_settings

    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": 1, "customer_message": "where is my withdrawal?"}\n'
        '{"id": 2, "customer_message": "入金が反映されません"}\n'
        '{"id": 3}\n',
        encoding="utf-8",
    )
    dst = tmp_path / "out.jsonl"
    assert main(["draft", "--input", str(src), "--output", str(dst), "--agent", "ken"]) == 1
    out = lines(dst)
    with stored(os.environ["COPILOT_DATABASE_URL"]) as store:
        for row in out[:2]:
            got = store.get_draft(row["draft_id"])
            assert got is not None and got["origin"] == "cli" and got["agent"] == "ken"
            assert got["result"]["draft"] == row["draft"]
        assert store.stats()["drafts"] == 2
    capsys.readouterr()
    monkeypatch.setenv("COPILOT_DATABASE_URL", "sqlite:////proc/copilot-no-such/copilot.db")
    get_settings.cache_clear()
    assert main(["draft", "--input", str(src), "--output", str(dst)]) == 1
    err = capsys.readouterr().err
    assert err.count("the draft was not recorded") == 1
    assert "warning: 2 draft(s) were not recorded in the database" in err
    assert [o.get("draft") is not None for o in lines(dst)] == [True, True, False]
    assert all("draft_id" not in o for o in lines(dst))


def test_the_library_entry_point_records_and_never_raises_for_the_store(
    use_kb_store: Path, tmp_path: Path
) -> None:
    import os

    from copilot.draft.types import DraftRequest
    from copilot.settings import Settings
    from copilot.store.recording import RecordingCopilot, draft_reply

    done = draft_reply("How long does a withdrawal take?", customer_name="Ken", agent="mika")
    assert done.recorded and done.error is None and done.result.draft.startswith("Hi Ken,")
    with stored(os.environ["COPILOT_DATABASE_URL"]) as store:
        got = store.get_draft(done.draft_id)
        assert got is not None and got["origin"] == "library" and got["agent"] == "mika"
        assert got["request"]["customer_name"] == "Ken"

    class Broken:
        def save_draft(self, *args: Any, **kwargs: Any) -> str:
            raise RuntimeError("disk on fire at postgresql://u:s3cret@db/x")

    recorder = RecordingCopilot.from_settings(Settings.load(), record=False)
    assert recorder.store is None
    assert recorder.draft(DraftRequest("hello")).draft_id is None
    recorder.store = Broken()  # type: ignore[assignment]
    failed = recorder.draft(DraftRequest("How long does a withdrawal take?"))
    assert failed.result.draft and not failed.recorded
    assert failed.error is not None and "unexpected RuntimeError: disk on fire" in failed.error
    assert "s3cret" not in failed.error
