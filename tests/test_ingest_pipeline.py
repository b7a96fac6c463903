"""The ingest pipeline (copilot.kb.ingest._embed_into): one thread embeds the next batches while
the caller writes the last ones to Chroma, in order; a failed batch stops it and names its file."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.embed.registry import get_embedder
from copilot.embed.usem3 import UseM3Embedder
from copilot.errors import CopilotError
from copilot.kb import ingest as ingest_module
from copilot.kb.articles import load_kb
from copilot.kb.ingest import SourceDoc, docs_from_articles, ingest, ingest_version
from copilot.kb.vectorstore import get_collection, open_client
from copilot.settings import Settings

KB = Path(__file__).parent.parent / "knowledge"
FILES = ("faq/kyc.en.md", "faq/withdrawal.ja.md", "faq/security.zh.md")


@pytest.fixture
def docs(tmp_path: Path) -> list[SourceDoc]:
    kb = tmp_path / "kb"
    for rel in FILES:
        (kb / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(KB / rel, kb / rel)
    return docs_from_articles(load_kb(kb))


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2 chunks, writes of 5: several of each on a three-article KB."""
    monkeypatch.setattr(ingest_module, "BATCH", 2)
    monkeypatch.setattr(ingest_module, "WRITE_BATCH", 5)
    monkeypatch.setattr(ingest_module, "AHEAD", 3)


def settings_for(tmp_path: Path) -> Settings:
    return Settings.load(
        env={"COPILOT_DATA_DIR": str(tmp_path / "data"), "COPILOT_EMBEDDING_MODEL": "use-m3"}
    )


class Spy:
    """A real Chroma collection whose writes are recorded (and can be made to wait)."""

    def __init__(self, collection: Any, before_write: Any = None) -> None:
        self.collection = collection
        self.writes: list[list[str]] = []
        self.before_write = before_write

    def upsert(self, **kw: Any) -> None:
        if self.before_write is not None:
            self.before_write(len(self.writes))
        self.writes.append(list(kw["ids"]))
        self.collection.upsert(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)


class FailingOn(UseM3Embedder):
    """The real use-m3 model, failing on texts that contain ``marker``."""

    def __init__(self, marker: str, error: Exception) -> None:
        super().__init__(None)
        self.marker, self.error = marker, error

    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        if any(self.marker in t for t in texts):
            raise self.error
        return super().passages(texts, use_cache=use_cache)


def _collection(settings: Settings, name: str, embedder: Any) -> Any:
    return get_collection(open_client(settings), name, embedder, create=True)


