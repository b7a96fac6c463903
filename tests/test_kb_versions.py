"""Atomic KB versions: an ingest builds the next version beside the served one and switches
a pointer in one step; readers never see half an ingest, even when it is killed.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import CopilotError
from copilot.kb.articles import kb_version, load_kb
from copilot.kb.ingest import docs_from_articles, docs_from_jsonl, ingest
from copilot.kb.vectorstore import get_collection, open_client
from copilot.kb.versions import (
    ingest_lock,
    is_version_of,
    pointer_name,
    read_pointer,
    version_collections,
)
from copilot.retrieval.hybrid import HybridRetriever
from copilot.retrieval.index import _lock_path, ingest_into, open_collection, physical_name
from copilot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
N_DOCS = 40


def write_kb(path: Path, changed: bool) -> Path:
    """A JSONL KB of N_DOCS records; ``changed`` rewrites every even one ("bravo")."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(N_DOCS):
            word = "bravo" if changed and i % 2 == 0 else "alpha"
            text = (
                f"Article {i} is version {word}. It explains withdrawal limit number {i}, "
                f"the {word} review queue, and what an agent tells the customer about it."
            )
            fh.write(json.dumps({"doc_id": f"doc-{i:02d}", "text": text}) + "\n")
    return path


def expected_texts(path: Path) -> tuple[str, dict[str, str]]:
    """The KB version of a JSONL KB and each document's marker word."""
    docs = docs_from_jsonl(path, "doc_id", ["text"])
    markers = {d.key.split("#")[0]: marker(d.chunks[0].text) for d in docs}
    return kb_version((d.key, d.content_hash) for d in docs), markers


def marker(text: str) -> str:
    return "bravo" if "version bravo" in text else "alpha" if "version alpha" in text else "?"


def settings_for(data: Path, **extra: str) -> Settings:
    return Settings.load(env={"COPILOT_DATA_DIR": str(data), **extra})


