"""The frozen test sets are exactly what was hashed before any training."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FROZEN = ROOT / "evals" / "frozen"


def test_frozen_files_match_their_manifest() -> None:
    manifest = json.loads((FROZEN / "MANIFEST.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {p.name for p in FROZEN.glob("*.jsonl")}
    for name, meta in manifest["files"].items():
        raw = (FROZEN / name).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == meta["sha256"], f"{name} changed after freezing"
        rows = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
        assert len(rows) == meta["rows"]
        langs: dict[str, int] = {}
        for r in rows:
            langs[r["language"]] = langs.get(r["language"], 0) + 1
        assert langs == meta["languages"]


def test_no_training_file_repeats_a_frozen_text() -> None:
    """No frozen draft or message is in the training data (nobody tuned on them). Short
    greetings that any two writers would write alike ("help??", 在吗) are not counted."""
    frozen: set[str] = set()
    names = sorted(p.name for p in FROZEN.glob("*_test_v*.jsonl"))
    # v1-v8 of the guard sets, v1-v9 of the injection sets, v1-v23 of the messages
    assert len(names) == 40, names
    for name in names:
        for line in (FROZEN / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            frozen.add(row.get("draft") or row["message"])
    training = [
        *(ROOT / "evals" / "guardrails" / "train_v1").glob("*.jsonl"),
        *(ROOT / "evals" / "understanding" / "train_v1").glob("*.jsonl"),
        ROOT / "evals" / "guardrails" / "labelled_v1.jsonl",
        ROOT / "prompts" / "guard_examples.jsonl",
    ]
    for path in training:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            text = row.get("draft") or row.get("message") or row.get("text")
            if len(text) >= 20:
                assert text not in frozen, f"{path.name}: a frozen text is in the training data"
