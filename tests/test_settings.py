"""Settings: defaults, env and TOML precedence, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.errors import SettingsError
from copilot.settings import Settings, get_settings


def test_defaults_need_no_key_and_no_network() -> None:
    s = Settings.load(env={})
    assert s.llm_backend == "offline"
    assert s.collection == "support-kb"
    assert s.chroma_url is None
    assert s.database.startswith("sqlite:///")
    assert s.chroma_dir == Path(".copilot") / "chroma"


def test_env_overrides_toml_which_overrides_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "copilot.toml"
    toml.write_text('collection = "from-toml"\nretrieval_k = 7\nknowledge_dir = "kb"\n')
    s = Settings.load(env={"COPILOT_COLLECTION": "from-env"}, toml_path=toml)
    assert s.collection == "from-env"
    assert s.retrieval_k == 7
    assert s.knowledge_dir == tmp_path / "kb"  # relative to the TOML file


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        (
            {"COPILOT_LLM_BACKEND": "gpt"},
            "COPILOT_LLM_BACKEND: 'gpt' is not allowed; use one of offline, openai, fake",
        ),
        ({"COPILOT_RETRIEVAL_K": "many"}, "COPILOT_RETRIEVAL_K: 'many' is not a whole number"),
        ({"COPILOT_RETRIEVAL_K": "0"}, "COPILOT_RETRIEVAL_K: '0' must be at least 1"),
        ({"COPILOT_CHROMA_URL": "localhost:8000"}, "COPILOT_CHROMA_URL"),
        ({"COPILOT_DATABASE_URL": "mysql://x"}, "COPILOT_DATABASE_URL"),
        (
            {"COPILOT_GUARDRAIL_LLM_JUDGE": "maybe"},
            "COPILOT_GUARDRAIL_LLM_JUDGE: 'maybe' is not allowed",
        ),
        ({"COPILOT_EMBEDDING_MODEL": "bert"}, "COPILOT_EMBEDDING_MODEL"),
        ({"COPILOT_COLLECTION": "x"}, "COPILOT_COLLECTION"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(env=env)
    assert needle in str(err.value)


def test_unknown_toml_key_is_reported(tmp_path: Path) -> None:
    toml = tmp_path / "copilot.toml"
    toml.write_text("colection = 'typo'\n")
    with pytest.raises(SettingsError, match=r"unknown setting.*colection"):
        Settings.load(env={}, toml_path=toml)


def test_api_key_comes_from_openai_variable_and_is_not_printed() -> None:
    s = Settings.load(env={"OPENAI_API_KEY": "sk-secret"})
    assert s.openai_api_key == "sk-secret"
    assert "sk-secret" not in repr(s)


def test_settings_are_frozen_and_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("COPILOT_COLLECTION", "changed-later")
    assert get_settings() is first
    with pytest.raises(AttributeError):
        first.collection = "x"  # type: ignore[misc]


def test_every_setting_is_documented_in_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for var, _default, doc in Settings.documented():
        assert doc, var
        assert f"`{var}`" in readme, f"{var} missing from README configuration table"


def test_dense_query_token_cap_reaches_the_retriever() -> None:
    from copilot.retrieval.hybrid import HybridRetriever

    settings = Settings.load(env={"COPILOT_RETRIEVAL_DENSE_TOKENS": "32"})
    assert HybridRetriever.from_settings(settings).dense_query_tokens == 32
    with pytest.raises(
        SettingsError, match="COPILOT_RETRIEVAL_DENSE_TOKENS: '4' must be at least 8"
    ):
        Settings.load(env={"COPILOT_RETRIEVAL_DENSE_TOKENS": "4"})
