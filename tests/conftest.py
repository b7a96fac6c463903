"""Shared fixtures: isolated settings, no real API keys, no network beyond loopback.

pytest-socket (see pyproject addopts) blocks every socket except unix sockets
and loopback hosts, so an accidental download fails a test instead of hanging.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
KB_DIR = ROOT / "knowledge"

os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT / ".copilot" / "tiktoken"))
from copilot.runtime import configure  # noqa: E402

configure()

# Property tests check behaviour, never speed: no per-example deadline and no "too slow"
# health check, which fail on a loaded shared machine (performance lives in copilot bench).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("copilot", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("copilot")


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No real API keys; settings re-read per test from a private data dir."""
    from copilot.settings import get_settings

    for key in list(os.environ):
        if key.startswith("COPILOT_") or key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "badkey")
    monkeypatch.setenv("COPILOT_KNOWLEDGE_DIR", str(KB_DIR))
    monkeypatch.setenv("COPILOT_PROMPTS_DIR", str(ROOT / "prompts"))
    monkeypatch.setenv("COPILOT_POLICY_FILE", str(ROOT / "prompts" / "policy.yaml"))
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def kb_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the shipped KB ingested once per test session (read-only for tests)."""
    from copilot.kb.articles import load_kb
    from copilot.kb.ingest import docs_from_articles
    from copilot.retrieval.index import ingest_into
    from copilot.settings import Settings

    data = tmp_path_factory.mktemp("kb-store")
    settings = Settings.load(
        env={"COPILOT_DATA_DIR": str(data), "COPILOT_KNOWLEDGE_DIR": str(KB_DIR)}
    )
    ingest_into(settings, settings.collection, docs_from_articles(load_kb(KB_DIR)))
    return data


@pytest.fixture
def use_kb_store(kb_store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point settings at the session's ingested KB (drafts are recorded in a private database)."""
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_DATA_DIR", str(kb_store))
    monkeypatch.setenv("COPILOT_DATABASE_URL", f"sqlite:///{tmp_path / 'recorded' / 'copilot.db'}")
    get_settings.cache_clear()
    return kb_store


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A private, writable copy of the shipped KB."""
    dest = tmp_path / "knowledge"
    shutil.copytree(KB_DIR, dest)
    return dest


@pytest.fixture(scope="session")
def offline_copilot(kb_store: Path) -> Any:
    """A Copilot on the offline backend over the session's ingested KB (shared, read-only)."""
    from copilot.draft.factory import build_copilot
    from copilot.settings import Settings

    settings = Settings.load(
        env={
            "COPILOT_DATA_DIR": str(kb_store),
            "COPILOT_KNOWLEDGE_DIR": str(KB_DIR),
            "COPILOT_PROMPTS_DIR": str(ROOT / "prompts"),
            "COPILOT_POLICY_FILE": str(ROOT / "prompts" / "policy.yaml"),
        }
    )
    return build_copilot(settings, "offline")


def rules_only(settings: Any) -> Any:
    """``settings`` with the guardrail's learned tier off: the tests of the rules tier (its
    patterns, negation, figures, checks) pin what the rules do on their own; the learned tier
    is measured on its dev split and the frozen test set (copilot bench guardrails)."""
    import dataclasses

    return dataclasses.replace(settings, guardrail_learned=False)


@pytest.fixture(scope="session")
def chroma_url() -> Iterator[str]:
    """A `chroma run` server on loopback for the session (check.sh's, else a private one);
    tests sharing it use their own collection names."""
    from tests.chroma import chroma_server

    with chroma_server() as url:
        yield url
