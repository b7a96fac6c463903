"""Nothing destroyed: batch verbs never write over their input, keep a previous output when a
run fails, and read every good line of a file with a bad byte in the middle.

The JSONL reader itself is checked with Hypothesis: any bytes give one item per non-blank
line, good lines as written, bad ones as ``PATH: line N`` problems.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copilot.cli.main import main
from copilot.errors import CopilotError, Problem
from copilot.jsonl import (
    atomic_output,
    atomic_write_text,
    read_jsonl,
    refuse_overwriting_inputs,
    write_line,
)

PASS_DRAFT = "Withdrawals are processed within 30 minutes [faq/withdrawal]."


def check_lines(n: int) -> bytes:
    return b"".join(
        json.dumps({"id": i, "draft": PASS_DRAFT, "language": "en"}).encode() + b"\n"
        for i in range(1, n + 1)
    )


# ---- the reader ---------------------------------------------------------------------------
def test_an_invalid_byte_is_a_problem_of_its_line_only(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    data = check_lines(400).splitlines(keepends=True)
    data[300] = b'{"id": 301, "draft": "caf\xe9 au lait"}\n'  # Latin-1, not UTF-8
    path.write_bytes(b"".join(data))
    items = list(read_jsonl(path))
    assert len(items) == 400
    problems = [item for _, item in items if isinstance(item, Problem)]
    assert [str(p) for p in problems] == [
        f"{path}: line 301: not UTF-8 text: invalid byte 0xe9 at column 26"
    ]
    assert [n for n, item in items if isinstance(item, dict)][-1] == 400


def test_reader_handles_bom_crlf_blank_lines_deep_nesting_and_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": 1}\r\n'
        b"\r\n"
        b"   \n"
        b"[1, 2]\n" + b"[" * 100_000 + b"\n"
        b'{"id": 6,\n'
        b'{"id": 7}'  # no newline at the end
    )
    got = [(n, item if isinstance(item, dict) else item.message) for n, item in read_jsonl(path)]
    assert got == [
        (1, {"id": 1}),
        (4, "each line must be a JSON object"),
        (5, "not valid JSON: nested too deeply"),
        (6, "not valid JSON: Expecting property name enclosed in double quotes (column 10)"),
        (7, {"id": 7}),
    ]


def test_an_unreadable_file_fails_when_opened_not_later(tmp_path: Path) -> None:
    with pytest.raises(CopilotError, match="cannot read file") as err:
        read_jsonl(tmp_path / "missing.jsonl")
    assert err.value.exit_code == 2
    with pytest.raises(CopilotError, match="cannot read file"):
        read_jsonl(tmp_path)  # a folder


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=3).map(
                lambda d: json.dumps(d, ensure_ascii=False).encode()
            ),
            st.binary(max_size=20).filter(lambda b: b"\n" not in b),
        ),
        max_size=12,
    )
)
def test_every_non_blank_line_gives_exactly_one_item(tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = list(read_jsonl(path))
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):  # a byte-order mark is not content
        lines = [lines[0][3:], *lines[1:]]
    assert [n for n, _ in items] == [
        i
        for i, raw in enumerate(lines, start=1)
        if not _is_utf8(raw) or raw.decode("utf-8").strip()
    ]
    for number, item in items:
        raw = lines[number - 1]
        if isinstance(item, dict):
            assert item == json.loads(raw.decode("utf-8"))
        else:
            assert item.path == str(path) and item.line == number


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_a_lone_surrogate_from_the_input_is_written_escaped(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        write_line(handle, {"draft": "\ud800 broken", "ok": "日本"})
    assert json.loads(out.read_text(encoding="utf-8")) == {"draft": "\ud800 broken", "ok": "日本"}


# ---- outputs ------------------------------------------------------------------------------
@pytest.fixture
def links(tmp_path: Path) -> dict[str, Path]:
    source = tmp_path / "in.jsonl"
    source.write_bytes(check_lines(3))
    hard = tmp_path / "hard.jsonl"
    os.link(source, hard)
    soft = tmp_path / "soft.jsonl"
    soft.symlink_to(source)
    return {"same": source, "relative": Path(os.path.relpath(source)), "hard": hard, "soft": soft}


@pytest.mark.parametrize(
    ("kind", "how"),
    [
        ("same", "the same file as"),
        ("relative", "the same file as"),
        ("hard", "a hard link to"),
        ("soft", "a symbolic link to"),
    ],
)
def test_an_output_that_is_the_input_is_refused(
    links: dict[str, Path], kind: str, how: str
) -> None:
    with pytest.raises(CopilotError, match=how) as err:
        refuse_overwriting_inputs(links[kind], {"--input": links["same"]})
    assert "nothing was written" in str(err.value) and err.value.exit_code == 2
    refuse_overwriting_inputs(links["same"].with_name("other.jsonl"), {"--input": links["same"]})
    refuse_overwriting_inputs(None, {"--input": links["same"]})


VERBS: dict[str, Callable[[Path, Path], list[str]]] = {
    "check": lambda i, o: ["check", "--input", str(i), "--output", str(o)],
    "search": lambda i, o: ["search", "--input", str(i), "--output", str(o)],
    "draft": lambda i, o: ["draft", "--input", str(i), "--output", str(o), "--no-record"],
}


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("kind", ["same", "hard", "soft"])
def test_batch_verbs_refuse_to_overwrite_their_input(
    verb: str,
    kind: str,
    links: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = links["same"].read_bytes()  # refused before any index or model is loaded
    assert main(VERBS[verb](links["same"], links[kind])) == 2
    assert "would destroy the input" in capsys.readouterr().err
    assert links["same"].read_bytes() == before


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_an_unreadable_input_leaves_the_previous_output(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "from yesterday"}\n', encoding="utf-8")
    assert main(VERBS[verb](tmp_path / "missing.jsonl", out)) == 2
    assert "cannot read file" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == '{"id": "from yesterday"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temporary left


def test_an_interrupted_run_keeps_the_previous_output_and_the_partial_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from copilot.guard.guardrail import PolicyGuardrail

    source = tmp_path / "in.jsonl"
    source.write_bytes(check_lines(5))
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    calls = {"n": 0}
    real = PolicyGuardrail.check

    def check(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PolicyGuardrail, "check", check)
    assert main(["check", "--input", str(source), "--output", str(out)]) == 130
    assert out.read_text(encoding="utf-8") == "previous\n"
    partial = tmp_path / "out.jsonl.partial"
    assert [json.loads(x)["id"] for x in partial.read_text(encoding="utf-8").splitlines()] == [1, 2]
    assert f"{out} is unchanged" in capsys.readouterr().err


def test_check_goes_on_after_an_invalid_byte_on_line_301_of_400(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    data = check_lines(400).splitlines(keepends=True)
    data[300] = b'{"id": 301, "draft": "\xff\xfe"}\n'
    source.write_bytes(b"".join(data))
    out = tmp_path / "out.jsonl"
    assert main(["check", "--input", str(source), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{source}: line 301: not UTF-8 text: invalid byte 0xff at column 23" in err
    ids = [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == 399 and 301 not in ids and ids[-1] == 400
    assert "399 draft(s)" in err and "1 bad line(s)" in err


def test_a_symlinked_output_is_written_through_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real.jsonl"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with atomic_output(link) as handle:
        handle.write("new\n")
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640  # the file's mode is kept
    atomic_write_text(tmp_path / "fresh.txt", "x")
    assert (tmp_path / "fresh.txt").read_text(encoding="utf-8") == "x"


def test_an_output_folder_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    with (
        pytest.raises(CopilotError, match="cannot write") as err,
        atomic_output(tmp_path / "no" / "such" / "out.jsonl"),
    ):
        pass
    assert err.value.exit_code == 2


def test_search_refuses_a_query_over_the_limit(
    use_kb_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_MAX_QUERY_CHARS", "50")
    get_settings.cache_clear()
    assert main(["search", "x" * 51]) == 2
    assert "51 characters, over the limit of 50 (COPILOT_MAX_QUERY_CHARS)" in (
        capsys.readouterr().err
    )
    source = tmp_path / "q.jsonl"
    source.write_text(
        '{"id": "a", "query": "withdrawal pending"}\n'
        + json.dumps({"id": "b", "query": "y" * 5000})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    assert main(["search", "--input", str(source), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{source}: line 2: field 'query': 5000 characters is over the limit of 50" in err
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["results"] and rows[1]["error"].startswith("field 'query': 5000 characters")
