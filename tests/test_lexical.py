"""Tokenisation per language, the BM25 index, and keeping it in step with Chroma after ingest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from copilot.kb.chunking import Chunk
from copilot.kb.ingest import SourceDoc
from copilot.retrieval.lexical import ChunkRecord, LexicalIndex, index_folder, sync_index, tokenize
from copilot.settings import Settings


def test_tokenize_english_words_stemmed_and_stopwords_dropped() -> None:
    assert tokenize("My withdrawals are STUCK, lost 2FA codes") == [
        "withdrawal",
        "stuck",
        "lost",
        "2fa",
        "code",
    ]
    assert tokenize("Error E1023 on order #W240611883019") == [
        "error",
        "e1023",
        "order",
        "w240611883019",
    ]


def test_tokenize_full_width_is_folded() -> None:
    assert tokenize("ＵＳＤＴ　ＫＹＣ") == ["usdt", "kyc"]


def test_tokenize_japanese_bigrams_and_mixed_english() -> None:
    assert tokenize("出金できない") == ["出金", "金で", "でき", "きな", "ない"]
    assert tokenize("USDTをwithdrawしたい") == ["usdt", "を", "withdraw", "した", "たい"]


def test_tokenize_chinese_bigrams_and_single_characters() -> None:
    assert tokenize("提现手续费") == ["提现", "现手", "手续", "续费"]
    assert tokenize("币 KYC") == ["币", "kyc"]


def _record(cid: str, text: str, *, tags: tuple[str, ...] = ()) -> ChunkRecord:
    doc_key = cid.rsplit(":", 1)[0]
    article_id, language = doc_key.split("#")
    return ChunkRecord(
        cid, doc_key, article_id, language, "faq", article_id, tags, "", "", "h-" + cid, text
    )


def test_bm25_ranks_exact_terms_and_scores_coverage() -> None:
    index = LexicalIndex.build(
        [
            _record("faq/a#en:0", "Withdrawal fees: USDT-TRC20 costs 1 USDT."),
            _record("faq/b#en:0", "Reset 2FA with an ID photo and a selfie."),
            _record("faq/c#ja:0", "出金の手数料はネットワークごとに決まっています。"),
        ],
        "v1",
    )
    hits = index.search("how do I reset my 2FA", 5)
    assert [index.records[row].article_id for row, _ in hits] == ["faq/b"]
    assert index.records[index.search("出金 手数料", 5)[0][0]].article_id == "faq/c"
    assert index.search("zzzz qqqq", 5) == []
    assert index.coverage("reset 2fa", 1) == pytest.approx(1.0)
    assert index.coverage("reset 2fa", 0) == 0.0
    assert 0.0 < index.coverage("reset 2fa usdt", 1) < 1.0


def test_tags_are_searchable_and_mask_filters() -> None:
    index = LexicalIndex.build(
        [
            _record("faq/a#ja:0", "出金について", tags=("withdrawal", "txid")),
            _record("faq/b#ja:0", "入金について", tags=("deposit",)),
        ],
        "v1",
    )
    assert index.records[index.search("txid", 5)[0][0]].article_id == "faq/a"
    only_b = index.mask(["faq/b#ja"])
    assert [index.records[r].article_id for r, _ in index.search("について", 5, only_b)] == [
        "faq/b"
    ]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = LexicalIndex.build([_record("faq/a#en:0", "withdrawal stuck")], "v7")
    index.save(tmp_path / "idx")
    loaded = LexicalIndex.load(tmp_path / "idx")
    assert loaded is not None
    assert loaded.kb_version == "v7"
    assert loaded.records == index.records
    assert loaded.search("stuck", 3)[0][0] == 0
    assert LexicalIndex.load(tmp_path / "missing") is None


def test_load_refuses_an_index_built_by_another_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    LexicalIndex.build([_record("faq/a#en:0", "x y z")], "v1").save(tmp_path / "idx")
    monkeypatch.setattr("copilot.retrieval.lexical.TOKENIZER_VERSION", 999)
    assert LexicalIndex.load(tmp_path / "idx") is None


# ---- kept in step with Chroma ----------------------------------------------------------
def _doc(article_id: str, text: str) -> SourceDoc:
    key = f"{article_id}#en"
    digest = hashlib.sha256(text.encode()).hexdigest()
    meta = {
        "article_id": article_id,
        "doc_key": key,
        "language": "en",
        "type": "faq",
        "title": article_id,
        "tags": ",",
        "heading_path": article_id,
        "section": "",
        "line": 1,
        "tokens": 5,
        "article_hash": digest,
        "article_version": 1,
    }
    return SourceDoc(key, digest, (Chunk(f"{key}:0", text, meta),))


def test_bm25_index_follows_ingest_update_and_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.retrieval.index import ingest_into, open_collection

    settings = Settings.load(env={"COPILOT_DATA_DIR": str(tmp_path / "data")})
    name = "lexsync"

    def folder() -> Path:  # each KB version has its own saved index
        return index_folder(settings, open_collection(settings, name).name)

    def current() -> LexicalIndex:
        index = LexicalIndex.load(folder())
        assert index is not None
        return index

    def articles(index: LexicalIndex, query: str) -> list[str]:
        return [index.records[row].article_id for row, _ in index.search(query, 5)]

    ingest_into(settings, name, [_doc("faq/a", "zebra crossing"), _doc("faq/b", "lion king")])
    first = current()
    assert articles(first, "zebra") == ["faq/a"]
    assert first.kb_version == open_collection(settings, name).metadata["kb_version"]

    # unchanged KB: no new version, nothing is rebuilt (the CURRENT build stays the same)
    first_folder = folder()
    build = (first_folder / "CURRENT").read_text()
    ingest_into(settings, name, [_doc("faq/a", "zebra crossing"), _doc("faq/b", "lion king")])
    assert folder() == first_folder and (first_folder / "CURRENT").read_text() == build

    # update: only the changed chunk's text is read back from Chroma
    fetched: list[str] = []
    import copilot.retrieval.lexical as lexical_module

    real_fetch = lexical_module.fetch_records

    def spy(collection, previous=None):  # type: ignore[no-untyped-def]
        real_get = collection.get

        def get(**kwargs):  # type: ignore[no-untyped-def]
            if "documents" in kwargs.get("include", []):
                fetched.extend(kwargs.get("ids") or [])
            return real_get(**kwargs)

        monkeypatch.setattr(collection, "get", get)
        return real_fetch(collection, previous)

    monkeypatch.setattr(lexical_module, "fetch_records", spy)
    ingest_into(settings, name, [_doc("faq/a", "giraffe crossing"), _doc("faq/b", "lion king")])
    updated = current()
    assert folder() != first_folder and first_folder.is_dir()  # the previous version is kept
    assert articles(updated, "giraffe") == ["faq/a"]
    assert articles(updated, "zebra") == []
    assert fetched == ["faq/a#en:0"]

    # delete; the index of the version before the previous one is pruned
    ingest_into(settings, name, [_doc("faq/a", "giraffe crossing")])
    deleted = current()
    assert articles(deleted, "lion") == []
    assert len(deleted) == 1
    assert deleted.kb_version == open_collection(settings, name).metadata["kb_version"]
    assert not first_folder.exists()


def test_sync_rebuilds_when_the_saved_index_is_stale(tmp_path: Path) -> None:
    from copilot.retrieval.index import ingest_into, open_collection

    settings = Settings.load(env={"COPILOT_DATA_DIR": str(tmp_path / "data")})
    ingest_into(settings, "lexstale", [_doc("faq/a", "zebra crossing")])
    served = open_collection(settings, "lexstale")
    folder = index_folder(settings, served.name)
    LexicalIndex.build([], "old-version").save(folder)  # e.g. damaged or from another build
    index = sync_index(settings, served.name, served)
    assert len(index) == 1
    assert index.records[0].text == "zebra crossing"
