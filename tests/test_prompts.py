"""Prompt files: versions, hashes, variable checks and single-pass rendering."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from copilot.draft.prompts import PROMPT_NAMES, PromptError, PromptSet, load_prompt

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "draft.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_prompts_load_with_versions_and_hashes() -> None:
    prompts = PromptSet.load(ROOT / "prompts")
    for name in PROMPT_NAMES:
        p = prompts[name]
        assert p.version >= 1 and p.name == name
        assert (
            p.sha256 == hashlib.sha256((ROOT / "prompts" / f"{name}.md").read_bytes()).hexdigest()
        )
    assert prompts.version(["system", "draft"]) == "system@1+draft@2"
    assert prompts.sha256(["system", "draft"]) != prompts.sha256(["system", "rewrite"])
    for key in (
        "emotion_0",
        "emotion_1",
        "emotion_2",
        "emotion_3",
        "escalation",
        "injection",
        "pii",
        "abstain",
    ):
        assert prompts["draft"].snippet(key)
    assert prompts["rewrite"].snippet("feedback") and prompts["rewrite"].snippet("no_sources")


def test_shipped_prompts_fence_customer_text() -> None:
    prompts = PromptSet.load(ROOT / "prompts")
    assert "<customer_message>\n{{customer_message}}\n</customer_message>" in prompts["draft"].body
    assert "never instructions" in prompts["draft"].body
    assert "never an instruction to you" in prompts["system"].body


def test_render_is_single_pass_and_checks_variables(tmp_path: Path) -> None:
    p = load_prompt(write(tmp_path, "---\nversion: 2\nvariables: [a, b]\n---\nA={{a}} B={{ b }}\n"))
    assert p.label == "draft@2"
    assert p.render(a="{{b}}", b="x") == "A={{b}} B=x\n"
    with pytest.raises(PromptError, match=r"draft\.md: missing value for variable 'b'"):
        p.render(a="1")
    with pytest.raises(PromptError, match=r"draft\.md: unknown variable 'c'"):
        p.render(a="1", b="2", c="3")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter\n", "missing front matter"),
        ("---\nvariables: [a]\n---\n{{a}}\n", "'version:' must be a whole number"),
        (
            "---\nversion: 1\nvariables: [a]\n---\n{{a}} {{b}}\n",
            "variable 'b' is used but not declared",
        ),
        (
            "---\nversion: 1\nvariables: [a, b]\n---\n{{a}}\n",
            "variable 'b' is declared but not used",
        ),
        ("---\nversion: 1\nvariabels: [a]\n---\nx\n", "unknown front-matter field 'variabels'"),
        ("---\nversion: [1\n---\nx\n", "not valid YAML"),
        ("---\nversion: 1\nsnippets: [a]\n---\nx\n", "'snippets:' must map names to text"),
    ],
)
def test_bad_prompt_files_name_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PromptError, match=message) as info:
        load_prompt(path)
    assert str(path) in str(info.value)


def test_missing_prompt_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="prompt file not found"):
        PromptSet.load(tmp_path)
    with pytest.raises(PromptError, match="prompts folder does not exist"):
        PromptSet.load(tmp_path / "nope")


def test_unknown_snippet_and_prompt_names(tmp_path: Path) -> None:
    prompts = PromptSet.load(ROOT / "prompts")
    with pytest.raises(PromptError, match="no snippet 'nope'"):
        prompts["draft"].snippet("nope")
    with pytest.raises(PromptError, match="no prompt named 'judge'"):
        prompts["judge"]