@pytest.mark.usefixtures("small_batches")
def test_every_chunk_is_written_in_order_with_its_own_vector(
    tmp_path: Path, docs: list[SourceDoc]
) -> None:
    settings = settings_for(tmp_path)
    embedder = get_embedder("use-m3", settings)
    spy = Spy(_collection(settings, "pipeline-kb", embedder))
    ticks: list[int] = []
    totals: list[int] = []

    def progress(total: int) -> Any:
        totals.append(total)
        return ticks.append

    report = ingest(spy, docs, embedder, progress=progress, use_cache=False)
    chunks = [c for d in docs for c in d.chunks]
    assert len(chunks) > 2 * 5  # several writes, several batches each
    assert report.chunks_embedded == len(chunks)
    assert [i for w in spy.writes for i in w] == [c.id for c in chunks]  # in order, once each
    assert all(len(w) == 6 for w in spy.writes[:-1])  # whole embedding batches, >= WRITE_BATCH
    assert totals == [len(chunks)] and ticks == [2] * (len(chunks) // 2) + [1] * (len(chunks) % 2)
    got = spy.collection.get(ids=[c.id for c in chunks], include=["embeddings", "documents"])
    by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
    docs_by_id = dict(zip(got["ids"], got["documents"], strict=True))
    expected = embedder.passages([c.text for c in chunks], use_cache=False)
    for chunk, vector in zip(chunks, expected, strict=True):
        assert docs_by_id[chunk.id] == chunk.text
        np.testing.assert_allclose(by_id[chunk.id], vector, atol=1e-6)
    assert spy.collection.metadata["kb_version"] == report.kb_version


@pytest.mark.usefixtures("small_batches")
def test_the_next_batch_is_embedded_while_the_last_is_written(
    tmp_path: Path, docs: list[SourceDoc]
) -> None:
    """The first write waits until the embedding of a later batch has begun: a pipeline that
    embedded and wrote by turns would never get there (the wait times out)."""
    settings = settings_for(tmp_path)
    embedder = get_embedder("use-m3", settings)
    calls: list[int] = []
    later_batch_started = threading.Event()

    class Counting(UseM3Embedder):
        def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
            calls.append(len(texts))
            if len(calls) > 3:  # past the first write's three batches
                later_batch_started.set()
            return embedder.passages(texts, use_cache=use_cache)

    seen: list[bool] = []

    def before_write(n: int) -> None:
        if n == 0:
            seen.append(later_batch_started.wait(timeout=30))

    spy = Spy(_collection(settings, "pipeline-overlap", embedder), before_write)
    ingest(spy, docs, Counting(None), use_cache=False)
    assert seen == [True]
    assert len(calls) == -(-sum(len(d.chunks) for d in docs) // 2)


@pytest.mark.usefixtures("small_batches")
def test_a_failed_batch_names_its_file_and_nothing_after_it_is_written(
    tmp_path: Path, docs: list[SourceDoc]
) -> None:
    settings = settings_for(tmp_path)
    chunks = [c for d in docs for c in d.chunks]
    bad = docs[1]  # the second article: its first batch fails
    marker = bad.chunks[0].text[:40]
    embedder = FailingOn(marker, RuntimeError("engine crashed"))
    real = get_embedder("use-m3", settings)
    spy = Spy(_collection(settings, "pipeline-fail", real))
    with pytest.raises(CopilotError) as caught:
        ingest(spy, docs, embedder, use_cache=False)
    message = str(caught.value)
    assert f"{bad.chunks[0].metadata['article_path']} ({bad.key})" in message
    assert "RuntimeError: engine crashed" in message
    written = [i for w in spy.writes for i in w]
    first_bad = next(i for i, c in enumerate(chunks) if marker in c.text)
    assert written == [c.id for c in chunks[: len(written)]]
    assert len(written) <= first_bad  # nothing from the failed batch or after it
    assert "kb_version" not in (spy.collection.metadata or {})  # never marked complete


@pytest.mark.usefixtures("small_batches")
def test_an_embedder_error_keeps_its_message_and_exit_code_in_a_new_version(
    tmp_path: Path, docs: list[SourceDoc]
) -> None:
    settings = settings_for(tmp_path)
    marker = docs[2].chunks[-1].text[:40]
    embedder = FailingOn(marker, CopilotError("endpoint timed out after 5 s", exit_code=3))
    real = get_embedder("use-m3", settings)
    target = _collection(settings, "pipeline-version", real)
    with pytest.raises(CopilotError) as caught:
        ingest_version(target, None, docs, embedder, use_cache=False)
    assert caught.value.exit_code == 3
    last = docs[2]  # its last chunk fails: the file is still named (only chunk 0 carries it)
    assert f"{last.chunks[0].metadata['article_path']} ({last.key})" in str(caught.value)
    assert str(caught.value).endswith(": endpoint timed out after 5 s")
    assert "kb_version" not in (target.metadata or {})


def test_where_names_files_once_and_counts_the_rest() -> None:
    from copilot.kb.chunking import Chunk

    batch = [
        Chunk(f"d{i}#en:{j}", "t", {"doc_key": f"d{i}#en", "article_path": f"a/d{i}.md"})
        for i in range(5)
        for j in range(2)
    ]
    batch.append(Chunk("ext#en:0", "t", {"doc_key": "ext#en"}))
    assert ingest_module._where(batch[:4]) == "a/d0.md (d0#en), a/d1.md (d1#en)"
    assert ingest_module._where(batch).endswith("a/d2.md (d2#en) and 3 more")
    assert ingest_module._where(batch[-1:]) == "ext#en"
