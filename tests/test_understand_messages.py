"""The labelled-message loader: every problem names file, line and field; the dev split is stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.errors import InputError
from copilot.understand.messages import (
    TOPICS,
    load_many,
    load_messages,
    load_split,
    split_of,
    training_files,
)

GOOD = {
    "id": "t-zh-0001",
    "language": "zh",
    "variant": None,
    "message": "提币三天了还没到账，提币ID W2409110023，TRC20",
    "thread": [{"role": "customer", "text": "提币"}],
    "agent_note": "  ",
    "topics": ["faq/withdrawal"],
    "flags": ["deadline"],
    "escalation": [],
    "emotion": 1,
    "injection": False,
    "facts": {"withdrawal_id": "W2409110023", "network": "TRC20"},
    "note": "stuck",
}


def _write(tmp_path: Path, rows: list[object], name: str = "m.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
        encoding="utf-8",
    )
    return path


def test_a_good_line_loads(tmp_path: Path) -> None:
    (m,) = load_messages(_write(tmp_path, [GOOD, ""]))
    assert m.id == "t-zh-0001" and m.language == "zh" and m.topics == ("faq/withdrawal",)
    assert m.flags == ("deadline",) and m.emotion == 1 and m.agent_note is None
    assert m.thread[0].role == "customer" and m.facts["network"] == "TRC20"
    assert m.source == "m.jsonl" and m.line == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"language": "fr"}, "language"),
        ({"message": " "}, "message"),
        ({"id": ""}, "id"),
        ({"variant": "zh-TW"}, "variant"),
        ({"thread": "x"}, "thread"),
        ({"thread": [{"role": "bot", "text": "x"}]}, "thread[0]"),
        ({"agent_note": 3}, "agent_note"),
        ({"topics": []}, "topics"),
        ({"topics": ["faq/nope"]}, "topics"),
        ({"flags": ["angry"]}, "flags"),
        ({"escalation": ["mum"]}, "escalation"),
        ({"emotion": 4}, "emotion"),
        ({"emotion": True}, "emotion"),
        ({"injection": "no"}, "injection"),
        ({"facts": {"colour": "red"}}, "facts"),
        ({"mood": 1}, "mood"),
    ],
)
def test_each_bad_field_is_named_with_file_and_line(
    tmp_path: Path, change: dict[str, object], field: str
) -> None:
    path = _write(tmp_path, [{**GOOD, "id": "t-zh-0000"}, {**GOOD, **change}])
    with pytest.raises(InputError) as err:
        load_messages(path)
    (problem,) = err.value.problems
    assert problem.path == str(path) and problem.line == 2
    assert problem.message.startswith(f"field '{field}'")
    assert f"m.jsonl: line 2: field '{field}'" in str(err.value)


def test_not_json_not_an_object_and_repeats_are_all_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, ["{oops", "[1]", GOOD, GOOD])
    with pytest.raises(InputError) as err:
        load_messages(path)
    lines = [(p.line, p.message.split(":")[0]) for p in err.value.problems]
    assert lines == [
        (1, "not valid JSON"),
        (2, "each line must be a JSON object"),
        (4, "field 'id'"),
    ]


def test_unreadable_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_messages(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="no labelled-message files"):
        training_files(tmp_path)


def test_an_id_may_appear_once_across_files(tmp_path: Path) -> None:
    a = _write(tmp_path, [GOOD], "a.jsonl")
    b = _write(tmp_path, [GOOD], "b.jsonl")
    with pytest.raises(InputError, match=r"b.jsonl: line 1: field 'id'.*also in a.jsonl"):
        load_many([a, b])


def test_the_dev_split_is_stable_and_about_a_fifth(tmp_path: Path) -> None:
    ids = [f"x-en-{i:04d}" for i in range(2000)]
    dev = [i for i in ids if split_of(i) == "dev"]
    assert 300 < len(dev) < 500
    assert dev == [i for i in ids if split_of(i) == "dev"]
    rows = [{**GOOD, "id": i} for i in ids[:50]]
    folder = tmp_path / "set"
    folder.mkdir()
    _write(folder, rows)
    assert {m.id for m in load_split(folder, "dev")} == {i for i in ids[:50] if i in dev}
    assert len(load_split(folder)) == 50


def test_the_training_data_loads() -> None:
    messages = load_split()
    # 680 + 120 (round 3: mg) + 160 (round 4: mh, mi) + 120 (round 6: mj, mk)
    # + 500 (round 7: ml-mu) per language + 300 English (round 8: mv, mw)
    assert len(messages) == 5040
    assert {t for m in messages for t in m.topics} <= set(TOPICS)
    assert {m.language for m in load_split(part="dev")} == {"en", "ja", "zh"}


def test_a_bad_byte_is_that_lines_problem_and_the_other_lines_are_still_checked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.jsonl"
    bad_id = {**GOOD, "id": 7}
    path.write_bytes(
        json.dumps(GOOD).encode()
        + b"\n"
        + b'{"id": "\xff"}\n'
        + json.dumps(bad_id).encode()
        + b"\n"
    )
    with pytest.raises(InputError) as err:
        load_messages(path)
    lines = [(p.line, p.message.split(":")[0]) for p in err.value.problems]
    assert lines == [(2, "not UTF-8 text"), (3, "field 'id'")]
