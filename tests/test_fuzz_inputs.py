"""Any input, a clear answer: the JSONL readers, the KB article parser and language detection
get arbitrary Unicode (and bytes) from Hypothesis and must return a result or raise a
:class:`CopilotError` naming the file, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copilot.errors import CopilotError, Problem
from copilot.evaluation.cases import GoldenSet, load_drafts, load_golden
from copilot.jsonl import read_jsonl
from copilot.kb.articles import parse_article, split_sections
from copilot.kb.ingest import docs_from_jsonl
from copilot.text.language import LANGUAGES, detect_language

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_subnormal=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# a line: valid JSON objects (with the fields the readers look for), other JSON, or any text
json_lines = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "id": json_values,
            "customer_message": json_values,
            "golden_reply": json_values,
            "language": st.sampled_from(["en", "ja", "zh", "xx", ""]) | json_values,
            "draft": json_values,
            "sources": json_values,
            "doc_id": json_values,
            "must_include": json_values,
        },
    ).map(json.dumps),
    json_values.map(json.dumps),
    st.text(),
)
jsonl_files = st.one_of(
    st.lists(json_lines, max_size=6).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _clear(exc: CopilotError, path: Path) -> None:
    assert str(path) in str(exc), f"the error does not name the file: {exc}"
    assert "Traceback" not in str(exc)


def _call(fn: Any, path: Path) -> Any:
    try:
        return fn()
    except CopilotError as exc:
        _clear(exc, path)
        return None


@FUZZ
@given(content=jsonl_files)
def test_read_jsonl_answers_every_line_or_names_the_file(fuzz_dir: Path, content: bytes) -> None:
    path = fuzz_dir / "in.jsonl"
    path.write_bytes(content)
    items = _call(lambda: list(read_jsonl(path)), path)
    for number, item in items or []:
        assert number >= 1
        if isinstance(item, Problem):
            assert item.path == str(path) and item.line == number and item.message
        else:
            assert isinstance(item, dict)


@FUZZ
@given(golden=jsonl_files, drafts=jsonl_files)
def test_golden_and_drafts_load_or_fail_clearly(
    fuzz_dir: Path, golden: bytes, drafts: bytes
) -> None:
    gpath, dpath = fuzz_dir / "golden.jsonl", fuzz_dir / "drafts.jsonl"
    gpath.write_bytes(golden)
    dpath.write_bytes(drafts)
    loaded = _call(lambda: load_golden(gpath), gpath)
    assert loaded is None or isinstance(loaded, GoldenSet)
    if loaded is not None:
        result = _call(lambda: load_drafts(dpath, loaded), dpath)
        assert result is None or isinstance(result, dict)


@FUZZ
@given(content=jsonl_files)
def test_kb_jsonl_loads_or_fails_clearly(fuzz_dir: Path, content: bytes) -> None:
    path = fuzz_dir / "kb.jsonl"
    path.write_bytes(content)
    docs = _call(lambda: docs_from_jsonl(path), path)
    for doc in docs or []:
        assert doc.chunks and all(c.text.strip() for c in doc.chunks)


front_matter = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=20) | st.sampled_from(["faq/withdrawal", "playbook/x"]),
        "title": st.text(max_size=30),
        "language": st.sampled_from(["en", "ja", "zh", "fr"]) | st.text(max_size=3),
        "type": st.sampled_from(["faq", "playbook", "other"]),
        "tags": st.lists(st.text(max_size=8), max_size=3) | st.text(max_size=8),
        "updated": st.text(max_size=12) | st.sampled_from(["2026-01-01"]),
    },
)


def _article_text(front: dict[str, Any], body: str) -> str:
    lines = [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items()]
    return "---\n" + "\n".join(lines) + "\n---\n" + body


articles = st.one_of(
    st.builds(_article_text, front_matter, st.text()),
    st.builds(
        _article_text,
        front_matter,
        st.lists(
            st.sampled_from(["## Q", "### A", "text", "", "- item", "# T"]) | st.text(max_size=20)
        ).map("\n".join),
    ),
    st.text(),
)


@FUZZ
@given(text=articles, raw=st.booleans(), junk=st.binary(max_size=40))
def test_kb_article_parser_returns_an_article_or_problems(
    fuzz_dir: Path, text: str, raw: bool, junk: bytes
) -> None:
    kb = fuzz_dir / "kb" / "faq"
    kb.mkdir(parents=True, exist_ok=True)
    path = kb / "fuzz.en.md"
    path.write_bytes(junk if raw else text.encode("utf-8", "surrogatepass"))
    problems: list[Problem] = []
    article = parse_article(path, problems, root=fuzz_dir / "kb")
    assert article is not None or problems
    for p in problems:
        assert p.path == str(path) and p.line >= 1 and p.message
    if article is not None:
        assert article.id and article.language


@FUZZ
@given(body=st.text(), first=st.integers(min_value=1, max_value=10_000))
def test_split_sections_never_fails(body: str, first: int) -> None:
    sections = split_sections(body, first)
    assert all(s.line >= first for s in sections)


@settings(max_examples=300, deadline=None)
@given(text=st.text(), default=st.sampled_from(LANGUAGES))
def test_detect_language_answers_any_string(text: str, default: str) -> None:
    assert detect_language(text, default) in LANGUAGES