# ---- in-process behaviour ---------------------------------------------------------------
def test_each_change_is_a_new_version_and_the_previous_one_is_kept(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    a, b = write_kb(tmp_path / "a.jsonl", False), write_kb(tmp_path / "b.jsonl", True)
    client, base = open_client(s), physical_name(s)

    first = ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    assert first.switched and is_version_of(base, first.collection)
    assert first.chunks_embedded == N_DOCS and first.chunks_copied == 0
    pointer = read_pointer(client, base)
    assert pointer is not None and pointer.current == first.collection and pointer.previous == ""
    assert pointer.kb_version == first.kb_version == expected_texts(a)[0]

    again = ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    assert not again.switched and again.collection == first.collection
    assert again.unchanged == N_DOCS and again.chunks_embedded == 0
    assert version_collections(client, base) == [first.collection]

    second = ingest_into(s, s.collection, docs_from_jsonl(b, "doc_id", ["text"]))
    assert second.switched and second.kb_version == expected_texts(b)[0]
    # only the changed half is embedded; the other half is copied with its vectors
    assert (second.chunks_embedded, second.chunks_copied) == (N_DOCS // 2, N_DOCS // 2)
    assert (second.updated, second.unchanged) == (N_DOCS // 2, N_DOCS // 2)
    assert set(version_collections(client, base)) == {first.collection, second.collection}
    served = open_collection(s)
    assert served.name == second.collection and served.count() == N_DOCS
    copied = served.get(ids=["doc-01#en:0"], include=["embeddings"])["embeddings"][0]
    from copilot.embed.registry import get_embedder

    old = get_collection(client, first.collection, get_embedder(), create=False)
    assert list(copied) == list(
        old.get(ids=["doc-01#en:0"], include=["embeddings"])["embeddings"][0]
    )

    third = ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    assert set(version_collections(client, base)) == {second.collection, third.collection}
    assert read_pointer(client, base).previous == second.collection  # type: ignore[union-attr]


def test_leftovers_of_a_killed_ingest_are_removed_by_the_next(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    a = write_kb(tmp_path / "a.jsonl", False)
    first = ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    client, base = open_client(s), physical_name(s)
    from copilot.embed.registry import get_embedder

    half = get_collection(client, f"{base}.v20000101000000-abcdef", get_embedder(), create=True)
    half.add(ids=["doc-00#en:0"], embeddings=[[0.1] * get_embedder().dim], documents=["half"])
    assert open_collection(s).name == first.collection  # never served: nobody points at it
    again = ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    assert not again.switched
    assert version_collections(client, base) == [first.collection]


def test_a_store_from_before_versions_is_served_then_replaced(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    a = write_kb(tmp_path / "a.jsonl", False)
    from copilot.embed.registry import get_embedder

    client, base = open_client(s), physical_name(s)
    legacy = get_collection(client, base, get_embedder(), create=True)
    ingest(legacy, docs_from_jsonl(a, "doc_id", ["text"]), get_embedder())  # the old layout
    assert open_collection(s).name == base
    assert HybridRetriever.from_settings(s).search("withdrawal limit", k=3).hits

    moved = ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    assert moved.unchanged == N_DOCS and not moved.switched  # same content: stays served
    b = write_kb(tmp_path / "b.jsonl", True)
    switched = ingest_into(s, s.collection, docs_from_jsonl(b, "doc_id", ["text"]))
    assert switched.switched and switched.chunks_copied == N_DOCS // 2
    assert read_pointer(client, base).previous == base  # type: ignore[union-attr]
    ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    names = {c.name for c in client.list_collections()}
    assert base not in names and pointer_name(base) in names


def test_a_second_ingest_at_the_same_time_is_refused(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    a = write_kb(tmp_path / "a.jsonl", False)
    base = physical_name(s)
    with (
        ingest_lock(_lock_path(s, base), base),
        pytest.raises(CopilotError, match="another ingest of 'support-kb' is running"),
    ):
        ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    assert ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"])).switched


def test_never_ingested_is_a_clear_error(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    with pytest.raises(CopilotError, match="does not exist; run `python -m copilot ingest`"):
        open_collection(s)


def test_a_pointer_to_a_removed_version_is_a_clear_error_and_ingest_repairs_it(
    tmp_path: Path,
) -> None:
    s = settings_for(tmp_path / "data")
    a = write_kb(tmp_path / "a.jsonl", False)
    first = ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    open_client(s).delete_collection(name=first.collection)  # e.g. removed by hand
    with pytest.raises(CopilotError, match="names a collection that does not exist"):
        open_collection(s)
    repaired = ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    assert repaired.switched and repaired.added == N_DOCS  # built afresh (vectors from cache)
    assert open_collection(s).count() == N_DOCS


def test_a_reader_holding_a_removed_version_reads_the_pointer_again(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    a, b = write_kb(tmp_path / "a.jsonl", False), write_kb(tmp_path / "b.jsonl", True)
    ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))
    reader = HybridRetriever.from_settings(s)
    reader.refresh_s = 3600.0  # would keep the version in hand for an hour
    assert reader.search("bravo review queue", k=N_DOCS).kb_version == expected_texts(a)[0]
    ingest_into(s, s.collection, docs_from_jsonl(b, "doc_id", ["text"]))
    still = reader.search("bravo review queue", k=N_DOCS)  # the previous version is kept
    assert still.kb_version == expected_texts(a)[0]
    ingest_into(s, s.collection, docs_from_jsonl(a, "doc_id", ["text"]))  # removes the first
    ingest_into(s, s.collection, docs_from_jsonl(b, "doc_id", ["text"]))
    res = reader.search("bravo review queue", k=N_DOCS)
    assert res.kb_version == expected_texts(b)[0] and len(res.hits) == N_DOCS
    assert reader.refresh() == expected_texts(b)[0]


def test_a_draft_records_the_version_it_searched_and_uses_its_articles(
    tmp_path: Path, kb_copy: Path, kb_store: Path
) -> None:
    """Templates come from the searched version, not from a knowledge folder that is ahead."""
    from copilot.draft.factory import build_copilot
    from copilot.draft.types import DraftRequest

    data = tmp_path / "data"
    s = settings_for(
        data,
        # the session's vectors (a cache): only the edited chunk is embedded
        COPILOT_EMBED_CACHE=str(kb_store / "cache" / "embeddings-v2.sqlite"),
        COPILOT_KNOWLEDGE_DIR=str(kb_copy),
        COPILOT_PROMPTS_DIR=str(ROOT / "prompts"),
        COPILOT_POLICY_FILE=str(ROOT / "prompts" / "policy.yaml"),
        COPILOT_KB_REFRESH_S="0",
    )
    first = ingest_into(s, s.collection, docs_from_articles(load_kb(kb_copy)))
    copilot = build_copilot(s, "offline")
    request = DraftRequest("My withdrawal has been pending for two hours, where is it?")
    before = copilot.draft(request)
    assert before.kb_version == first.kb_version and "faq/withdrawal" in {
        src["id"] for src in before.sources
    }

    # the agent edits the article in the folder but has not ingested yet: drafts stay on v1
    path = kb_copy / "faq" / "withdrawal.en.md"
    original = path.read_text(encoding="utf-8")
    # a marker at the head of every section: the draft quotes whichever one answers it
    # (the reply template, or the question section retrieval matched)
    edited = re.sub(r"(\{#[a-z0-9-]+\}\n)", r"\1ZEBRA-MARKER-42.\n", original)
    assert edited != original
    path.write_text(edited, encoding="utf-8")
    pending = copilot.draft(request)
    assert pending.kb_version == first.kb_version and "ZEBRA-MARKER-42" not in pending.draft

    second = ingest_into(s, s.collection, docs_from_articles(load_kb(kb_copy)))
    path.write_text(original, encoding="utf-8")  # the folder moves on again: v2 is served
    after = copilot.draft(request)
    assert after.kb_version == second.kb_version != first.kb_version
    assert "ZEBRA-MARKER-42" in after.draft  # the article as version 2 holds it


@pytest.mark.chroma_server
def test_replicas_on_a_chroma_server_pick_up_a_new_version(tmp_path: Path, chroma_url: str) -> None:
    name = f"replicas-{uuid.uuid4().hex[:8]}"
    env = {"COPILOT_CHROMA_URL": chroma_url, "COPILOT_COLLECTION": name}
    a, b = write_kb(tmp_path / "a.jsonl", False), write_kb(tmp_path / "b.jsonl", True)
    ingester = settings_for(tmp_path / "ingester", **env)
    ingest_into(ingester, name, docs_from_jsonl(a, "doc_id", ["text"]))
    replicas = [
        HybridRetriever.from_settings(settings_for(tmp_path / f"replica{i}", **env))
        for i in range(2)
    ]
    for replica in replicas:
        replica.refresh_s = 3600.0
        assert replica.search("review queue", k=3).kb_version == expected_texts(a)[0]
    ingest_into(ingester, name, docs_from_jsonl(b, "doc_id", ["text"]))
    for replica in replicas:
        assert replica.refresh() == expected_texts(b)[0]  # what refresh_s does on a timer
        hits = replica.search("bravo review queue", k=N_DOCS).hits
        assert {marker(h.text) for h in hits if h.article_id in ("doc-00", "doc-02")} == {"bravo"}


# ---- kill -9 at random points while a reader searches ----------------------------------
INGEST_SCRIPT = """
import json, sys
from pathlib import Path
from copilot.embed.registry import get_embedder
from copilot.kb.ingest import docs_from_jsonl
from copilot.retrieval.index import ingest_into
from copilot.settings import Settings
settings = Settings.load()
docs = docs_from_jsonl(Path(sys.argv[1]), "doc_id", ["text"])
get_embedder(settings=settings)
print("ready", flush=True)
report = ingest_into(settings, settings.collection, docs)
print(json.dumps({"kb_version": report.kb_version, "seconds": report.seconds}), flush=True)
"""


def start_ingest(data: Path, kb: Path, cache: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "COPILOT_DATA_DIR": str(data),
        "COPILOT_EMBED_CACHE": str(cache),  # a fresh cache: every run really embeds
    }
    return subprocess.Popen(
        [sys.executable, "-c", INGEST_SCRIPT, str(kb)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")


class Reader(threading.Thread):
    """Searches and reads the served collection without pause; records what it saw."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.retriever = HybridRetriever.from_settings(settings)
        self.stop = threading.Event()
        self.seen: list[tuple[str, str, dict[str, str]]] = []  # (how, kb_version, markers)
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                res = self.retriever.search("withdrawal limit review queue", k=N_DOCS)
                self.seen.append(
                    ("search", res.kb_version, {h.article_id: marker(h.text) for h in res.hits})
                )
                served = open_collection(self.settings)
                got = served.get(include=["documents", "metadatas"])
                self.seen.append(
                    (
                        "collection",
                        str((served.metadata or {}).get("kb_version", "")),
                        {
                            str(m["article_id"]): marker(d)
                            for d, m in zip(got["documents"], got["metadatas"], strict=True)
                        },
                    )
                )
            except Exception as exc:  # any error fails the test
                self.errors.append(f"{type(exc).__name__}: {exc}")


@pytest.fixture
def reader_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    data = tmp_path / "data"
    monkeypatch.setenv("COPILOT_DATA_DIR", str(data))
    a, b = write_kb(tmp_path / "a.jsonl", False), write_kb(tmp_path / "b.jsonl", True)
    yield {"data": data, "kbs": {"a": a, "b": b}}


def test_kill_9_at_random_points_never_shows_half_an_ingest(
    tmp_path: Path, reader_env: dict[str, Any]
) -> None:
    data, kbs = reader_env["data"], reader_env["kbs"]
    versions = {key: expected_texts(path) for key, path in kbs.items()}
    by_version = {v: (key, markers) for key, (v, markers) in versions.items()}
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)

    first = start_ingest(data, kbs["a"], tmp_path / "cache-0.sqlite")
    wait_ready(first)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    full = float(json.loads(out.strip().splitlines()[-1])["seconds"])

    settings = settings_for(data, COPILOT_KB_REFRESH_S="0")
    reader = Reader(settings)
    reader.start()
    served = "a"
    kills: list[float] = []
    try:
        for round_ in range(1, 7):
            target = "b" if served == "a" else "a"
            proc = start_ingest(data, kbs[target], tmp_path / f"cache-{round_}.sqlite")
            wait_ready(proc)
            delay = rng.uniform(0.0, full * 1.2)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            kills.append(round(delay, 3))
            pointer = read_pointer(open_client(settings), physical_name(settings))
            assert pointer is not None
            served = by_version[pointer.kb_version][0]  # old, or new when it had finished
        target = "b" if served == "a" else "a"
        last = start_ingest(data, kbs[target], tmp_path / "cache-last.sqlite")
        wait_ready(last)
        out, err = last.communicate(timeout=300)
        assert last.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["kb_version"] == versions[target][0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            reader.seen and reader.seen[-1][1] == versions[target][0]
        ):
            time.sleep(0.05)
    finally:
        reader.stop.set()
        reader.join(timeout=60)
    context = f"seed {seed}, kills after {kills} s of a {full:.2f} s ingest"
    assert not reader.errors, (context, reader.errors[:5])
    assert reader.seen, context
    for how, version, markers in reader.seen:
        assert version in by_version, (context, how, version)
        assert markers == by_version[version][1], (context, how, version, markers)
    assert reader.seen[-1][1] == versions[target][0], context
    # the fresh ingest left only the served version and the one before it
    client, base = open_client(settings), physical_name(settings)
    pointer = read_pointer(client, base)
    assert pointer is not None and pointer.current and pointer.previous
    assert set(version_collections(client, base)) == {pointer.current, pointer.previous}
